//! `authbridge socialapp add|list`: provider apps (allauth's SocialApp admin steps).

use clap::{Args, Subcommand};
use secrecy::SecretString;

use super::connect_migrated;
use crate::{config::Settings, store};

#[derive(Debug, Subcommand)]
pub enum SocialAppCommand {
    /// Add a provider app, or update the one with the same provider and client id.
    Add(Box<SocialAppArgs>),
    /// List provider apps (secrets are never printed).
    List,
}

#[derive(Debug, Args)]
pub struct SocialAppArgs {
    /// Provider id: `kakao`, `naver`, `apple` or `google`.
    #[arg(long)]
    provider: String,
    /// Display name (default: the provider id).
    #[arg(long)]
    name: Option<String>,
    /// Client id (Kakao: REST API key; Naver: Client ID; Google: the web client id; Apple: the
    /// bundle id, which codes from the iOS SDK are exchanged with).
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
    /// Extra client key accepted as id_token audience (Kakao native / JS keys, Google Android /
    /// iOS client ids, Apple Services id); repeat for several.
    #[arg(long = "client-key")]
    client_keys: Vec<String>,
    /// Site id the app is enabled on; repeat for several.
    #[arg(long = "site", default_value = "1")]
    sites: Vec<i32>,
    /// File holding the secret (Apple: the Sign in with Apple key, `AuthKey_<KEYID>.p8`).
    #[arg(long, conflicts_with = "secret")]
    secret_file: Option<std::path::PathBuf>,
    /// Apple: the 10-character Team ID (the client secret's `iss`).
    #[arg(long)]
    team_id: Option<String>,
    /// Apple: the Key ID of the `.p8` key (the client secret's `kid`).
    #[arg(long)]
    key_id: Option<String>,
    /// Naver: let a first login join an existing user with the same (verified) email; Naver does
    /// not say whether its addresses are verified.
    #[arg(long)]
    link_by_email: bool,
}

pub(super) async fn run(command: SocialAppCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = connect_migrated(&settings.database).await?;
    match command {
        SocialAppCommand::Add(a) => {
            anyhow::ensure!(
                a.provider != "kakao" || !a.app_ids.is_empty(),
                "--app-id is required for kakao: tokens of any other Kakao app are refused"
            );
            anyhow::ensure!(
                a.provider != "apple" || (a.team_id.is_some() && a.key_id.is_some() && a.secret_file.is_some()),
                "--team-id, --key-id and --secret-file (the .p8 key) are required for apple"
            );
            let secret = match &a.secret_file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("--secret-file {}: {e}", path.display()))?,
                None => a.secret.clone(),
            };
            let settings = crate::providers::AppSettings {
                link_by_email: a.link_by_email,
                team_id: a.team_id.clone(),
                key_id: a.key_id.clone(),
            };
            let app = store::social::upsert_app(
                &db,
                &store::WriteTurn::of(&db),
                store::social::NewSocialApp {
                    name: a.name.unwrap_or_else(|| a.provider.clone()),
                    provider: a.provider,
                    client_id: a.client_id,
                    secret: SecretString::from(secret),
                    admin_key: SecretString::from(a.admin_key),
                    app_ids: a.app_ids,
                    client_keys: a.client_keys,
                    sites: a.sites,
                },
            )
            .await?;
            store::provider_tokens::set_app_settings(&db, app.id, &settings).await?;
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
