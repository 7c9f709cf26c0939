//! Identity providers: the `Provider` trait, what a verified login yields, and the registry.
//! Providers talk HTTP to the outside world and never touch the database.

mod app;
pub mod apple;
mod google;
mod kakao;
mod metered;
mod naver;
mod oauth;
mod oidc;

use std::{collections::HashMap, sync::Arc};

use secrecy::SecretString;

pub use apple::{Apple, AppleEvent, AppleNotification};
pub use google::Google;
pub use kakao::Kakao;
pub use naver::Naver;

pub use app::{AppSettings, SocialApp};

use crate::{
    config::{AppleSettings, GoogleSettings, KakaoSettings, NaverSettings, ProviderSettings},
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
    /// The `state` of the authorize request, for providers that want it again (Naver).
    pub state: Option<String>,
}

/// Tokens the provider's token endpoint returned.
pub struct ProviderTokens {
    pub access_token: SecretString,
    pub id_token: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

/// A provider token kept to revoke the link later (Apple's refresh token, Naver's and Google's
/// tokens): stored in `social_tokens`, never returned or logged.
#[derive(Debug, Clone)]
pub struct KeptToken {
    pub token: SecretString,
    /// `refresh_token` or `access_token` (the revoke endpoints' `token_type_hint`).
    pub hint: &'static str,
}

impl KeptToken {
    pub fn refresh(token: SecretString) -> Self {
        Self {
            token,
            hint: "refresh_token",
        }
    }

    pub fn access(token: SecretString) -> Self {
        Self {
            token,
            hint: "access_token",
        }
    }
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
    /// A token to keep for revoking the link at the provider later (deletion, disconnect).
    pub kept: Option<KeptToken>,
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The provider id in URLs and the database (`kakao`).
    fn id(&self) -> &'static str;

    /// Verifies an access token that a client got from the provider, for `app`.
    async fn verify_access_token(&self, app: &SocialApp, token: &SecretString) -> Result<ProviderUser, ProviderError>;

    /// Exchanges an authorization code at the provider's token endpoint.
    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError>;

    /// Ends the link of account `uid` with `app` at the provider (account deletion): Kakao
    /// unlinks with the app's admin key; the others revoke `kept`, the token kept at login
    /// (nothing kept: nothing to revoke). An account the provider no longer links counts as done.
    async fn unlink(&self, app: &SocialApp, uid: &str, kept: Option<&KeptToken>) -> Result<(), ProviderError> {
        let _ = uid;
        match kept {
            Some(kept) => self.revoke(app, kept).await,
            None => Ok(()),
        }
    }

    /// Whether `unlink` can act with `app` (Kakao: only with the app's admin key).
    fn can_unlink(&self, app: &SocialApp) -> bool {
        let _ = app;
        true
    }

    /// Revokes a kept token when the user disconnects the account (Kakao keeps none).
    async fn revoke(&self, app: &SocialApp, kept: &KeptToken) -> Result<(), ProviderError> {
        let _ = (app, kept);
        Ok(())
    }

    /// The account an access token (+ an id_token of the same login) proves: the access token is
    /// verified, then the id_token must name the same account.
    async fn login_with_access_token(
        &self,
        app: &SocialApp,
        token: &SecretString,
        id_token: Option<&SecretString>,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let account = self.verify_access_token(app, token).await?;
        self.check_id_token(app, id_token, nonce, &account).await?;
        Ok(account)
    }

    /// The account an authorization code proves: exchanged, then verified as an access token
    /// (+ the id_token that came with it).
    async fn login_with_code(
        &self,
        app: &SocialApp,
        grant: &CodeGrant,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let tokens = self.exchange_code(app, grant).await?;
        let account = self.verify_access_token(app, &tokens.access_token).await?;
        self.check_id_token(app, tokens.id_token.as_ref(), nonce, &account)
            .await?;
        Ok(account)
    }

    /// An id_token that comes with an access token must be valid and name the same account.
    async fn check_id_token(
        &self,
        app: &SocialApp,
        id_token: Option<&SecretString>,
        nonce: Option<&str>,
        account: &ProviderUser,
    ) -> Result<(), ProviderError> {
        let Some(id_token) = id_token else { return Ok(()) };
        let claimed = self.verify_id_token(app, id_token, nonce).await?;
        if claimed.uid != account.uid {
            return Err(ProviderError::IdTokenMismatch);
        }
        Ok(())
    }

    /// Verifies an OIDC id_token issued for one of `app`'s client keys.
    async fn verify_id_token(
        &self,
        app: &SocialApp,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError>;
}

/// The settings sections of the providers built in.
pub struct ProviderSections<'a> {
    pub shared: &'a ProviderSettings,
    pub kakao: &'a KakaoSettings,
    pub naver: &'a NaverSettings,
    pub apple: &'a AppleSettings,
    pub google: &'a GoogleSettings,
}

impl<'a> ProviderSections<'a> {
    /// The sections of `settings` the providers are built from.
    pub fn of(settings: &'a crate::config::Settings) -> Self {
        Self {
            shared: &settings.providers,
            kakao: &settings.kakao,
            naver: &settings.naver,
            apple: &settings.apple,
            google: &settings.google,
        }
    }
}

/// The provider ids built in, in the order the spec lists them.
pub const BUILT_IN: [&str; 4] = ["kakao", "naver", "apple", "google"];

/// Providers by id; built once at start-up. Apple is also kept by type: its server-to-server
/// notifications are verified with its keys.
#[derive(Clone)]
pub struct Providers(Arc<HashMap<&'static str, Arc<dyn Provider>>>, Arc<Apple>);

impl Providers {
    pub fn from_settings(sections: ProviderSections<'_>, http: reqwest::Client) -> Self {
        let shared = sections.shared;
        let apple = Arc::new(Apple::new(sections.apple, shared, http.clone()));
        let providers: [Arc<dyn Provider>; 4] = [
            Arc::new(Kakao::new(sections.kakao, shared, http.clone())),
            Arc::new(Naver::new(sections.naver, shared, http.clone())),
            apple.clone(),
            Arc::new(Google::new(sections.google, shared, http)),
        ];
        Self(Arc::new(providers.into_iter().map(|p| (p.id(), p)).collect()), apple)
    }

    /// Sign in with Apple, for its notifications endpoint.
    pub fn apple(&self) -> &Apple {
        &self.1
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
        Self(Arc::new(metered.collect()), self.1.clone())
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

/// A failed send: timed out (504) or not reached (502). Never the URL (it may hold a token).
pub(crate) fn transport_error(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout
    } else {
        ProviderError::Unavailable(e.without_url().to_string())
    }
}

/// The text of a token the client sent, refused (400, not 502) when it could not even be sent
/// in a header (empty, control or non-ASCII characters): no provider issued it.
pub(crate) fn token_text(token: &SecretString) -> Result<&str, ProviderError> {
    use secrecy::ExposeSecret;
    let text = token.expose_secret();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ProviderError::InvalidToken);
    }
    Ok(text)
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
