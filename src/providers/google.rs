//! Google: an id_token verified locally against Google's keys; an access token checked at
//! tokeninfo (issued to one of our client ids?) then read at userinfo; a code (+ PKCE) exchanged.
//! Facts: docs/providers.md section 2.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use super::{
    CodeGrant, KeptToken, Provider, ProviderError, ProviderTokens, ProviderUser, SocialApp, oauth, oidc::JwksCache,
};
use crate::config::{GoogleSettings, ProviderSettings};

pub struct Google {
    http: reqwest::Client,
    oauth_base: Url,
    api_base: Url,
    /// The configured issuer and its legacy form without the scheme (docs/providers.md 2.2).
    issuers: [String; 2],
    timeout: Duration,
    jwks: JwksCache,
}

impl Google {
    pub fn new(settings: &GoogleSettings, providers: &ProviderSettings, http: reqwest::Client) -> Self {
        let jwks_url = settings
            .api_base
            .join("/oauth2/v3/certs")
            .map(String::from)
            .unwrap_or_default();
        let bare = settings.issuer.trim_start_matches("https://").to_owned();
        Self {
            http,
            oauth_base: settings.oauth_base.clone(),
            api_base: settings.api_base.clone(),
            issuers: [settings.issuer.clone(), bare],
            timeout: providers.timeout,
            jwks: JwksCache::new(jwks_url),
        }
    }

    /// A GET answered with JSON: 4xx means the token is refused, 5xx that Google failed.
    async fn get_json(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value, ProviderError> {
        let response = request.send().await.map_err(super::transport_error)?;
        let status = response.status();
        if status.is_server_error() || status.is_redirection() {
            return Err(ProviderError::Unavailable(format!("{what}: HTTP {status}")));
        }
        let body = super::read_body(response).await?;
        if !status.is_success() {
            return Err(ProviderError::InvalidToken);
        }
        serde_json::from_slice(&body).map_err(|_| ProviderError::Unavailable(format!("{what}: unreadable body")))
    }

    fn url(base: &Url, path: &str) -> Result<Url, ProviderError> {
        base.join(path).map_err(|e| ProviderError::Unavailable(e.to_string()))
    }
}

/// `email_verified` is a bool in id_tokens and userinfo, the string `"true"` at tokeninfo.
fn is_true(v: &Value) -> bool {
    v.as_bool()
        .unwrap_or_else(|| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
}

/// The provider user of OIDC claims (an id_token or userinfo); `sub` is the key, never the email.
fn parse_user(app: &SocialApp, claims: Value) -> Result<ProviderUser, ProviderError> {
    let uid = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or(ProviderError::InvalidToken)?
        .to_owned();
    let email = claims["email"].as_str().filter(|e| !e.is_empty()).map(str::to_owned);
    let username_hint = claims["name"]
        .as_str()
        .or_else(|| claims["given_name"].as_str())
        .map(str::to_owned)
        .or_else(|| email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned));
    Ok(ProviderUser {
        uid,
        email_verified: email.is_some() && is_true(&claims["email_verified"]),
        email,
        username_hint,
        extra_data: claims,
        social_app_id: Some(app.id),
        kept: None,
    })
}

#[async_trait::async_trait]
impl Provider for Google {
    fn id(&self) -> &'static str {
        "google"
    }

    /// tokeninfo says which client the token was issued to (`aud`/`azp`): it must be one of the
    /// app's client ids (token substitution, as Kakao's `app_id`); userinfo says who it is.
    #[tracing::instrument(skip_all, fields(provider = "google"))]
    async fn verify_access_token(&self, app: &SocialApp, token: &SecretString) -> Result<ProviderUser, ProviderError> {
        let text = super::token_text(token)?;
        let info = self
            .http
            .get(Self::url(&self.oauth_base, "/tokeninfo")?)
            .query(&[("access_token", text)]);
        let me = self
            .http
            .get(Self::url(&self.api_base, "/oauth2/v3/userinfo")?)
            .bearer_auth(text);
        let calls = async { tokio::try_join!(self.get_json(info, "tokeninfo"), self.get_json(me, "userinfo")) };
        let (info, me) = tokio::time::timeout(self.timeout, calls)
            .await
            .map_err(|_| ProviderError::Timeout)??;
        let audiences = app.audiences();
        let issued_to = |field: &str| info[field].as_str().is_some_and(|c| audiences.iter().any(|a| a == c));
        if !issued_to("aud") && !issued_to("azp") {
            tracing::info!("google token issued to a foreign client");
            return Err(ProviderError::AppMismatch);
        }
        if info["sub"].as_str() != me["sub"].as_str() {
            return Err(ProviderError::Unavailable(
                "tokeninfo and userinfo disagree on sub".into(),
            ));
        }
        let mut user = parse_user(app, me)?;
        user.kept = Some(KeptToken::access(token.clone()));
        Ok(user)
    }

    #[tracing::instrument(skip_all, fields(provider = "google"))]
    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError> {
        let url = Self::url(&self.oauth_base, "/token")?;
        oauth::exchange_code(
            &self.http,
            url.as_str(),
            &app.client_id,
            &app.secret,
            grant,
            self.timeout,
        )
        .await
    }

    /// The code's tokens are verified as a client's would be, and the refresh token (when Google
    /// gave one: `access_type=offline`) is kept for revoking.
    #[tracing::instrument(skip_all, fields(provider = "google"))]
    async fn login_with_code(
        &self,
        app: &SocialApp,
        grant: &CodeGrant,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let tokens = self.exchange_code(app, grant).await?;
        let mut user = self.verify_access_token(app, &tokens.access_token).await?;
        self.check_id_token(app, tokens.id_token.as_ref(), nonce, &user).await?;
        if let Some(refresh) = tokens.refresh_token {
            user.kept = Some(KeptToken::refresh(refresh));
        }
        Ok(user)
    }

    /// RS256 with Google's keys, `iss` either form, `aud` among the app's client ids (web,
    /// Android, iOS), `exp`; `nonce` when the client sent one (docs/providers.md 2.2).
    #[tracing::instrument(skip_all, fields(provider = "google"))]
    async fn verify_id_token(
        &self,
        app: &SocialApp,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let issuers = [self.issuers[0].as_str(), self.issuers[1].as_str()];
        let audiences = app.audiences();
        let verify = self
            .jwks
            .verify(&self.http, id_token.expose_secret(), &issuers, &audiences, nonce);
        let (_, claims) = tokio::time::timeout(self.timeout, verify)
            .await
            .map_err(|_| ProviderError::Timeout)??;
        parse_user(app, claims)
    }

    /// `POST /revoke` (docs/providers.md 2.6): 200 when revoked; 400 when the token is already
    /// dead (expired access token, revoked grant), which is as good.
    #[tracing::instrument(skip_all, fields(provider = "google"))]
    async fn revoke(&self, _app: &SocialApp, kept: &KeptToken) -> Result<(), ProviderError> {
        let call = self
            .http
            .post(Self::url(&self.oauth_base, "/revoke")?)
            .form(&[("token", kept.token.expose_secret())])
            .send();
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(super::transport_error)?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::BAD_REQUEST {
            return Ok(());
        }
        Err(ProviderError::Unavailable(format!("/revoke: HTTP {status}")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn email_verified_may_be_a_bool_or_a_string() {
        assert!(is_true(&json!(true)));
        assert!(is_true(&json!("true")));
        assert!(is_true(&json!("TRUE")));
        assert!(!is_true(&json!("false")));
        assert!(!is_true(&Value::Null));
    }
}
