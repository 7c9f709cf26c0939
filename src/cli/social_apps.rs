//! `authbridge socialapp add|list`: provider apps (allauth's SocialApp admin steps).

use clap::{Args, Subcommand};
use secrecy::SecretString;

use super::connect_migrated;
use crate::{config::Settings, store};

#[derive(Debug, Subcommand)]
pub enum SocialAppCommand {
    /// Add a provider app, or update the one with the same provider and client id.
    Add(SocialAppArgs),
    /// List provider apps (secrets are never printed).
    List,
}

#[derive(Debug, Args)]
pub struct SocialAppArgs {
    /// Provider id: `kakao`.
    #[arg(long)]
    provider: String,
    /// Display name (default: the provider id).
    #[arg(long)]
    name: Option<String>,
    /// Client id (Kakao: REST API key).
    #[arg(long)]
    client_id: String,
    /// Client secret (Kakao: the optional client secret; empty when unused).
    #[arg(long, default_value = "")]
    secret: String,
    /// Kakao admin key, for the unlink webhook and admin calls.
    #[arg(long, default_value = "")]
    admin_key: String,
    /// App id a provider token may be issued to (Kakao `app_id`); repeat for several.
    #[arg(long = "app-id")]
    app_ids: Vec<String>,
    /// Extra client key accepted as id_token audience (native / JS keys); repeat for several.
    #[arg(long = "client-key")]
    client_keys: Vec<String>,
    /// Site id the app is enabled on; repeat for several.
    #[arg(long = "site", default_value = "1")]
    sites: Vec<i32>,
}

pub(super) async fn run(command: SocialAppCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = connect_migrated(&settings.database).await?;
    match command {
        SocialAppCommand::Add(a) => {
            anyhow::ensure!(
                a.provider != "kakao" || !a.app_ids.is_empty(),
                "--app-id is required for kakao: tokens of any other Kakao app are refused"
            );
            let app = store::social::upsert_app(
                &db,
                &store::WriteTurn::of(&db),
                store::social::NewSocialApp {
                    name: a.name.unwrap_or_else(|| a.provider.clone()),
                    provider: a.provider,
                    client_id: a.client_id,
                    secret: SecretString::from(a.secret),
                    admin_key: SecretString::from(a.admin_key),
                    app_ids: a.app_ids,
                    client_keys: a.client_keys,
                    sites: a.sites,
                },
            )
            .await?;
            println!(
                "social app {} saved: {} {} sites {:?}",
                app.id, app.provider, app.client_id, app.sites
            );
        }
        SocialAppCommand::List => {
            println!("id\tprovider\tname\tclient_id\tapp_ids\tsites");
            for a in store::social::list_apps(&db).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{:?}",
                    a.id,
                    a.provider,
                    a.name,
                    a.client_id,
                    a.app_ids.join(","),
                    a.sites
                );
            }
        }
    }
    Ok(())
}
