//! Command line: `serve` (the default), `migrate`, `openapi`, the `site` / `socialapp`
//! management commands that replace the Django admin steps, `import-django` and `emulate kakao`.

mod clients;
mod import;
mod keys;

use std::{net::IpAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::{
    app,
    audit::{Entry, event},
    config::{AuditSettings, DatabaseSettings, JwtSettings, ServerSettings, Settings},
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
    Client(clients::ClientCommand),
    /// Disable or enable a user (disabling revokes every token the user holds).
    #[command(subcommand)]
    User(UserCommand),
    /// Import users, social accounts and email addresses from a Django deployment's dumps.
    ImportDjango(import::ImportDjangoArgs),
    /// Run a provider emulator for offline development (no database needed).
    #[command(subcommand)]
    Emulate(EmulateCommand),
}

#[derive(Debug, Subcommand)]
pub enum EmulateCommand {
    /// Kakao's kauth and kapi hosts on one port: login page, tokens, user info, OIDC, unlink.
    Kakao(Box<KakaoEmulatorArgs>),
}

#[derive(Debug, Args)]
pub struct KakaoEmulatorArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// JSON file: an array of /v2/user/me objects (default: three built-in users).
    #[arg(long)]
    users: Option<PathBuf>,
    /// URL of the app's unlink webhook, called when a user unlinks via /emulator/users/{id}/unlink.
    #[arg(long)]
    unlink_callback: Option<url::Url>,
    /// How the unlink webhook is called.
    #[arg(long, value_enum, default_value = "post")]
    unlink_callback_method: CallbackMethodArg,
    #[arg(long, default_value_t = kakao_emulator::DEFAULT_APP_ID)]
    app_id: i64,
    #[arg(long, default_value = kakao_emulator::DEFAULT_REST_API_KEY)]
    rest_api_key: String,
    #[arg(long, default_value = kakao_emulator::DEFAULT_NATIVE_APP_KEY)]
    native_app_key: String,
    #[arg(long, default_value = kakao_emulator::DEFAULT_JAVASCRIPT_KEY)]
    javascript_key: String,
    /// Client secret of the REST API key; empty turns it off.
    #[arg(long, default_value = kakao_emulator::DEFAULT_CLIENT_SECRET)]
    client_secret: String,
    #[arg(long, default_value = kakao_emulator::DEFAULT_ADMIN_KEY)]
    admin_key: String,
    /// Registered redirect URI; repeat for several (default: any).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// `iss` of the ID tokens.
    #[arg(long, default_value = kakao_emulator::DEFAULT_ISSUER)]
    issuer: String,
    /// Access-token lifetime for every key (default: Kakao's 6 h REST, 12 h native, 2 h JS).
    #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration)]
    access_token_lifetime: Option<Duration>,
    /// Refresh-token lifetime; a refresh rotates it only when under 30 days remain.
    #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration, default_value = "60days")]
    refresh_token_lifetime: Duration,
    /// URL clients reach the emulator at, when not http://<listen>:<port>.
    #[arg(long)]
    public_url: Option<url::Url>,
}

impl KakaoEmulatorArgs {
    fn into_config(self) -> anyhow::Result<kakao_emulator::EmulatorConfig> {
        let users = match &self.users {
            Some(path) => kakao_emulator::load_users(path)?,
            None => kakao_emulator::builtin_users(),
        };
        let mut lifetimes = kakao_emulator::Lifetimes {
            refresh: self.refresh_token_lifetime,
            ..Default::default()
        };
        if let Some(access) = self.access_token_lifetime {
            lifetimes = lifetimes.with_access(access);
        }
        Ok(kakao_emulator::EmulatorConfig {
            listen: (self.listen, self.port).into(),
            public_url: self.public_url,
            app: kakao_emulator::KakaoApp {
                app_id: self.app_id,
                rest_api_key: self.rest_api_key,
                native_app_key: self.native_app_key,
                javascript_key: self.javascript_key,
                client_secret: Some(self.client_secret)
                    .filter(|s| !s.is_empty())
                    .map(SecretString::from),
                admin_key: SecretString::from(self.admin_key),
                redirect_uris: self.redirect_uris,
            },
            users,
            issuer: self.issuer,
            lifetimes,
            unlink_callback: self.unlink_callback.map(|url| kakao_emulator::UnlinkCallback {
                url,
                method: match self.unlink_callback_method {
                    CallbackMethodArg::Get => kakao_emulator::CallbackMethod::Get,
                    CallbackMethodArg::Post => kakao_emulator::CallbackMethod::Post,
                },
            }),
            other_apps: Vec::new(),
            signing_key: None,
        })
    }
}

/// `--unlink-callback-method`: the emulator crate stays free of clap, so the flag has its own enum.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CallbackMethodArg {
    Get,
    Post,
}

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
        Command::Emulate(EmulateCommand::Kakao(args)) => {
            let emulator = kakao_emulator::Emulator::build(args.into_config()?).await?;
            println!("{}", emulator.banner());
            emulator.run_until_stopped(app::shutdown_signal()).await?;
        }
        Command::Serve => {
            let app = app::App::build(settings).await?;
            app.run_until_stopped(app::shutdown_signal()).await?;
        }
        Command::ImportDjango(args) => import::run(args, &settings.database).await?,
        Command::Client(command) => clients::run(command, &settings.database).await?,
        Command::Openapi => println!("{}", crate::api::spec::spec_json()),
        Command::Healthcheck => healthcheck(&settings.server).await?,
        Command::Migrate => {
            let db = store::connect(&settings.database.url, 1, store::Checkpoints::OnCommit)
                .await
                .context("connecting to the database")?;
            store::migrate(&db).await.context("running migrations")?;
            println!("migrations applied");
        }
        Command::Site(command) => {
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
        }
        Command::Socialapp(command) => {
            let db = connect_migrated(&settings.database).await?;
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
        Command::Createsuperuser {
            username,
            email,
            noinput,
        } => {
            let db = connect_migrated(&settings.database).await?;
            create_superuser(&db, username, email, noinput).await?;
        }
        Command::Token(command) => {
            let db = connect_migrated(&settings.database).await?;
            let tokens = tokens_for(&db, &settings.jwt, &settings.database).await?;
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
        }
        Command::User(command) => {
            let db = connect_migrated(&settings.database).await?;
            let (username, active) = match command {
                UserCommand::Disable { username } => (username, false),
                UserCommand::Enable { username } => (username, true),
                UserCommand::Delete { username } => {
                    let user = store::users::find_by_login(&db, &username)
                        .await?
                        .with_context(|| format!("no user {username:?}"))?;
                    let providers = crate::providers::Providers::from_settings(
                        &settings.providers,
                        &settings.kakao,
                        crate::providers::http_client(&settings.providers)?,
                    );
                    crate::accounts::delete_user(&db, &providers, user.id).await?;
                    println!("user {} deleted and unlinked at its providers", user.username);
                    return Ok(());
                }
            };
            let user = store::users::find_by_login(&db, &username)
                .await?
                .with_context(|| format!("no user {username:?}"))?;
            store::users::set_active(&db, user.id, active).await?;
            let what = if active {
                event::USER_ENABLED
            } else {
                event::USER_DISABLED
            };
            record_cli(&db, &settings.audit, Entry::new(what).user(user.id)).await?;
            println!(
                "user {} {}",
                user.username,
                if active {
                    "enabled"
                } else {
                    "disabled; its tokens are revoked"
                }
            );
        }
        Command::Keys(command) => keys::run(command, &settings).await?,
    }
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

async fn tokens_for(
    db: &sea_orm::DatabaseConnection,
    settings: &JwtSettings,
    database: &DatabaseSettings,
) -> anyhow::Result<crate::tokens::Tokens> {
    let keys = crate::tokens::KeyRing::load(db.clone(), settings).await?;
    Ok(crate::tokens::Tokens::new(
        std::sync::Arc::new(keys),
        db.clone(),
        // A one-shot command writes a token or two: the pool will do, no connection of its own.
        crate::write_queue::WriteQueue::start(db.clone(), crate::metrics::Metrics::default()),
        crate::store::cache::Cached::new(db.clone(), database.cache_ttl),
        settings,
        &crate::metrics::Metrics::default(),
    ))
}

fn prompt(label: &str) -> anyhow::Result<String> {
    use std::io::Write;
    print!("{label}: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

async fn create_superuser(
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

/// Puts what an operator did at the command line on the audit trail (method `cli`), at once.
async fn record_cli(db: &sea_orm::DatabaseConnection, settings: &AuditSettings, entry: Entry) -> anyhow::Result<()> {
    if settings.enabled {
        let row = crate::audit::row(&crate::audit::Origin::default(), entry.method("cli"));
        store::audit::insert_many(db, vec![row]).await?;
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
