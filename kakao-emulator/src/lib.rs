//! Kakao emulator (`authbridge emulate kakao`): Kakao's `kauth` and `kapi` hosts on one port, for
//! offline development and tests. Facts: shared/kakao-api.md. In memory only; knows nothing of
//! authbridge (no database, no settings), so it builds and is tested as a crate of its own.

mod api;
mod config;
mod control;
mod faults;
mod grants;
mod handle;
mod kauth_error;
mod oauth;
mod oidc;
pub mod social;
mod users;

use std::{
    collections::HashMap,
    future::Future,
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
use url::Url;

pub use self::{
    config::{
        CallbackMethod, DEFAULT_ADMIN_KEY, DEFAULT_APP_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ISSUER,
        DEFAULT_JAVASCRIPT_KEY, DEFAULT_NATIVE_APP_KEY, DEFAULT_REST_API_KEY, EmulatorConfig, KakaoApp, KeyKind,
        Lifetimes, UnlinkCallback,
    },
    faults::Fault,
    handle::{Handle, Unlink},
    oidc::SigningKey,
    users::{EmulatedUser, builtin_users, load_users},
};
use self::{faults::Faults, grants::Grants, users::Users};

/// State shared by every handler.
struct Shared {
    config: EmulatorConfig,
    users: Mutex<Users>,
    /// Swapped whole when a test rotates the key (`Handle::rotate_signing_key`).
    signer: Mutex<SigningKey>,
    grants: Mutex<Grants>,
    faults: Mutex<Faults>,
    unlinks: Mutex<Vec<Unlink>>,
    http: reqwest::Client,
    base_url: Url,
}

/// A panic while holding a lock leaves plain maps behind: still usable.
/// Binds `listen`: the acceptor, the address bound (its port, when `listen` asked for any) and
/// the base URL, `public_url` when set (behind a proxy), else the bound address's.
async fn bind(
    listen: std::net::SocketAddr,
    public_url: Option<&Url>,
) -> anyhow::Result<(TcpAcceptor, std::net::SocketAddr, Url)> {
    let acceptor = TcpListener::bind(listen)
        .into_acceptor()
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().copied())
        .context("the listener has no TCP address")?;
    let base_url = match public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{bound}")).context("the bound address as a URL")?,
    };
    Ok((acceptor, bound, base_url))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn grants(&self) -> MutexGuard<'_, Grants> {
        lock(&self.grants)
    }

    fn users(&self) -> MutexGuard<'_, Users> {
        lock(&self.users)
    }

    /// A copy, so no lock is held across an `.await`.
    fn user(&self, id: i64) -> Option<EmulatedUser> {
        self.users().get(id).cloned()
    }

    fn signer(&self) -> SigningKey {
        lock(&self.signer).clone()
    }

    fn apps(&self) -> impl Iterator<Item = &KakaoApp> {
        std::iter::once(&self.config.app).chain(&self.config.other_apps)
    }

    /// The app a client id (REST, native or JS key) belongs to, and which of its keys it is.
    fn app_by_key(&self, client_id: &str) -> Option<(&KakaoApp, KeyKind)> {
        self.apps()
            .find_map(|app| app.key_kind(client_id).map(|kind| (app, kind)))
    }

    fn app_by_admin_key(&self, key: &str) -> Option<&KakaoApp> {
        self.apps().find(|app| app.is_admin_key(key))
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
        let signer = match &config.signing_key {
            Some(key) => key.clone(),
            None => tokio::task::spawn_blocking(SigningKey::generate)
                .await
                .context("generating the RSA key")??,
        };
        let (acceptor, bound, base_url) = bind(config.listen, config.public_url.as_ref()).await?;
        let http = reqwest::Client::builder()
            // The webhook contract: answer within 3 s; redirects count as failures (kakao-api.md 6.3).
            .timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        let shared = Arc::new(Shared {
            users: Mutex::new(Users::new(config.users.clone())?),
            config,
            signer: Mutex::new(signer),
            grants: Mutex::new(Grants::default()),
            faults: Mutex::new(Faults::default()),
            unlinks: Mutex::new(Vec::new()),
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

    /// In-process control of this emulator, before and while it serves (tests).
    pub fn handle(&self) -> Handle {
        Handle::new(self.shared.clone())
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
        let users = self.shared.users();
        for user in users.all() {
            out.push_str(&format!("    {}  {}\n", user.id(), user.label()));
        }
        out.push_str(&format!(
            "  authbridge: AUTHBRIDGE_KAKAO_API_BASE={url} AUTHBRIDGE_KAKAO_AUTH_BASE={url}\n  \
             mint a token: curl -s -X POST {base}emulator/tokens -H 'Content-Type: application/json' \
             -d '{{\"user_id\": {}}}'",
            users.all().first().map_or(0, EmulatedUser::id),
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
        .around(faults::act_out::<_, Shared>)
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
