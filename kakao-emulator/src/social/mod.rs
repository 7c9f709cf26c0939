//! Naver, Google and Sign in with Apple on one port (`authbridge emulate naver|apple|google`):
//! each provider's own paths (they do not overlap), scripted through `SocialHandle` by tests or
//! minted through `/emulator/{naver,google,apple}/tokens`. Shares the Kakao emulator's machinery:
//! faults (down, slow, failing paths), RSA signing keys and their rotation. Facts:
//! docs/providers.md. In memory only.

mod apple;
mod google;
mod naver;

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use p256::pkcs8::EncodePrivateKey;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, http::header, listener::TcpAcceptor,
    middleware::SensitiveHeader, post,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use url::Url;

use crate::{
    Fault, SigningKey,
    faults::{Faults, HasFaults},
    lock,
};

pub const DEFAULT_NAVER_CLIENT_ID: &str = "emulator-naver-client";
pub const DEFAULT_NAVER_CLIENT_SECRET: &str = "emulator-naver-secret";
pub const DEFAULT_GOOGLE_CLIENT_ID: &str = "emulator-google-web.apps.googleusercontent.com";
pub const DEFAULT_GOOGLE_CLIENT_SECRET: &str = "emulator-google-secret";
pub const DEFAULT_APPLE_CLIENT_ID: &str = "com.example.emulator";
pub const DEFAULT_APPLE_TEAM_ID: &str = "EMUTEAM001";
pub const DEFAULT_APPLE_KEY_ID: &str = "EMUKEY0001";
/// The issuers the real providers use, so a verifier needs no change beyond its base URLs.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// The emulated Naver application.
#[derive(Debug, Clone)]
pub struct NaverApp {
    pub client_id: String,
    pub client_secret: SecretString,
}

/// The emulated Google project: its OAuth client ids (web first: codes are exchanged with it).
#[derive(Debug, Clone)]
pub struct GoogleApp {
    pub client_ids: Vec<String>,
    pub client_secret: SecretString,
}

/// The emulated Apple team: its client ids (bundle id, Services id) and the Sign in with Apple
/// key whose `.p8` signs the client secrets.
#[derive(Debug, Clone)]
pub struct AppleApp {
    pub client_ids: Vec<String>,
    pub team_id: String,
    pub key: AppleKey,
}

/// A team's Sign in with Apple private key (P-256), as the developer downloads it (`.p8`).
#[derive(Clone)]
pub struct AppleKey {
    pub key_id: String,
    p8: SecretString,
    public: DecodingKey,
}

impl std::fmt::Debug for AppleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AppleKey {
    /// A fresh P-256 key under `key_id`.
    pub fn generate(key_id: &str) -> anyhow::Result<Self> {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret.to_pkcs8_der().context("encoding the P-256 key")?;
        let body = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let p8 = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        );
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let (x, y) = (point.x().context("x")?, point.y().context("y")?);
        let public = DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))
            .context("the public key")?;
        Ok(Self {
            key_id: key_id.to_owned(),
            p8: SecretString::from(p8),
            public,
        })
    }

    /// The `.p8` file's text (PKCS#8 PEM), for the social app's secret.
    pub fn p8_pem(&self) -> &SecretString {
        &self.p8
    }
}

/// What the emulator serves.
#[derive(Debug, Clone)]
pub struct SocialConfig {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    pub public_url: Option<Url>,
    pub naver: NaverApp,
    pub google: GoogleApp,
    pub apple: AppleApp,
    /// Google's and Apple's id_token keys; `None` makes fresh ones (slow: RSA).
    pub google_key: Option<SigningKey>,
    pub apple_key: Option<SigningKey>,
    /// Where `/emulator/apple/notify` posts Apple's server-to-server notifications.
    pub apple_notifications: Option<Url>,
}

impl SocialConfig {
    /// The defaults of `authbridge emulate`: published client ids and secrets, a fresh Apple key.
    pub fn with_defaults(listen: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            listen,
            public_url: None,
            naver: NaverApp {
                client_id: DEFAULT_NAVER_CLIENT_ID.into(),
                client_secret: SecretString::from(DEFAULT_NAVER_CLIENT_SECRET),
            },
            google: GoogleApp {
                client_ids: vec![DEFAULT_GOOGLE_CLIENT_ID.into()],
                client_secret: SecretString::from(DEFAULT_GOOGLE_CLIENT_SECRET),
            },
            apple: AppleApp {
                client_ids: vec![DEFAULT_APPLE_CLIENT_ID.into()],
                team_id: DEFAULT_APPLE_TEAM_ID.into(),
                key: AppleKey::generate(DEFAULT_APPLE_KEY_ID)?,
            },
            google_key: None,
            apple_key: None,
            apple_notifications: None,
        })
    }
}

/// One revocation the emulator accepted: which provider, which token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub provider: &'static str,
    pub token: String,
}

/// A token or code the emulator knows, with whom it names.
#[derive(Debug, Clone)]
struct Grant {
    /// Naver: the profile `response`; Google: the userinfo claims; Apple: id_token claims.
    user: Value,
    /// The client it was issued to (Google `aud`, Apple `aud`).
    client_id: String,
}

#[derive(Debug, Clone)]
struct Code {
    grant: Grant,
    state: Option<String>,
    /// S256 challenge of the PKCE verifier, when the code was issued with one.
    challenge: Option<String>,
    nonce: Option<String>,
    /// Give a refresh token at the exchange (Google only with `access_type=offline`).
    refresh: bool,
}

#[derive(Default)]
struct Tokens {
    access: HashMap<(&'static str, String), Grant>,
    refresh: HashMap<(&'static str, String), Grant>,
    codes: HashMap<(&'static str, String), Code>,
    expired: HashSet<(&'static str, String)>,
    revocations: Vec<Revocation>,
    counter: u64,
}

impl Tokens {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut bytes = [0u8; 12];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        format!("{prefix}-{}-{}", self.counter, hex::encode(bytes))
    }

    /// A live access token's grant: known, not expired, not revoked.
    fn live(&self, provider: &'static str, token: &str) -> Option<&Grant> {
        let key = (provider, token.to_owned());
        if self.expired.contains(&key) {
            return None;
        }
        self.access.get(&key)
    }
}

struct Social {
    config: SocialConfig,
    base_url: Url,
    google_signer: Mutex<SigningKey>,
    apple_signer: Mutex<SigningKey>,
    tokens: Mutex<Tokens>,
    faults: Mutex<Faults>,
    http: reqwest::Client,
}

impl HasFaults for Social {
    fn faults(&self) -> &Mutex<Faults> {
        &self.faults
    }
}

impl Social {
    fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }
}

/// A bound, not yet serving emulator: `build`, read `port()`, then `run_until_stopped`.
pub struct SocialEmulator {
    acceptor: TcpAcceptor,
    port: u16,
    shared: Arc<Social>,
}

impl SocialEmulator {
    pub async fn build(config: SocialConfig) -> anyhow::Result<Self> {
        let (google_key, apple_key) = (config.google_key.clone(), config.apple_key.clone());
        let fresh = |key: Option<SigningKey>| async move {
            match key {
                Some(key) => Ok::<_, anyhow::Error>(key),
                None => tokio::task::spawn_blocking(SigningKey::generate).await?,
            }
        };
        let (google_key, apple_key) = (fresh(google_key).await?, fresh(apple_key).await?);
        let (acceptor, bound, base_url) = crate::bind(config.listen, config.public_url.as_ref()).await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            acceptor,
            port: bound.port(),
            shared: Arc::new(Social {
                config,
                base_url,
                google_signer: Mutex::new(google_key),
                apple_signer: Mutex::new(apple_key),
                tokens: Mutex::new(Tokens::default()),
                faults: Mutex::new(Faults::default()),
                http,
            }),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> SocialHandle {
        SocialHandle {
            shared: self.shared.clone(),
        }
    }

    /// What start-up prints for `provider` (`naver`, `google`, `apple`): the settings authbridge
    /// needs and how to mint a token.
    pub fn banner(&self, provider: &str) -> String {
        let c = &self.shared.config;
        let url = self.shared.base_url.as_str().trim_end_matches('/');
        let mut out = format!("Naver, Google and Apple emulator on {url}\n");
        let env = match provider {
            "naver" => format!(
                "  Naver client id {} secret {}\n  authbridge: AUTHBRIDGE_NAVER_API_BASE={url} AUTHBRIDGE_NAVER_AUTH_BASE={url}\n  \
                 socialapp add --provider naver --client-id {} --secret {}\n",
                c.naver.client_id,
                c.naver.client_secret.expose_secret(),
                c.naver.client_id,
                c.naver.client_secret.expose_secret()
            ),
            "google" => format!(
                "  Google client ids {} secret {}\n  authbridge: AUTHBRIDGE_GOOGLE_OAUTH_BASE={url} AUTHBRIDGE_GOOGLE_API_BASE={url}\n  \
                 socialapp add --provider google --client-id {} --secret {}\n",
                c.google.client_ids.join(" "),
                c.google.client_secret.expose_secret(),
                c.google.client_ids.first().map_or("", String::as_str),
                c.google.client_secret.expose_secret()
            ),
            _ => format!(
                "  Apple client ids {} team {} key id {}\n  authbridge: AUTHBRIDGE_APPLE_BASE={url}\n  \
                 the team key (.p8) for `socialapp add --provider apple --secret-file …`:\n{}",
                c.apple.client_ids.join(" "),
                c.apple.team_id,
                c.apple.key.key_id,
                c.apple.key.p8.expose_secret()
            ),
        };
        out.push_str(&env);
        out.push_str(&format!(
            "  mint tokens: curl -s -X POST {url}/emulator/{provider}/tokens -H 'Content-Type: application/json' -d '{{}}'"
        ));
        out
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        tracing::info!(port = self.port, "naver/google/apple emulator listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(route(self.shared), shutdown, Some(Duration::from_secs(5)))
            .await
    }
}

fn route(shared: Arc<Social>) -> impl Endpoint {
    Route::new()
        // Naver (docs/providers.md 1)
        .at("/v1/nid/me", get(naver::me).post(naver::me))
        .at(
            "/oauth2.0/token",
            get(naver::token_endpoint).post(naver::token_endpoint),
        )
        .at("/oauth2.0/revoke", post(naver::revoke_token))
        // Google (docs/providers.md 2)
        .at("/tokeninfo", get(google::tokeninfo).post(google::tokeninfo))
        .at("/oauth2/v3/userinfo", get(google::userinfo))
        .at("/v1/userinfo", get(google::userinfo))
        .at("/token", post(google::token_endpoint))
        .at("/revoke", post(google::revoke_token))
        .at("/oauth2/v3/certs", get(google::certs))
        // Apple (docs/providers.md 3)
        .at("/auth/token", post(apple::token_endpoint))
        .at("/auth/revoke", post(apple::revoke_token))
        .at("/auth/keys", get(apple::keys))
        // Emulator controls
        .at("/emulator/naver/tokens", post(naver::mint))
        .at("/emulator/google/tokens", post(google::mint))
        .at("/emulator/apple/tokens", post(apple::mint))
        .at("/emulator/apple/notify", post(apple::notify))
        .with(SensitiveHeader::new().header(header::AUTHORIZATION))
        .around(crate::faults::act_out::<_, Social>)
        .around(log_request)
        .data(shared)
}

/// One line per request: method, path (never the query) and status.
async fn log_request<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let response = next.call(req).await.map(IntoResponse::into_response);
    let status = response.as_ref().map_or_else(|e| e.status(), |r| r.status());
    tracing::info!(%method, path, status = status.as_u16(), "social emulator");
    response
}

/// Query string and urlencoded body together, as these token endpoints read both.
async fn params(req: &Request, body: poem::Body) -> HashMap<String, String> {
    let body = crate::read_body(body).await.unwrap_or_default();
    crate::params(req, &body)
}

fn reply(status: u16, body: &Value) -> Response {
    crate::json_response(
        poem::http::StatusCode::from_u16(status).unwrap_or(poem::http::StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

fn secret_is(secret: &SecretString, presented: Option<&String>) -> bool {
    presented.is_some_and(|p| crate::config::secret_eq(secret, p))
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// In-process control of the emulator (tests): script tokens and codes, sign tokens, fail.
#[derive(Clone)]
pub struct SocialHandle {
    shared: Arc<Social>,
}

impl SocialHandle {
    /// Base URL for every host of the three providers.
    pub fn base_url(&self) -> &Url {
        &self.shared.base_url
    }

    /// `token` is a valid Naver access token of the user whose `/v1/nid/me` `response` is `profile`.
    pub fn naver_accepts_token(&self, token: &str, profile: Value) {
        let grant = Grant {
            user: profile,
            client_id: self.shared.config.naver.client_id.clone(),
        };
        self.shared.tokens().access.insert(("naver", token.to_owned()), grant);
    }

    /// `code` is a Naver authorization code of `profile`, issued with `state`.
    pub fn naver_issues_code(&self, code: &str, state: Option<&str>, profile: Value) {
        let grant = Grant {
            user: profile,
            client_id: self.shared.config.naver.client_id.clone(),
        };
        self.insert_code("naver", code, grant, state, None, None, true);
    }

    /// `token` is a valid Google access token of the user whose userinfo is `claims`, issued to
    /// `client_id` (tokeninfo's `aud`/`azp`; another project's id makes a "foreign" token).
    pub fn google_accepts_token(&self, token: &str, claims: Value, client_id: &str) {
        let grant = Grant {
            user: claims,
            client_id: client_id.to_owned(),
        };
        self.shared.tokens().access.insert(("google", token.to_owned()), grant);
    }

    /// `code` is a Google authorization code of `claims` for the first client id, with the S256
    /// challenge of `code_verifier` when given; `offline` adds a refresh token at the exchange.
    pub fn google_issues_code(&self, code: &str, claims: Value, code_verifier: Option<&str>, offline: bool) {
        let grant = Grant {
            user: claims,
            client_id: self
                .shared
                .config
                .google
                .client_ids
                .first()
                .cloned()
                .unwrap_or_default(),
        };
        let challenge = code_verifier.map(pkce_challenge);
        self.insert_code("google", code, grant, None, challenge, None, offline);
    }

    /// `code` is an Apple authorization code of the user whose id_token claims (beside `iss`,
    /// `aud`, `iat`, `exp`) are `claims`, for `client_id`; the exchange echoes `nonce`.
    pub fn apple_issues_code(&self, code: &str, claims: Value, client_id: &str, nonce: Option<&str>) {
        let grant = Grant {
            user: claims,
            client_id: client_id.to_owned(),
        };
        self.insert_code("apple", code, grant, None, None, nonce.map(str::to_owned), true);
    }

    #[expect(clippy::too_many_arguments, reason = "one place that files every kind of code")]
    fn insert_code(
        &self,
        provider: &'static str,
        code: &str,
        grant: Grant,
        state: Option<&str>,
        challenge: Option<String>,
        nonce: Option<String>,
        refresh: bool,
    ) {
        let code_row = Code {
            grant,
            state: state.map(str::to_owned),
            challenge,
            nonce,
            refresh,
        };
        self.shared.tokens().codes.insert((provider, code.to_owned()), code_row);
    }

    /// The access token's lifetime ends now (Naver, Google).
    pub fn expire_token(&self, provider: &'static str, token: &str) {
        self.shared.tokens().expired.insert((provider, token.to_owned()));
    }

    /// An RS256 JWT over any claims with Google's published key.
    pub fn sign_google(&self, claims: &impl Serialize) -> String {
        lock(&self.shared.google_signer).sign(claims, None).unwrap_or_default()
    }

    /// An RS256 JWT over any claims with Apple's published key (id_tokens, notifications).
    pub fn sign_apple(&self, claims: &impl Serialize) -> String {
        lock(&self.shared.apple_signer).sign(claims, None).unwrap_or_default()
    }

    /// As `sign_apple`/`sign_google` (by `provider`), under a `kid` the JWKS does not publish.
    pub fn sign_with_kid(&self, provider: &str, claims: &impl Serialize, kid: &str) -> String {
        let signer = if provider == "apple" {
            &self.shared.apple_signer
        } else {
            &self.shared.google_signer
        };
        lock(signer).sign(claims, Some(kid)).unwrap_or_default()
    }

    /// The provider (`google` or `apple`) rotated its key: only `key` is published and used.
    pub fn rotate_key(&self, provider: &str, key: SigningKey) {
        let signer = if provider == "apple" {
            &self.shared.apple_signer
        } else {
            &self.shared.google_signer
        };
        *lock(signer) = key;
    }

    /// Tokens revoked so far (Naver `/oauth2.0/revoke`, Google `/revoke`, Apple `/auth/revoke`).
    pub fn revocations(&self) -> Vec<Revocation> {
        self.shared.tokens().revocations.clone()
    }

    /// Every provider endpoint answers 500 until `is_up`.
    pub fn is_down(&self) {
        lock(&self.shared.faults).set_everywhere(Some(Fault::Status(500)));
    }

    /// No faults and no delay left.
    pub fn is_up(&self) {
        let mut faults = lock(&self.shared.faults);
        faults.set_everywhere(None);
        faults.clear_paths();
        faults.set_delay(None);
    }

    /// Every endpoint waits `delay` before answering.
    pub fn is_slow(&self, delay: Duration) {
        lock(&self.shared.faults).set_delay(Some(delay));
    }

    /// The endpoint at `path` answers `fault` until `is_up`.
    pub fn fails(&self, path: &str, fault: Fault) {
        lock(&self.shared.faults).set_on(path, fault);
    }

    /// Requests received at exactly `path`.
    pub fn calls(&self, path: &str) -> usize {
        lock(&self.shared.faults).calls(path)
    }
}

/// The S256 PKCE challenge of `verifier`.
fn pkce_challenge(verifier: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Takes a code once: a second exchange finds nothing (codes are single-use everywhere).
fn take_code(shared: &Social, provider: &'static str, code: &str) -> Option<Code> {
    shared.tokens().codes.remove(&(provider, code.to_owned()))
}

/// An access token and (when asked) a refresh token for `grant`.
fn issue(shared: &Social, provider: &'static str, grant: &Grant, refresh: bool) -> (String, Option<String>) {
    let mut tokens = shared.tokens();
    let access = tokens.next(&format!("{provider}-access"));
    tokens.access.insert((provider, access.clone()), grant.clone());
    let refresh = refresh.then(|| {
        let token = tokens.next(&format!("{provider}-refresh"));
        tokens.refresh.insert((provider, token.clone()), grant.clone());
        token
    });
    (access, refresh)
}

/// Revokes `token` (access or refresh) of `provider` and what was issued with it; records it.
fn revoke(shared: &Social, provider: &'static str, token: &str) {
    let mut tokens = shared.tokens();
    let key = (provider, token.to_owned());
    tokens.access.remove(&key);
    tokens.refresh.remove(&key);
    tokens.revocations.push(Revocation {
        provider,
        token: token.to_owned(),
    });
}

/// Serializes a JWKS for a signer.
fn jwks(signer: &Mutex<SigningKey>) -> Response {
    reply(200, &lock(signer).jwks())
}

/// A JSON body of at most 64 KiB, or `{}`.
async fn json_body(body: poem::Body) -> Value {
    let bytes = crate::read_body(body).await.unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({}))
}
