//! Kakao Login: verifies an access token with `/v1/user/access_token_info` (which app it was
//! issued to) and `/v2/user/me` (who it is). Facts: shared/kakao-api.md sections 1–3.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::SocialApp;
use super::{CodeGrant, KeptToken, Provider, ProviderError, ProviderTokens, ProviderUser, oauth, oidc::JwksCache};
use crate::config::{KakaoSettings, ProviderSettings};

pub struct Kakao {
    http: reqwest::Client,
    api_base: Url,
    auth_base: Url,
    issuer: String,
    timeout: Duration,
    jwks: JwksCache,
}

/// `/v1/user/access_token_info`; `appId` is the deprecated camelCase alias (kakao-api.md §2).
#[derive(Debug, Deserialize)]
struct TokenInfo {
    id: i64,
    #[serde(alias = "appId")]
    app_id: i64,
}

/// Kakao's kapi error body (`{"msg", "code"}`, kakao-api.md §3).
#[derive(Debug, Deserialize)]
struct KakaoErrorBody {
    code: i64,
}

impl Kakao {
    pub fn new(settings: &KakaoSettings, providers: &ProviderSettings, http: reqwest::Client) -> Self {
        let jwks_url = settings
            .auth_base
            .join("/.well-known/jwks.json")
            .map(String::from)
            .unwrap_or_default();
        Self {
            http,
            api_base: settings.api_base.clone(),
            auth_base: settings.auth_base.clone(),
            issuer: settings.issuer.clone(),
            timeout: providers.timeout,
            jwks: JwksCache::new(jwks_url),
        }
    }

    async fn get_json(&self, path: &str, token: &SecretString) -> Result<Value, ProviderError> {
        let url = self
            .api_base
            .join(path)
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .map_err(map_transport_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(ProviderError::Unavailable(format!(
                "{path}: redirect ({status}) not followed"
            )));
        }
        let bytes = super::read_body(response).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|_| ProviderError::Unavailable(format!("{path}: unreadable 200 body")));
        }
        if status.is_server_error() {
            return Err(ProviderError::Unavailable(format!("{path}: HTTP {status}")));
        }
        let code = serde_json::from_slice::<KakaoErrorBody>(&bytes).map(|b| b.code).ok();
        match code {
            // -1 (and -7, -603, -9798) are Kakao-side failures: do not blame the token (§2, §3.1).
            Some(-1 | -7 | -603 | -9798) => Err(ProviderError::Unavailable(format!("{path}: Kakao code {code:?}"))),
            // -10 is a quota problem of our app, not of the user's token.
            Some(-10) => Err(ProviderError::Unavailable(format!("{path}: Kakao quota exceeded"))),
            _ => Err(ProviderError::InvalidToken),
        }
    }
}

fn map_transport_error(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout
    } else {
        // Never the URL with query or the token: reqwest's Display holds neither headers nor body.
        ProviderError::Unavailable(e.without_url().to_string())
    }
}

#[async_trait::async_trait]
impl Provider for Kakao {
    fn id(&self) -> &'static str {
        "kakao"
    }

    #[tracing::instrument(skip_all, fields(provider = "kakao"))]
    async fn verify_access_token(&self, app: &SocialApp, token: &SecretString) -> Result<ProviderUser, ProviderError> {
        super::token_text(token)?;
        let calls = async {
            tokio::try_join!(
                self.get_json("/v1/user/access_token_info", token),
                self.get_json("/v2/user/me", token)
            )
        };
        let (info, me) = tokio::time::timeout(self.timeout, calls)
            .await
            .map_err(|_| ProviderError::Timeout)??;
        let info: TokenInfo = serde_json::from_value(info)
            .map_err(|_| ProviderError::Unavailable("access_token_info: unexpected body".into()))?;
        // Token substitution (RFC 9700 4.1.1-like): /v2/user/me accepts a token of *any* Kakao
        // app, so the app it was issued to must be one this site trusts.
        if !app.app_ids.iter().any(|id| id == &info.app_id.to_string()) {
            tracing::info!(app_id = info.app_id, "kakao token issued to a foreign app");
            return Err(ProviderError::AppMismatch);
        }
        let mut user = parse_user(me)?;
        user.social_app_id = Some(app.id);
        if user.uid != info.id.to_string() {
            return Err(ProviderError::Unavailable(
                "token info and user info disagree on the id".into(),
            ));
        }
        Ok(user)
    }

    /// `POST /v1/user/unlink` with `KakaoAK <admin key>` (kakao-api.md 6.2); -101 "not linked"
    /// means it is already done.
    #[tracing::instrument(skip_all, fields(provider = "kakao"))]
    /// Only with the app's admin key.
    fn can_unlink(&self, app: &SocialApp) -> bool {
        !app.admin_key.expose_secret().is_empty()
    }

    async fn unlink(&self, app: &SocialApp, uid: &str, _kept: Option<&KeptToken>) -> Result<(), ProviderError> {
        let url = self
            .api_base
            .join("/v1/user/unlink")
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let call = self
            .http
            .post(url)
            .header("Authorization", format!("KakaoAK {}", app.admin_key.expose_secret()))
            .form(&[("target_id_type", "user_id"), ("target_id", uid)])
            .send();
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(map_transport_error)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status.is_server_error() || status.is_redirection() {
            return Err(ProviderError::Unavailable(format!("/v1/user/unlink: HTTP {status}")));
        }
        let body = super::read_body(response).await?;
        match serde_json::from_slice::<KakaoErrorBody>(&body).map(|b| b.code).ok() {
            Some(-101) => Ok(()),
            Some(-401 | -3 | -5) => Err(ProviderError::Misconfigured(format!(
                "unlink refused the admin key ({status})"
            ))),
            code => Err(ProviderError::Unavailable(format!(
                "/v1/user/unlink: HTTP {status}, code {code:?}"
            ))),
        }
    }

    #[tracing::instrument(skip_all, fields(provider = "kakao"))]
    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError> {
        let url = self
            .auth_base
            .join("/oauth/token")
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
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

    /// Kakao puts `email` in the id_token only when it is valid and verified (kakao-api.md 5.3);
    /// the audience is whichever app key the client logged in with (REST, native or JS).
    #[tracing::instrument(skip_all, fields(provider = "kakao"))]
    async fn verify_id_token(
        &self,
        app: &SocialApp,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let mut audiences = vec![app.client_id.clone()];
        audiences.extend(app.client_keys.iter().cloned());
        let issuers = [self.issuer.as_str()];
        let verify = self
            .jwks
            .verify(&self.http, id_token.expose_secret(), &issuers, &audiences, nonce);
        let (sub, claims) = tokio::time::timeout(self.timeout, verify)
            .await
            .map_err(|_| ProviderError::Timeout)??;
        if sub.is_empty() || !sub.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProviderError::InvalidToken);
        }
        let email = claims["email"].as_str().filter(|e| !e.is_empty()).map(str::to_owned);
        let username_hint = claims["nickname"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned));
        Ok(ProviderUser {
            uid: sub,
            email_verified: email.is_some(),
            email,
            username_hint,
            extra_data: claims,
            social_app_id: Some(app.id),
            kept: None,
        })
    }
}

/// Builds the provider user from `/v2/user/me`; every part but `id` may be absent (§1.2, §1.3).
fn parse_user(me: Value) -> Result<ProviderUser, ProviderError> {
    // `id` is an int64 (ids above 2^31 are common); keep it exact as a decimal string.
    let uid = match &me["id"] {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => {
            return Err(ProviderError::Unavailable("/v2/user/me: no integer id".into()));
        }
    };
    let account = &me["kakao_account"];
    let email = account["email"].as_str().filter(|e| !e.is_empty()).map(str::to_owned);
    // is_email_valid=false means the address now belongs to another Kakao account (§9.3).
    let email_verified = email.is_some()
        && account["is_email_verified"] == Value::Bool(true)
        && account["is_email_valid"] == Value::Bool(true);
    let nickname = account["profile"]["nickname"]
        .as_str()
        .or_else(|| me["properties"]["nickname"].as_str());
    let username_hint = nickname
        .map(str::to_owned)
        .or_else(|| email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned));
    Ok(ProviderUser {
        uid,
        email,
        email_verified,
        username_hint,
        extra_data: me,
        social_app_id: None,
        kept: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn id_near_two_to_the_63_stays_exact() {
        let user = parse_user(json!({"id": 9_223_372_036_854_775_807_i64})).unwrap();
        assert_eq!(user.uid, "9223372036854775807");
        assert_eq!(user.email, None);
        assert!(!user.email_verified);
    }

    #[test]
    fn email_is_verified_only_when_valid_and_verified() {
        let user = |valid: bool, verified: bool| {
            parse_user(json!({"id": 1, "kakao_account": {"email": "a@b.c", "is_email_valid": valid, "is_email_verified": verified}}))
                .unwrap()
                .email_verified
        };
        assert!(user(true, true));
        assert!(!user(false, true));
        assert!(!user(true, false));
    }

    #[test]
    fn nickname_falls_back_to_legacy_properties_then_email() {
        let legacy = parse_user(json!({"id": 1, "properties": {"nickname": "김OO"}})).unwrap();
        assert_eq!(legacy.username_hint.as_deref(), Some("김OO"));
        let by_email = parse_user(json!({"id": 1, "kakao_account": {"email": "neo@x.io"}})).unwrap();
        assert_eq!(by_email.username_hint.as_deref(), Some("neo"));
    }

    #[test]
    fn a_body_without_id_is_a_provider_failure() {
        assert!(matches!(
            parse_user(json!({"msg": "?"})),
            Err(ProviderError::Unavailable(_))
        ));
    }
}
