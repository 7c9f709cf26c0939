//! `authbridge user disable|enable|delete` and `createsuperuser`.

use anyhow::Context;
use clap::Subcommand;
use secrecy::SecretString;

use super::{connect_migrated, record_cli};
use crate::{
    audit::{Entry, event},
    config::Settings,
    store,
};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
    /// Delete the user (the admin's delete): unlinks each Kakao link at Kakao first; if Kakao
    /// cannot be reached nothing is deleted.
    Delete {
        username: String,
    },
}

pub(super) async fn run(command: UserCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = connect_migrated(&settings.database).await?;
    match command {
        UserCommand::Disable { username } => set_active(&db, settings, &username, false).await,
        UserCommand::Enable { username } => set_active(&db, settings, &username, true).await,
        UserCommand::Delete { username } => delete(&db, settings, &username).await,
    }
}

async fn set_active(
    db: &sea_orm::DatabaseConnection,
    settings: &Settings,
    username: &str,
    active: bool,
) -> anyhow::Result<()> {
    let user = store::users::find_by_login(db, username)
        .await?
        .with_context(|| format!("no user {username:?}"))?;
    store::users::set_active(db, user.id, active).await?;
    let what = if active {
        event::USER_ENABLED
    } else {
        event::USER_DISABLED
    };
    record_cli(db, &settings.audit, Entry::new(what).user(user.id)).await?;
    println!(
        "user {} {}",
        user.username,
        if active {
            "enabled"
        } else {
            "disabled; its tokens are revoked"
        }
    );
    Ok(())
}

async fn delete(db: &sea_orm::DatabaseConnection, settings: &Settings, username: &str) -> anyhow::Result<()> {
    let user = store::users::find_by_login(db, username)
        .await?
        .with_context(|| format!("no user {username:?}"))?;
    let providers = crate::providers::Providers::from_settings(
        crate::providers::ProviderSections::of(settings),
        crate::providers::http_client(&settings.providers)?,
    );
    // This process keeps no copies: caching off.
    let rows = crate::store::cache::Cached::new(db.clone(), store::WriteTurn::of(db), std::time::Duration::ZERO);
    crate::accounts::delete_user(&rows, &providers, user.id).await?;
    println!("user {} deleted and unlinked at its providers", user.username);
    Ok(())
}

/// `createsuperuser`: a staff superuser, with the values asked for on the terminal unless
/// `noinput`.
pub(super) async fn create_superuser(
    settings: &Settings,
    username: Option<String>,
    email: Option<String>,
    noinput: bool,
) -> anyhow::Result<()> {
    let db = connect_migrated(&settings.database).await?;
    insert_superuser(&db, username, email, noinput).await
}

fn prompt(label: &str) -> anyhow::Result<String> {
    use std::io::Write;
    print!("{label}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

async fn insert_superuser(
    db: &sea_orm::DatabaseConnection,
    username: Option<String>,
    email: Option<String>,
    noinput: bool,
) -> anyhow::Result<()> {
    let username = match (username, noinput) {
        (Some(u), _) => u,
        (None, true) => anyhow::bail!("--username is required with --noinput"),
        (None, false) => prompt("Username")?,
    };
    anyhow::ensure!(!username.is_empty(), "the username may not be blank");
    let email = match (email, noinput) {
        (Some(e), _) => e,
        (None, true) => String::new(),
        (None, false) => prompt("Email address")?,
    };
    let password = match std::env::var("DJANGO_SUPERUSER_PASSWORD") {
        Ok(p) => p,
        Err(_) if noinput => anyhow::bail!("set DJANGO_SUPERUSER_PASSWORD with --noinput"),
        Err(_) => {
            let first = rpassword::prompt_password("Password: ")?;
            anyhow::ensure!(
                first == rpassword::prompt_password("Password (again): ")?,
                "the passwords do not match"
            );
            first
        }
    };
    anyhow::ensure!(!password.is_empty(), "the password may not be blank");
    let password_hash = crate::password::hash(&SecretString::from(password)).await?;
    let user = store::users::insert_local(
        db,
        store::users::NewLocalUser {
            username: &username,
            email: &email,
            password_hash,
            is_staff: true,
            is_superuser: true,
        },
    )
    .await?;
    println!("superuser {} created (pk {})", user.username, user.id);
    Ok(())
}
