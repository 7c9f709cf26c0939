//! `authbridge keys …`: rotate, revoke and list the JWT signing keys.

use chrono::Utc;
use clap::Subcommand;

use super::{connect_migrated, record_cli};
use crate::{
    audit::{Entry, event},
    config::Settings,
    store,
    tokens::KeyState,
};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; old keys keep verifying until their tokens expire.
    Rotate,
    /// Revoke a key that leaked: it stops verifying on every instance within the key-reload
    /// interval, and every token it signed dies (a signing key is replaced first).
    Revoke { kid: String },
    /// Every key with its state: signing, retired (verifying until its tokens expire), expired
    /// or revoked.
    List,
}

pub(super) async fn run(command: KeysCommand, settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.jwt.algorithm == crate::config::JwtAlgorithm::EdDSA,
        "signing keys apply to EdDSA; with HS256 change AUTHBRIDGE_SIGNING_KEY instead"
    );
    let db = connect_migrated(&settings.database).await?;
    let reload = humantime_serde::re::humantime::format_duration(settings.jwt.key_reload_interval);
    match command {
        KeysCommand::Rotate => {
            let kid = crate::tokens::rotate_signing_key(&db).await?;
            record_cli(
                &db,
                &settings.audit,
                Entry::new(event::KEY_ROTATED).detail(serde_json::json!({"kid": kid})),
            )
            .await?;
            println!("new signing key {kid}; running instances switch to it within {reload} (at once on SIGHUP)");
        }
        KeysCommand::Revoke { kid } => {
            let replacement = crate::tokens::revoke_signing_key(&db, &kid)
                .await
                .map_err(|e| anyhow::anyhow!("cannot revoke {kid}: {e}"))?;
            record_cli(
                &db,
                &settings.audit,
                Entry::new(event::KEY_REVOKED).detail(serde_json::json!({"kid": kid})),
            )
            .await?;
            if let Some(new) = replacement {
                println!("{kid} was signing: new signing key {new}");
            }
            println!(
                "key {kid} revoked; running instances stop accepting its tokens within {reload} (at once on SIGHUP)"
            );
        }
        KeysCommand::List => {
            let now = Utc::now();
            for key in store::keys::list_all(&db).await? {
                let state = match KeyState::of(&key, &settings.jwt, now) {
                    KeyState::Revoked => format!("revoked {}", key.revoked_at.unwrap_or(now).to_rfc3339()),
                    KeyState::Retired { until } => format!("retired, verifying until {}", until.to_rfc3339()),
                    other => other.name().to_owned(),
                };
                println!("{}  created {}  {state}", key.kid, key.created_at.to_rfc3339());
            }
        }
    }
    Ok(())
}
