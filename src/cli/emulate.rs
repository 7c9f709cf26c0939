//! `authbridge emulate kakao|naver|apple|google`: the emulator crate behind command-line flags.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use clap::{Args, Subcommand};
use secrecy::SecretString;

use crate::app;

#[derive(Debug, Subcommand)]
pub enum EmulateCommand {
    /// Kakao's kauth and kapi hosts on one port: login page, tokens, user info, OIDC, unlink.
    Kakao(Box<KakaoEmulatorArgs>),
    /// Naver's nid and openapi hosts (token, revoke, profile); Google and Apple on the same port.
    Naver(SocialEmulatorArgs),
    /// Apple's appleid host (token, revoke, keys, notifications); Naver and Google on the same port.
    Apple(SocialEmulatorArgs),
    /// Google's oauth2 and www hosts (token, tokeninfo, userinfo, revoke, certs); Naver and Apple on the same port.
    Google(SocialEmulatorArgs),
}

/// One emulator serves Naver, Google and Apple (their paths do not overlap); the subcommand picks
/// whose settings the banner prints.
#[derive(Debug, Args)]
pub struct SocialEmulatorArgs {
    /// Port to listen on.
    #[arg(long, default_value_t = 18081)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// URL clients reach the emulator at, when not http://<listen>:<port>.
    #[arg(long)]
    public_url: Option<url::Url>,
    /// Where `POST /emulator/apple/notify` sends Apple's server-to-server notifications
    /// (e.g. http://127.0.0.1:8000/accounts/apple/notifications/).
    #[arg(long)]
    apple_notifications: Option<url::Url>,
}

impl SocialEmulatorArgs {
    fn into_config(self) -> anyhow::Result<kakao_emulator::social::SocialConfig> {
        let mut config = kakao_emulator::social::SocialConfig::with_defaults((self.listen, self.port).into())?;
        config.public_url = self.public_url;
        config.apple_notifications = self.apple_notifications;
        Ok(config)
    }
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

pub(super) async fn run(command: EmulateCommand) -> anyhow::Result<()> {
    match command {
        EmulateCommand::Kakao(args) => {
            let emulator = kakao_emulator::Emulator::build(args.into_config()?).await?;
            println!("{}", emulator.banner());
            emulator.run_until_stopped(app::shutdown_signal()).await?;
        }
        EmulateCommand::Naver(args) => run_social("naver", args).await?,
        EmulateCommand::Apple(args) => run_social("apple", args).await?,
        EmulateCommand::Google(args) => run_social("google", args).await?,
    }
    Ok(())
}

async fn run_social(provider: &str, args: SocialEmulatorArgs) -> anyhow::Result<()> {
    let emulator = kakao_emulator::social::SocialEmulator::build(args.into_config()?).await?;
    println!("{}", emulator.banner(provider));
    emulator.run_until_stopped(app::shutdown_signal()).await?;
    Ok(())
}
