//! Command line: `serve` (the default), `migrate`, `openapi`, and the `site` / `socialapp`
//! management commands that replace the Django admin steps.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::{app, config::Settings, store};

#[derive(Debug, Parser)]
#[command(name = "authbridge", version, about = "Social login → this service's own JWTs")]
pub struct Cli {
    /// Configuration file (default: ./authbridge.toml when it exists).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Run pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI spec (JSON).
    Openapi,
    /// Manage sites (Django sites framework).
    #[command(subcommand)]
    Site(SiteCommand),
    /// Manage provider apps (allauth SocialApp).
    #[command(subcommand)]
    Socialapp(SocialAppCommand),
}

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

pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = app::App::build(settings).await?;
            app.run_until_stopped(app::shutdown_signal()).await?;
        }
        Command::Openapi => println!("{}", crate::api::spec::spec_json()),
        Command::Migrate => {
            let db = store::connect(&settings.database_url, 1)
                .await
                .context("connecting to the database")?;
            store::migrate(&db).await.context("running migrations")?;
            println!("migrations applied");
        }
        Command::Site(command) => {
            let db = connect_migrated(&settings).await?;
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
        }
        Command::Socialapp(command) => {
            let db = connect_migrated(&settings).await?;
            match command {
                SocialAppCommand::Add(a) => {
                    anyhow::ensure!(
                        a.provider != "kakao" || !a.app_ids.is_empty(),
                        "--app-id is required for kakao: tokens of any other Kakao app are refused"
                    );
                    let app = store::social::upsert_app(
                        &db,
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
        }
    }
    Ok(())
}

async fn connect_migrated(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = store::connect(&settings.database_url, 2)
        .await
        .context("connecting to the database")?;
    if settings.migrate_on_start {
        store::migrate(&db).await.context("running migrations")?;
    }
    Ok(db)
}
