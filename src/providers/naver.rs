//! Naver Login: an access token (from the Naver SDK) or a code (+ `state`) is verified with the
//! profile API `/v1/nid/me`; the token is kept and revoked at `/oauth2.0/revoke` when the user
//! deletes the account or disconnects Naver. Facts: docs/providers.md section 1.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{CodeGrant, KeptToken, Provider, ProviderError, ProviderTokens, ProviderUser, SocialApp};
use crate::config::{NaverSettings, ProviderSettings};

pub struct Naver {
    http: reqwest::Client,
    api_base: Url,
    auth_base: Url,
    timeout: Duration,
}

/// The token endpoint's answer: tokens, or `error` (with any status, even 200: docs/providers.md
/// 1.3, so never trust the status alone). `expires_in` is a string there; it is not read.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    error: Option<String>,
}

impl Naver {
    pub fn new(settings: &NaverSettings, providers: &ProviderSettings, http: reqwest::Client) -> Self {
        Self {
            http,
            api_base: settings.api_base.clone(),
            auth_base: settings.auth_base.clone(),
            timeout: providers.timeout,
        }
    }

    fn auth_url(&self, path: &str) -> Result<Url, ProviderError> {
        self.auth_base
            .join(path)
            .map_err(|e| ProviderError::Unavailable(e.to_string()))
    }

    /// `GET /v1/nid/me` (docs/providers.md 1.4, 1.5): `resultcode` "00" with `response`, else the
    /// token is refused (401 `024`/`028`, or any other code); 403 means our app lacks the API.
    async fn profile(&self, token: &SecretString) -> Result<Value, ProviderError> {
        let url = self
            .api_base
            .join("/v1/nid/me")
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(super::transport_error)?;
        let status = response.status();
        if status.is_server_error() || status.is_redirection() || status == reqwest::StatusCode::NOT_FOUND {
            return Err(ProviderError::Unavailable(format!("/v1/nid/me: HTTP {status}")));
        }
        if status == reqwest::StatusCode::FORBIDDEN {
            return Err(ProviderError::Misconfigured(
                "Naver refused the profile API to our app (403)".into(),
            ));
        }
        let body = super::read_body(response).await?;
        if !status.is_success() {
            return Err(ProviderError::InvalidToken);
        }
        let body: Value = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Unavailable("/v1/nid/me: unreadable body".into()))?;
        if body["resultcode"].as_str() != Some("00") {
            return Err(ProviderError::InvalidToken);
        }
        Ok(body["response"].clone())
    }

    async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, Vec<u8>), ProviderError> {
        let call = self.http.post(self.auth_url(path)?).form(form).send();
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(super::transport_error)?;
        let status = response.status();
        Ok((status, super::read_body(response).await?))
    }
}

/// The provider user of a `/v1/nid/me` `response`: only `id` is guaranteed (docs/providers.md 1.4).
fn parse_user(app: &SocialApp, profile: Value) -> Result<ProviderUser, ProviderError> {
    let uid = profile["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ProviderError::Unavailable("/v1/nid/me: no id".into()))?
        .to_owned();
    let email = profile["email"].as_str().filter(|e| !e.is_empty()).map(str::to_owned);
    let username_hint = profile["nickname"]
        .as_str()
        .or_else(|| profile["name"].as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .or_else(|| email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned));
    Ok(ProviderUser {
        uid,
        // Naver says nothing of verification and lets users set any address (docs/providers.md
        // 1.4): only the operator's opt-in lets the address join an existing user.
        email_verified: email.is_some() && app.settings.link_by_email,
        email,
        username_hint,
        extra_data: profile,
        social_app_id: Some(app.id),
        kept: None,
    })
}

#[async_trait::async_trait]
impl Provider for Naver {
    fn id(&self) -> &'static str {
        "naver"
    }

    /// Naver tells no app id for a token (docs/providers.md 1.4); its ids are per app, so another
    /// app's token names another id and cannot reach an account made through ours by uid.
    #[tracing::instrument(skip_all, fields(provider = "naver"))]
    async fn verify_access_token(&self, app: &SocialApp, token: &SecretString) -> Result<ProviderUser, ProviderError> {
        super::token_text(token)?;
        let profile = tokio::time::timeout(self.timeout, self.profile(token))
            .await
            .map_err(|_| ProviderError::Timeout)??;
        let mut user = parse_user(app, profile)?;
        user.kept = Some(KeptToken::access(token.clone()));
        Ok(user)
    }

    /// `/oauth2.0/token` with `grant_type=authorization_code`, the app's secret and `state`
    /// (docs/providers.md 1.3).
    #[tracing::instrument(skip_all, fields(provider = "naver"))]
    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.expose_secret()),
            ("code", grant.code.expose_secret()),
        ];
        if let Some(state) = &grant.state {
            form.push(("state", state));
        }
        let (status, body) = self.post_form("/oauth2.0/token", &form).await?;
        if status.is_server_error() || status.is_redirection() {
            return Err(ProviderError::Unavailable(format!("/oauth2.0/token: HTTP {status}")));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::Unavailable("/oauth2.0/token: unreadable body".into()))?;
        if let Some(access_token) = answer.access_token.filter(|t| !t.is_empty()) {
            return Ok(ProviderTokens {
                access_token: SecretString::from(access_token),
                id_token: None,
                refresh_token: answer.refresh_token.map(SecretString::from),
            });
        }
        Err(match answer.error.as_deref() {
            Some("invalid_client") => ProviderError::Misconfigured("Naver refused our client credentials".into()),
            Some("server_error" | "temporarily_unavailable") | None => {
                ProviderError::Unavailable(format!("/oauth2.0/token: {:?}", answer.error))
            }
            // invalid_request, unauthorized_client ("인증받지 않은 인증 코드"), invalid_grant.
            Some(_) => ProviderError::CodeRejected(
                "The authorization code or state is invalid, expired or already used.".into(),
            ),
        })
    }

    #[tracing::instrument(skip_all, fields(provider = "naver"))]
    async fn login_with_code(
        &self,
        app: &SocialApp,
        grant: &CodeGrant,
        _nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let tokens = self.exchange_code(app, grant).await?;
        let mut user = self.verify_access_token(app, &tokens.access_token).await?;
        // Revoking the refresh token revokes its access token too (docs/providers.md 1.7).
        if let Some(refresh) = tokens.refresh_token {
            user.kept = Some(KeptToken::refresh(refresh));
        }
        Ok(user)
    }

    /// `POST /oauth2.0/revoke` (docs/providers.md 1.7, the current form; the legacy
    /// `grant_type=delete` was removed from Naver's spec): 200 even for a dead token.
    #[tracing::instrument(skip_all, fields(provider = "naver"))]
    async fn revoke(&self, app: &SocialApp, kept: &KeptToken) -> Result<(), ProviderError> {
        let form = [
            ("client_id", app.client_id.as_str()),
            ("client_secret", app.secret.expose_secret()),
            ("token", kept.token.expose_secret()),
            ("token_type_hint", kept.hint),
        ];
        let (status, _) = self.post_form("/oauth2.0/revoke", &form).await?;
        match status.as_u16() {
            200..=299 => Ok(()),
            400 | 401 => Err(ProviderError::Misconfigured(format!(
                "Naver refused the revocation ({status})"
            ))),
            _ => Err(ProviderError::Unavailable(format!("/oauth2.0/revoke: HTTP {status}"))),
        }
    }

    /// Naver's OIDC flow is not supported: its id_token claims are undocumented
    /// (docs/providers.md section 4, item 4).
    async fn verify_id_token(
        &self,
        _app: &SocialApp,
        _id_token: &SecretString,
        _nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        Err(ProviderError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::AppSettings;

    fn app(link_by_email: bool) -> SocialApp {
        SocialApp {
            id: 1,
            provider: "naver".into(),
            name: "Naver".into(),
            client_id: "c".into(),
            secret: SecretString::from("s"),
            admin_key: SecretString::from(""),
            app_ids: vec![],
            client_keys: vec![],
            sites: vec![1],
            settings: AppSettings {
                link_by_email,
                ..AppSettings::default()
            },
        }
    }

    #[test]
    fn email_counts_as_verified_only_when_the_operator_opted_in() {
        let profile = json!({"id": "abc", "email": "a@naver.com", "nickname": "OpenAPI"});
        assert!(!parse_user(&app(false), profile.clone()).unwrap().email_verified);
        assert!(parse_user(&app(true), profile).unwrap().email_verified);
    }

    #[test]
    fn only_the_id_is_required_and_it_stays_a_string() {
        let user = parse_user(&app(false), json!({"id": "32742776"})).unwrap();
        assert_eq!(user.uid, "32742776");
        assert_eq!(user.email, None);
        assert!(parse_user(&app(false), json!({"id": 32742776})).is_err());
    }
}
