//! `authbridge import-django`: reads the dump files (`crate::import`) off the runtime, then
//! writes them in one transaction and prints a summary. Progress goes to stderr.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use migration::{Migrator, MigratorTrait};

use crate::{config::DatabaseSettings, import, store};

#[derive(Debug, Args)]
pub struct ImportDjangoArgs {
    /// `auth_user` dump: *.csv (psql `\copy … csv header`) or *.json (`manage.py dumpdata`); a
    /// dumpdata file may hold the social accounts and email addresses too.
    #[arg(long)]
    users: PathBuf,
    /// `socialaccount_socialaccount` dump (*.csv or *.json).
    #[arg(long)]
    social_accounts: Option<PathBuf>,
    /// `account_emailaddress` dump (*.csv or *.json).
    #[arg(long)]
    email_addresses: Option<PathBuf>,
    /// Label of the user model in dumpdata files (the project's `AUTH_USER_MODEL`, lower-case).
    #[arg(long, default_value = "auth.user")]
    user_model: String,
    /// Check every row against the dump and the database, then write nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: ImportDjangoArgs, settings: &DatabaseSettings) -> anyhow::Result<()> {
    let files = import::DumpFiles {
        users: args.users,
        social_accounts: args.social_accounts,
        email_addresses: args.email_addresses,
        user_model: args.user_model,
    };
    let dump = tokio::task::spawn_blocking(move || import::read(&files, &mut |line| eprintln!("{line}")))
        .await
        .context("the reading task failed")??;
    for (label, count) in &dump.skipped {
        eprintln!("skipped {count} records of {label}");
    }
    let db = store::connect(&settings.url, 1, store::Checkpoints::OnCommit)
        .await
        .context("connecting to the database")?;
    if args.dry_run {
        // A dry run writes nothing, not even the schema or the migration table.
        let pending = Migrator::get_pending_migrations_read_only(&db).await;
        anyhow::ensure!(
            pending.is_ok_and(|p| p.is_empty()),
            "the database schema is not up to date; run `authbridge migrate` first (a dry run changes nothing)"
        );
    } else if settings.migrate_on_start {
        store::migrate(&db).await.context("running migrations")?;
    }
    let summary = import::import(&db, &dump, args.dry_run, &mut |line| eprintln!("{line}")).await?;
    println!("{summary}");
    Ok(())
}
