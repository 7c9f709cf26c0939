//! Kakao emulator (`authbridge emulate kakao`): Kakao's `kauth` and `kapi` hosts on one port, for
//! offline development and tests. Facts: shared/kakao-api.md. In memory only; never touches the
//! database or authbridge's own settings.

mod api;
mod control;
mod grants;
mod oauth;
mod oidc;
mod users;

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get,
    http::{StatusCode, header},
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::SensitiveHeader,
    post,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use subtle::ConstantTimeEq;
use url::Url;

pub use self::users::{EmulatedUser, builtin_users, load_users};
use self::{grants::Grants, oidc::Signer, users::Users};

pub const DEFAULT_APP_ID: i64 = 1234;
pub const DEFAULT_REST_API_KEY: &str = "emulator-rest-key";
pub const DEFAULT_NATIVE_APP_KEY: &str = "emulator-native-key";
pub const DEFAULT_JAVASCRIPT_KEY: &str = "emulator-js-key";
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-secret";
pub const DEFAULT_ADMIN_KEY: &str = "emulator-admin-key";
/// The issuer real Kakao puts in ID tokens (kakao-api.md 5.3), so a verifier needs no change.
pub const DEFAULT_ISSUER: &str = "https://kauth.kakao.com";

const DAY: u64 = 24 * 3600;

/// Everything the emulator serves: the emulated Kakao app, its users, lifetimes.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// URL clients reach the emulator at (discovery document, banner); default `http://<bound address>`.
    pub public_url: Option<Url>,
    pub app: KakaoApp,
    pub users: Vec<EmulatedUser>,
    /// `iss` of the ID tokens.
    pub issuer: String,
    pub lifetimes: Lifetimes,
    pub unlink_callback: Option<UnlinkCallback>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 18080)),
            public_url: None,
            app: KakaoApp::default(),
            users: builtin_users(),
            issuer: DEFAULT_ISSUER.into(),
            lifetimes: Lifetimes::default(),
            unlink_callback: None,
        }
    }
}

/// The emulated Kakao Developers app (kakao-api.md 7.2).
#[derive(Debug, Clone)]
pub struct KakaoApp {
    pub app_id: i64,
    pub rest_api_key: String,
    pub native_app_key: String,
    pub javascript_key: String,
    /// `None`: "Client Secret" is off. Checked only for the REST API key, as Kakao does.
    pub client_secret: Option<SecretString>,
    pub admin_key: SecretString,
    /// Registered redirect URIs; empty allows any. `kakao<native key>://oauth` is always allowed.
    pub redirect_uris: Vec<String>,
}

impl Default for KakaoApp {
    fn default() -> Self {
        Self {
            app_id: DEFAULT_APP_ID,
            rest_api_key: DEFAULT_REST_API_KEY.into(),
            native_app_key: DEFAULT_NATIVE_APP_KEY.into(),
            javascript_key: DEFAULT_JAVASCRIPT_KEY.into(),
            client_secret: Some(SecretString::from(DEFAULT_CLIENT_SECRET)),
            admin_key: SecretString::from(DEFAULT_ADMIN_KEY),
            redirect_uris: Vec::new(),
        }
    }
}

/// Which of the app's keys a client used; it sets the access-token lifetime (kakao-api.md 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rest,
    Native,
    JavaScript,
}

impl KakaoApp {
    pub fn key_kind(&self, client_id: &str) -> Option<KeyKind> {
        [
            (&self.rest_api_key, KeyKind::Rest),
            (&self.native_app_key, KeyKind::Native),
            (&self.javascript_key, KeyKind::JavaScript),
        ]
        .into_iter()
        .find(|(key, _)| key.as_str() == client_id)
        .map(|(_, kind)| kind)
    }

    fn allows_redirect(&self, kind: KeyKind, uri: &str) -> bool {
        if kind == KeyKind::Native && uri == format!("kakao{}://oauth", self.native_app_key) {
            return true;
        }
        self.redirect_uris.is_empty() || self.redirect_uris.iter().any(|r| r == uri)
    }

    fn is_admin_key(&self, key: &str) -> bool {
        secret_eq(&self.admin_key, key)
    }
}

fn secret_eq(secret: &SecretString, presented: &str) -> bool {
    secret.expose_secret().as_bytes().ct_eq(presented.as_bytes()).into()
}

/// Token lifetimes; Kakao's by default (kakao-api.md 7.1). Short values make expiry testable.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub rest_access: Duration,
    pub native_access: Duration,
    pub javascript_access: Duration,
    pub refresh: Duration,
    /// A refresh returns a new refresh token only when the old one has less than this left.
    pub refresh_rotation_window: Duration,
    pub code: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            rest_access: Duration::from_secs(6 * 3600),
            native_access: Duration::from_secs(12 * 3600),
            javascript_access: Duration::from_secs(2 * 3600),
            refresh: Duration::from_secs(60 * DAY),
            refresh_rotation_window: Duration::from_secs(30 * DAY),
            code: Duration::from_secs(600),
        }
    }
}

impl Lifetimes {
    /// Sets the access-token lifetime of every key kind.
    pub fn with_access(mut self, lifetime: Duration) -> Self {
        self.rest_access = lifetime;
        self.native_access = lifetime;
        self.javascript_access = lifetime;
        self
    }

    fn access(&self, kind: KeyKind) -> Duration {
        match kind {
            KeyKind::Rest => self.rest_access,
            KeyKind::Native => self.native_access,
            KeyKind::JavaScript => self.javascript_access,
        }
    }
}

/// Where the unlink webhook goes (kakao-api.md 6.3).
#[derive(Debug, Clone)]
pub struct UnlinkCallback {
    pub url: Url,
    pub method: CallbackMethod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CallbackMethod {
    Get,
    Post,
}

/// State shared by every handler.
struct Shared {
    config: EmulatorConfig,
    users: Users,
    signer: Signer,
    grants: Mutex<Grants>,
    http: reqwest::Client,
    base_url: Url,
}

impl Shared {
    fn grants(&self) -> MutexGuard<'_, Grants> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A bound, not yet serving emulator: `build`, read `port()`, then `run_until_stopped`.
pub struct Emulator {
    acceptor: TcpAcceptor,
    port: u16,
    shared: Arc<Shared>,
}

impl Emulator {
    pub async fn build(config: EmulatorConfig) -> anyhow::Result<Self> {
        let signer = tokio::task::spawn_blocking(Signer::generate)
            .await
            .context("generating the RSA key")??;
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let bound = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no TCP address")?;
        let base_url = match &config.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{bound}")).context("the bound address as a URL")?,
        };
        let http = reqwest::Client::builder()
            // The webhook contract: answer within 3 s; redirects count as failures (kakao-api.md 6.3).
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        let shared = Arc::new(Shared {
            users: Users::new(config.users.clone())?,
            config,
            signer,
            grants: Mutex::new(Grants::default()),
            http,
            base_url,
        });
        Ok(Self {
            acceptor,
            port: bound.port(),
            shared,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL for both Kakao hosts (`AUTHBRIDGE_KAKAO_API_BASE` and `AUTHBRIDGE_KAKAO_AUTH_BASE`).
    pub fn base_url(&self) -> &Url {
        &self.shared.base_url
    }

    /// What start-up prints: where it listens, the app's keys and the users. Secrets are shown
    /// only while they are the published defaults.
    pub fn banner(&self) -> String {
        let c = &self.shared.config;
        let base = self.shared.base_url.as_str();
        let shown = |s: &SecretString, default: &str| {
            if s.expose_secret() == default {
                default.to_owned()
            } else {
                "(set)".into()
            }
        };
        let secret = c
            .app
            .client_secret
            .as_ref()
            .map_or_else(|| "(off)".into(), |s| shown(s, DEFAULT_CLIENT_SECRET));
        let redirects = if c.app.redirect_uris.is_empty() {
            "any".into()
        } else {
            c.app.redirect_uris.join(" ")
        };
        let mut out = format!(
            "Kakao emulator on {url} (kauth and kapi)\n  app id {}  REST API key {}  native key {}  JS key {}\n  \
             client secret {secret}  admin key {}  redirect URIs {redirects}\n  users:\n",
            c.app.app_id,
            c.app.rest_api_key,
            c.app.native_app_key,
            c.app.javascript_key,
            shown(&c.app.admin_key, DEFAULT_ADMIN_KEY),
            url = base.trim_end_matches('/'),
        );
        for user in self.shared.users.all() {
            out.push_str(&format!("    {}  {}\n", user.id(), user.label()));
        }
        out.push_str(&format!(
            "  authbridge: AUTHBRIDGE_KAKAO_API_BASE={url} AUTHBRIDGE_KAKAO_AUTH_BASE={url}\n  \
             mint a token: curl -s -X POST {base}emulator/tokens -H 'Content-Type: application/json' \
             -d '{{\"user_id\": {}}}'",
            self.shared.users.all().first().map_or(0, EmulatedUser::id),
            url = base.trim_end_matches('/'),
        ));
        out
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        tracing::info!(port = self.port, "kakao emulator listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(route(self.shared), shutdown, Some(Duration::from_secs(5)))
            .await
    }
}

fn route(shared: Arc<Shared>) -> impl Endpoint {
    Route::new()
        .at("/oauth/authorize", get(oauth::authorize))
        .at("/oauth/token", post(oauth::token))
        .at("/oauth/tokeninfo", post(oidc::tokeninfo))
        .at("/.well-known/openid-configuration", get(oidc::discovery))
        .at("/.well-known/jwks.json", get(oidc::jwks))
        .at("/v2/user/me", get(api::me).post(api::me))
        .at("/v1/user/access_token_info", get(api::access_token_info))
        .at("/v1/user/logout", post(api::logout))
        .at("/v1/user/unlink", post(api::unlink))
        .at("/v1/oidc/userinfo", get(api::userinfo).post(api::userinfo))
        .at("/emulator/users", get(control::list_users))
        .at("/emulator/users/:id/unlink", post(control::unlink_user))
        .at("/emulator/tokens", post(control::mint_tokens))
        .with(SensitiveHeader::new().header(header::AUTHORIZATION))
        .around(log_request)
        .data(shared)
}

/// One line per request: method, path (never the query: it may hold a code) and status.
async fn log_request<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = next.call(req).await.map(IntoResponse::into_response);
    let status = match &response {
        Ok(r) => r.status(),
        Err(e) => e.status(),
    };
    tracing::info!(%method, path, status = status.as_u16(), "kakao emulator");
    response
}

/// A request body of at most 64 KiB (poem's `SizeLimit` would demand a Content-Length even on GET).
async fn read_body(body: poem::Body) -> Option<bytes::Bytes> {
    body.into_bytes_limit(64 * 1024).await.ok()
}

/// Query string and, when given, the urlencoded body, as Kakao reads both for its GET|POST APIs.
fn params(req: &Request, body: &[u8]) -> HashMap<String, String> {
    let query = req.uri().query().unwrap_or_default().as_bytes();
    form_urlencoded::parse(query)
        .chain(form_urlencoded::parse(body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json;charset=UTF-8")
        .body(body.to_string())
}
