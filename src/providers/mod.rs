//! Identity providers: the `Provider` trait, what a verified login yields, and the registry.
//! Providers talk HTTP to the outside world and never touch the database.

mod app;
mod kakao;
mod metered;
mod oauth;
mod oidc;

use std::{collections::HashMap, sync::Arc};

use secrecy::SecretString;

pub use kakao::Kakao;

pub use app::SocialApp;

use crate::{
    config::{KakaoSettings, ProviderSettings},
    metrics::Metrics,
};

/// How verifying a provider credential failed; `ApiError` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider says the credential is invalid or expired.
    #[error("the provider rejected the credential")]
    InvalidToken,
    /// The credential is valid but was issued to an app this site does not trust.
    #[error("the credential was issued to another provider app")]
    AppMismatch,
    /// The provider did not answer within the configured timeout.
    #[error("the provider timed out")]
    Timeout,
    /// The provider failed (5xx, connection refused, unreadable answer).
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the authorization code (used, expired, redirect mismatch).
    #[error("the provider refused the code: {0}")]
    CodeRejected(String),
    /// The provider refused *our* credentials (client secret, key): an operator must act.
    #[error("the provider refused our app credentials: {0}")]
    Misconfigured(String),
    /// The id_token and the access token name different accounts.
    #[error("the id_token belongs to another account")]
    IdTokenMismatch,
}

/// An authorization code to exchange (+ PKCE verifier, + redirect URI when not the default).
pub struct CodeGrant {
    pub code: SecretString,
    pub code_verifier: Option<SecretString>,
    pub redirect_uri: Option<String>,
}

/// Tokens the provider's token endpoint returned.
pub struct ProviderTokens {
    pub access_token: SecretString,
    pub id_token: Option<SecretString>,
}

/// The provider's account, as verified: what the upsert needs.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    /// Stable account id at the provider, as a decimal string for Kakao.
    pub uid: String,
    pub email: Option<String>,
    /// True only when the provider vouches for the address (Kakao: valid *and* verified).
    pub email_verified: bool,
    /// Seed for a new user's username (nickname, else the email's local part).
    pub username_hint: Option<String>,
    /// The provider's full user-info JSON, kept as the social account's `extra_data`.
    pub extra_data: serde_json::Value,
    /// Our social app (`SocialApp::id`) the credential was verified for.
    pub social_app_id: Option<i32>,
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The provider id in URLs and the database (`kakao`).
    fn id(&self) -> &'static str;

    /// Verifies an access token that a client got from the provider, for `app`.
    async fn verify_access_token(&self, app: &SocialApp, token: &SecretString) -> Result<ProviderUser, ProviderError>;

    /// Exchanges an authorization code at the provider's token endpoint.
    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError>;

    /// Unlinks the account from `app` at the provider (account deletion), with the app's admin
    /// credentials. An account the provider no longer links counts as done.
    async fn unlink(&self, app: &SocialApp, uid: &str) -> Result<(), ProviderError>;

    /// Verifies an OIDC id_token issued for one of `app`'s client keys.
    async fn verify_id_token(
        &self,
        app: &SocialApp,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError>;
}

/// Providers by id; built once at start-up.
#[derive(Clone)]
pub struct Providers(Arc<HashMap<&'static str, Arc<dyn Provider>>>);

impl Providers {
    pub fn from_settings(settings: &ProviderSettings, kakao: &KakaoSettings, http: reqwest::Client) -> Self {
        let kakao: Arc<dyn Provider> = Arc::new(Kakao::new(kakao, settings, http));
        Self(Arc::new(HashMap::from([(kakao.id(), kakao)])))
    }

    /// The same providers, each call timed and counted in `metrics`.
    pub fn metered(self, metrics: &Metrics) -> Self {
        if !metrics.is_enabled() {
            return self;
        }
        let metered = self.0.iter().map(|(id, inner)| {
            let provider: Arc<dyn Provider> = Arc::new(metered::Metered {
                inner: inner.clone(),
                metrics: metrics.clone(),
            });
            (*id, provider)
        });
        Self(Arc::new(metered.collect()))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.0.get(id)
    }
}

/// The one outgoing HTTP client: rustls, pooled keep-alive connections, bounded timeouts.
/// Redirects are not followed: a 307 from a token endpoint would re-post the client secret, the
/// code and the PKCE verifier to wherever it points.
pub fn http_client(settings: &ProviderSettings) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .user_agent(concat!("authbridge/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// The most of a provider's answer we read: Kakao's largest bodies (user info, JWKS) are a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a provider's body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("timed out reading the body")]
    Timeout,
    #[error("the body is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("reading the body failed: {0}")]
    Transport(String),
}

impl From<BodyError> for ProviderError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Timeout => ProviderError::Timeout,
            other => ProviderError::Unavailable(other.to_string()),
        }
    }
}

/// Reads `response`'s body, refusing it past `MAX_RESPONSE_BYTES` (declared or streamed) so a
/// misbehaving provider cannot make us buffer without bound.
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(BodyError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            Err(e) => return Err(BodyError::Transport(e.without_url().to_string())),
        }
    }
}
