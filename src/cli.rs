//! Command line: `serve` (the default), `migrate`, `openapi`, the `site` / `socialapp`
//! management commands that replace the Django admin steps, `import-django` and `emulate kakao`.
//! `run` only dispatches: each subcommand is a function, the larger ones a file under `cli/`.

mod clients;
mod emulate;
mod import;
mod keys;
mod sites;
mod social_apps;
mod tokens;
mod users;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

pub use self::{
    clients::ClientCommand,
    emulate::{EmulateCommand, KakaoEmulatorArgs},
    import::ImportDjangoArgs,
    keys::KeysCommand,
    sites::SiteCommand,
    social_apps::{SocialAppArgs, SocialAppCommand},
    tokens::TokenCommand,
    users::UserCommand,
};
use crate::{
    app,
    audit::Entry,
    config::{AuditSettings, DatabaseSettings, ServerSettings, Settings},
    store,
};

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
    /// Ask the server on `listen` for `/healthz`; exit 0 when it answers 200 (a container's
    /// HEALTHCHECK, in an image without curl).
    Healthcheck,
    /// Print the OpenAPI spec (JSON).
    Openapi,
    /// Manage sites (Django sites framework).
    #[command(subcommand)]
    Site(SiteCommand),
    /// Manage provider apps (allauth SocialApp).
    #[command(subcommand)]
    Socialapp(SocialAppCommand),
    /// Create a staff superuser (Django `createsuperuser`). The password comes from
    /// DJANGO_SUPERUSER_PASSWORD, or is asked for on the terminal.
    Createsuperuser {
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Never prompt: fail instead when a value is missing (for scripts).
        #[arg(long)]
        noinput: bool,
    },
    /// Opaque tokens (DRF TokenAuthentication).
    #[command(subcommand)]
    Token(TokenCommand),
    /// JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Resource servers allowed to introspect tokens (`POST /rest-auth/token/introspect/`).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Disable or enable a user (disabling revokes every token the user holds).
    #[command(subcommand)]
    User(UserCommand),
    /// Import users, social accounts and email addresses from a Django deployment's dumps.
    ImportDjango(ImportDjangoArgs),
    /// Run a provider emulator for offline development (no database needed).
    #[command(subcommand)]
    Emulate(EmulateCommand),
}

/// Runs one subcommand: each lives in its own function, most in their own file.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(&settings.database).await,
        Command::Healthcheck => healthcheck(&settings.server).await,
        Command::Openapi => {
            println!("{}", crate::api::spec::spec_json());
            Ok(())
        }
        Command::Site(command) => sites::run(command, &settings).await,
        Command::Socialapp(command) => social_apps::run(command, &settings).await,
        Command::Createsuperuser {
            username,
            email,
            noinput,
        } => users::create_superuser(&settings, username, email, noinput).await,
        Command::Token(command) => tokens::run(command, &settings).await,
        Command::Keys(command) => keys::run(command, &settings).await,
        Command::Client(command) => clients::run(command, &settings.database).await,
        Command::User(command) => users::run(command, &settings).await,
        Command::ImportDjango(args) => import::run(args, &settings.database).await,
        Command::Emulate(command) => emulate::run(command).await,
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = app::App::build(settings).await?;
    app.run_until_stopped(app::shutdown_signal()).await?;
    Ok(())
}

async fn migrate(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let db = store::connect(&settings.url, 1, store::Checkpoints::OnCommit)
        .await
        .context("connecting to the database")?;
    store::migrate(&db).await.context("running migrations")?;
    println!("migrations applied");
    Ok(())
}

async fn healthcheck(settings: &ServerSettings) -> anyhow::Result<()> {
    let mut addr = settings.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let status = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("asking {url}"))?
        .status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}

/// Puts what an operator did at the command line on the audit trail (method `cli`), at once.
async fn record_cli(db: &sea_orm::DatabaseConnection, settings: &AuditSettings, entry: Entry) -> anyhow::Result<()> {
    if settings.enabled {
        let row = crate::audit::row(&crate::audit::Origin::default(), entry.method("cli"));
        store::audit::insert_many(db, &[row]).await?;
    }
    Ok(())
}

async fn connect_migrated(settings: &DatabaseSettings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = store::connect(&settings.url, 2, store::Checkpoints::OnCommit)
        .await
        .context("connecting to the database")?;
    if settings.migrate_on_start {
        store::migrate(&db).await.context("running migrations")?;
    }
    Ok(db)
}
