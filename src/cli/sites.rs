//! `authbridge site add|list`: the Django sites framework's admin steps.

use clap::Subcommand;

use super::connect_migrated;
use crate::{config::Settings, store};

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Add a site.
    Add {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// List sites.
    List,
}

pub(super) async fn run(command: SiteCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = connect_migrated(&settings.database).await?;
    match command {
        SiteCommand::Add { domain, name } => {
            let site = store::sites::insert(&db, &domain, name.as_deref().unwrap_or(&domain)).await?;
            println!("site {} added: {} ({})", site.id, site.domain, site.name);
        }
        SiteCommand::List => {
            for s in store::sites::list(&db).await? {
                println!("{}\t{}\t{}", s.id, s.domain, s.name);
            }
        }
    }
    Ok(())
}
