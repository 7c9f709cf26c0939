//! `authbridge token create|flush-expired`: DRF opaque tokens and simplejwt's token flush.

use anyhow::Context;
use clap::Subcommand;

use super::connect_migrated;
use crate::{config::Settings, store};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new opaque token for USERNAME (DRF `drf_create_token`).
    Create {
        username: String,
        /// Delete the user's other tokens first.
        #[arg(short = 'r', long = "regenerate")]
        regenerate: bool,
    },
    /// Delete expired refresh-token rows (simplejwt `flushexpiredtokens`); the server also does
    /// this every `maintenance_interval`.
    FlushExpired,
}

pub(super) async fn run(command: TokenCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = connect_migrated(&settings.database).await?;
    let tokens = tokens_for(&db, settings).await?;
    match command {
        TokenCommand::Create { username, regenerate } => {
            let user = store::users::find_by_login(&db, &username)
                .await?
                .with_context(|| format!("no user {username:?}"))?;
            println!("{}", tokens.create_opaque(&user, regenerate).await?);
        }
        TokenCommand::FlushExpired => {
            println!("{} expired refresh tokens deleted", tokens.purge_expired().await?)
        }
    }
    Ok(())
}

async fn tokens_for(db: &sea_orm::DatabaseConnection, settings: &Settings) -> anyhow::Result<crate::tokens::Tokens> {
    let keys = crate::tokens::KeyRing::load(db.clone(), &settings.jwt).await?;
    let turn = crate::store::WriteTurn::of(db);
    Ok(crate::tokens::Tokens::new(
        std::sync::Arc::new(keys),
        db.clone(),
        // A one-shot command writes a token or two: the pool will do, no connection of its own.
        crate::write_queue::WriteQueue::start(db.clone(), turn.clone(), crate::metrics::Metrics::default()),
        crate::store::cache::Cached::new(db.clone(), turn, settings.database.cache_ttl),
        &settings.jwt,
        &crate::metrics::Metrics::default(),
    ))
}
