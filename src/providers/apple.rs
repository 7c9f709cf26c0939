//! Sign in with Apple: an id_token verified against Apple's keys, or a code exchanged with a
//! client secret we sign (ES256, the team's `.p8` key); the refresh token of the exchange is
//! kept and revoked at `/auth/revoke` when the user deletes the account. Also verifies Apple's
//! server-to-server notifications. Facts: docs/providers.md section 3.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::{
    CodeGrant, KeptToken, Provider, ProviderError, ProviderTokens, ProviderUser, SocialApp, oauth, oidc::JwksCache,
};
use crate::config::{AppleSettings, ProviderSettings};

/// How long a client secret we sign is valid (Apple allows up to 6 months; docs/providers.md 3.4).
const SECRET_LIFETIME: Duration = Duration::from_secs(3600);
/// A cached client secret is replaced this long before it expires.
const SECRET_MARGIN: Duration = Duration::from_secs(300);

pub struct Apple {
    http: reqwest::Client,
    base: Url,
    issuer: String,
    timeout: Duration,
    jwks: JwksCache,
    /// Client secrets by (client id, team, key id, key) digest, with when they stop being used.
    secrets: Mutex<HashMap<[u8; 32], (SecretString, Instant)>>,
}

#[derive(Serialize)]
struct ClientSecretClaims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'a str,
    sub: &'a str,
}

/// One server-to-server notification, verified (docs/providers.md 3.8).
#[derive(Debug, Clone)]
pub struct AppleNotification {
    /// Our social app its `aud` names.
    pub app_id: i32,
    /// The Apple user (`sub`).
    pub sub: String,
    pub event: AppleEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppleEvent {
    /// The user stopped using Sign in with Apple with the app.
    ConsentRevoked,
    /// The user deleted the Apple Account.
    AccountDelete,
    /// Relay forwarding to the private address stopped (`true`) or resumed (`false`).
    EmailForwarding { disabled: bool, email: Option<String> },
    /// A type this server does not act on.
    Other(String),
}

/// `true` or `"true"` (Apple sends either for `email_verified`, `is_private_email`,
/// `nonce_supported`; docs/providers.md 3.2).
fn is_true(v: &Value) -> bool {
    v.as_bool()
        .unwrap_or_else(|| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true")))
}

/// The name in Apple's `user` JSON (`{"name": {"firstName", "lastName"}}`), an object or a JSON
/// string as Apple posts it; each part at most Django's 150 characters.
pub fn names_of_user_field(user: &Value) -> Option<(String, String)> {
    let parsed;
    let user = match user {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).ok()?;
            &parsed
        }
        other => other,
    };
    let part = |key: &str| -> String {
        user["name"][key]
            .as_str()
            .unwrap_or_default()
            .trim()
            .chars()
            .take(150)
            .collect()
    };
    let (first, last) = (part("firstName"), part("lastName"));
    (!first.is_empty() || !last.is_empty()).then_some((first, last))
}

impl Apple {
    pub fn new(settings: &AppleSettings, providers: &ProviderSettings, http: reqwest::Client) -> Self {
        let jwks_url = settings.base.join("/auth/keys").map(String::from).unwrap_or_default();
        Self {
            http,
            base: settings.base.clone(),
            issuer: settings.issuer.clone(),
            timeout: providers.timeout,
            jwks: JwksCache::new(jwks_url),
            secrets: Mutex::new(HashMap::new()),
        }
    }

    /// The client secret for `app`: an ES256 JWT signed with the `.p8` key kept as the app's
    /// secret, `kid` = the key id, `iss` = the team id (both app settings), `sub` = the client id;
    /// reused until shortly before it expires.
    fn client_secret(&self, app: &SocialApp) -> Result<SecretString, ProviderError> {
        let (Some(team_id), Some(key_id)) = (&app.settings.team_id, &app.settings.key_id) else {
            return Err(ProviderError::Misconfigured(format!(
                "Apple app {} lacks team_id or key_id in its settings",
                app.id
            )));
        };
        let mut digest = Sha256::new();
        for part in [app.client_id.as_str(), team_id, key_id, app.secret.expose_secret()] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        let cache_key: [u8; 32] = digest.finalize().into();
        let mut cache = self.secrets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((secret, until)) = cache.get(&cache_key)
            && Instant::now() < *until
        {
            return Ok(secret.clone());
        }
        let key = EncodingKey::from_ec_pem(app.secret.expose_secret().as_bytes()).map_err(|_| {
            ProviderError::Misconfigured(format!(
                "Apple app {}: the secret is not a .p8 (PKCS#8 P-256) key",
                app.id
            ))
        })?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key_id.clone());
        let now = chrono::Utc::now().timestamp();
        let claims = ClientSecretClaims {
            iss: team_id,
            iat: now,
            exp: now + SECRET_LIFETIME.as_secs() as i64,
            aud: &self.issuer,
            sub: &app.client_id,
        };
        let secret = SecretString::from(
            jsonwebtoken::encode(&header, &claims, &key)
                .map_err(|e| ProviderError::Misconfigured(format!("signing the Apple client secret: {e}")))?,
        );
        cache.insert(
            cache_key,
            (secret.clone(), Instant::now() + SECRET_LIFETIME - SECRET_MARGIN),
        );
        Ok(secret)
    }

    fn url(&self, path: &str) -> Result<Url, ProviderError> {
        self.base
            .join(path)
            .map_err(|e| ProviderError::Unavailable(e.to_string()))
    }

    /// Verifies a notification's JWS (`{"payload": …}`) with Apple's keys: `iss`, `aud` one of
    /// `apps`' client ids, `iat`; `events` is a JSON string holding one event (docs/providers.md
    /// 3.8).
    #[tracing::instrument(skip_all, fields(provider = "apple"))]
    pub async fn verify_notification(
        &self,
        apps: &[SocialApp],
        payload: &str,
    ) -> Result<AppleNotification, ProviderError> {
        let audiences: Vec<String> = apps.iter().flat_map(SocialApp::audiences).collect();
        if audiences.is_empty() {
            return Err(ProviderError::AppMismatch);
        }
        let issuers = [self.issuer.as_str()];
        let verify = self
            .jwks
            .verify_claims(&self.http, payload, &issuers, &audiences, &["iss", "aud"]);
        let claims = tokio::time::timeout(self.timeout, verify)
            .await
            .map_err(|_| ProviderError::Timeout)??;
        let aud = claims["aud"].as_str().unwrap_or_default();
        let app_id = apps
            .iter()
            .find(|app| app.audiences().iter().any(|a| a == aud))
            .map(|app| app.id)
            .ok_or(ProviderError::AppMismatch)?;
        let event: Value = match &claims["events"] {
            Value::String(text) => serde_json::from_str(text).map_err(|_| ProviderError::InvalidToken)?,
            other => other.clone(),
        };
        let sub = event["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or(ProviderError::InvalidToken)?
            .to_owned();
        let email = event["email"].as_str().map(str::to_owned);
        let event = match event["type"].as_str().unwrap_or_default() {
            "consent-revoked" => AppleEvent::ConsentRevoked,
            "account-delete" => AppleEvent::AccountDelete,
            "email-disabled" => AppleEvent::EmailForwarding { disabled: true, email },
            "email-enabled" => AppleEvent::EmailForwarding { disabled: false, email },
            other => AppleEvent::Other(other.to_owned()),
        };
        Ok(AppleNotification { app_id, sub, event })
    }
}

/// The nonce the client sent against the token's: Apple echoes whatever the app gave it, and
/// apps following the Firebase/Supabase convention give it the SHA-256 hex of the raw nonce they
/// send us (docs/providers.md 3.3): either form matches. A token without a nonce passes only
/// when Apple says nonces are not supported for it (`nonce_supported` false).
fn nonce_matches(sent: &str, claims: &Value) -> bool {
    match claims["nonce"].as_str() {
        Some(echoed) => {
            let hashed = hex::encode(Sha256::digest(sent.as_bytes()));
            bool::from(echoed.as_bytes().ct_eq(sent.as_bytes()))
                | bool::from(echoed.as_bytes().ct_eq(hashed.as_bytes()))
        }
        None => !claims.get("nonce_supported").is_none_or(is_true) && claims.get("nonce_supported").is_some(),
    }
}

#[async_trait::async_trait]
impl Provider for Apple {
    fn id(&self) -> &'static str {
        "apple"
    }

    /// Apple's access token has no use ("reserved for future use"): alone it proves nothing.
    async fn verify_access_token(
        &self,
        _app: &SocialApp,
        _token: &SecretString,
    ) -> Result<ProviderUser, ProviderError> {
        Err(ProviderError::InvalidToken)
    }

    /// dj-rest-auth's Apple login posts `access_token` + `id_token`: the id_token decides.
    async fn login_with_access_token(
        &self,
        app: &SocialApp,
        _token: &SecretString,
        id_token: Option<&SecretString>,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let id_token = id_token.ok_or(ProviderError::InvalidToken)?;
        self.verify_id_token(app, id_token, nonce).await
    }

    /// `POST /auth/token` with our signed client secret; the client id is the app's (the bundle
    /// id for codes from the iOS SDK, docs/providers.md 3.4).
    #[tracing::instrument(skip_all, fields(provider = "apple"))]
    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError> {
        let secret = self.client_secret(app)?;
        let url = self.url("/auth/token")?;
        oauth::exchange_code(&self.http, url.as_str(), &app.client_id, &secret, grant, self.timeout).await
    }

    /// The code's id_token names the user; its refresh token is kept, to revoke on deletion.
    #[tracing::instrument(skip_all, fields(provider = "apple"))]
    async fn login_with_code(
        &self,
        app: &SocialApp,
        grant: &CodeGrant,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let tokens = self.exchange_code(app, grant).await?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| ProviderError::Unavailable("/auth/token: no id_token".into()))?;
        let mut user = self.verify_id_token(app, &id_token, nonce).await?;
        user.kept = tokens.refresh_token.map(KeptToken::refresh);
        Ok(user)
    }

    /// RS256 with Apple's keys, `iss`, `aud` = one of the app's client ids (bundle id, Services
    /// id), `exp`, and the nonce (raw or SHA-256 hex) when the client sent one.
    #[tracing::instrument(skip_all, fields(provider = "apple"))]
    async fn verify_id_token(
        &self,
        app: &SocialApp,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let audiences = app.audiences();
        let issuers = [self.issuer.as_str()];
        let verify = self
            .jwks
            .verify(&self.http, id_token.expose_secret(), &issuers, &audiences, None);
        let (sub, claims) = tokio::time::timeout(self.timeout, verify)
            .await
            .map_err(|_| ProviderError::Timeout)??;
        if let Some(sent) = nonce
            && !nonce_matches(sent, &claims)
        {
            return Err(ProviderError::InvalidToken);
        }
        let email = claims["email"].as_str().filter(|e| !e.is_empty()).map(str::to_owned);
        // A relay address's local part is random: no use as a username.
        let username_hint = email
            .as_deref()
            .filter(|_| !is_true(&claims["is_private_email"]))
            .and_then(|e| e.split('@').next())
            .map(str::to_owned);
        Ok(ProviderUser {
            uid: sub,
            // Apple returns only verified addresses; private relay ones are real and verified.
            email_verified: email.is_some() && is_true(&claims["email_verified"]),
            email,
            username_hint,
            extra_data: claims,
            social_app_id: Some(app.id),
            kept: None,
        })
    }

    fn can_unlink(&self, _app: &SocialApp) -> bool {
        true
    }

    async fn unlink(&self, app: &SocialApp, uid: &str, kept: Option<&KeptToken>) -> Result<(), ProviderError> {
        match kept {
            Some(kept) => self.revoke(app, kept).await,
            None => {
                // An id_token-only login leaves no token to revoke (docs/providers.md 4, item 12).
                tracing::warn!(
                    uid_len = uid.len(),
                    "no Apple token kept for this account; nothing revoked"
                );
                Ok(())
            }
        }
    }

    /// `POST /auth/revoke` (docs/providers.md 3.7): 200 on success (also for a dead token).
    #[tracing::instrument(skip_all, fields(provider = "apple"))]
    async fn revoke(&self, app: &SocialApp, kept: &KeptToken) -> Result<(), ProviderError> {
        let secret = self.client_secret(app)?;
        let form = [
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret.expose_secret()),
            ("token", kept.token.expose_secret()),
            ("token_type_hint", kept.hint),
        ];
        let call = self.http.post(self.url("/auth/revoke")?).form(&form).send();
        let response = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ProviderError::Timeout)?
            .map_err(super::transport_error)?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => Ok(()),
            400..=499 => Err(ProviderError::Misconfigured(format!(
                "Apple refused the revocation ({status})"
            ))),
            _ => Err(ProviderError::Unavailable(format!("/auth/revoke: HTTP {status}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_nonce_matches_raw_or_as_its_sha256_hex() {
        let hashed = hex::encode(Sha256::digest(b"raw-nonce"));
        assert!(nonce_matches("raw-nonce", &json!({"nonce": hashed})));
        assert!(nonce_matches("raw-nonce", &json!({"nonce": "raw-nonce"})));
        assert!(!nonce_matches("raw-nonce", &json!({"nonce": "other"})));
    }

    #[test]
    fn a_missing_nonce_passes_only_when_apple_says_it_is_not_supported() {
        assert!(!nonce_matches("n", &json!({})));
        assert!(!nonce_matches("n", &json!({"nonce_supported": true})));
        assert!(!nonce_matches("n", &json!({"nonce_supported": "true"})));
        assert!(nonce_matches("n", &json!({"nonce_supported": false})));
    }

    #[test]
    fn the_user_field_gives_the_name_as_object_or_string() {
        let object = json!({"name": {"firstName": "John", "lastName": "Appleseed"}, "email": "x@y.z"});
        assert_eq!(names_of_user_field(&object), Some(("John".into(), "Appleseed".into())));
        let text = Value::String(object.to_string());
        assert_eq!(names_of_user_field(&text), Some(("John".into(), "Appleseed".into())));
        assert_eq!(names_of_user_field(&json!({"email": "x@y.z"})), None);
    }
}
