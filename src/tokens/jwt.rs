//! Issue and verify JWTs with simplejwt's claims (`token_type`, `exp`, `iat`, `jti`, `user_id`),
//! checked as RFC 8725 asks: one algorithm, a known key, exp, and the token type.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Validation, errors::ErrorKind};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use super::{KeyRing, TokenError};
use crate::{config::JwtSettings, metrics::Metrics, store::cache::Cached, write_queue::WriteQueue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// simplejwt ≥ 5.5 writes the pk as a string (`"42"`), older versions as a number.
    #[serde(deserialize_with = "user_id::deserialize")]
    pub user_id: i32,
    /// simplejwt does not send `sub`; ours always do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The session: the refresh family every token of one sign-in shares. Absent on tokens
    /// made by simplejwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user actually authenticated (OIDC `auth_time`), carried unchanged through
    /// refreshes: what "recently signed in" is read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// djangorestframework-jwt's refresh window start, on tokens from `/api-jwt-auth/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_iat: Option<i64>,
}

/// A token whose signature checked out: its claims and the key that signed it, so that a key
/// revoked since stops the remembered verification too.
struct Verified {
    kid: Option<String>,
    claims: Claims,
}

/// How many verified tokens are remembered.
const VERIFIED_CACHE_SIZE: usize = 50_000;

#[derive(Clone)]
pub struct Tokens {
    pub(super) keys: Arc<KeyRing>,
    pub(super) db: DatabaseConnection,
    pub(super) cached: Cached,
    /// New refresh-token rows and rotations go through the group-committing write queue.
    pub(super) queue: WriteQueue,
    pub(super) access_lifetime: Duration,
    pub(super) refresh_lifetime: Duration,
    pub(super) rotate_refresh: bool,
    pub(super) reuse_grace: Duration,
    /// Tokens whose signature already checked out, with their claims: an Ed25519 verification
    /// costs ~50 µs, a lookup well under 1 µs. Expiry and type are still checked on every use.
    verified: Arc<quick_cache::sync::Cache<String, Arc<Verified>>>,
    issuer: Option<String>,
    audience: Option<String>,
    pub(super) metrics: Metrics,
}

/// `t + plus`, saturating.
pub fn at(t: DateTime<Utc>, plus: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(plus).unwrap_or(chrono::Duration::MAX)
}

impl Tokens {
    pub fn new(
        keys: Arc<KeyRing>,
        db: DatabaseConnection,
        queue: WriteQueue,
        cached: Cached,
        settings: &JwtSettings,
        metrics: &Metrics,
    ) -> Self {
        Self {
            keys,
            queue,
            db,
            cached,
            access_lifetime: settings.access_token_lifetime,
            refresh_lifetime: settings.refresh_token_lifetime,
            rotate_refresh: settings.rotate_refresh_tokens,
            reuse_grace: settings.refresh_reuse_grace,
            verified: Arc::new(quick_cache::sync::Cache::new(VERIFIED_CACHE_SIZE)),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            metrics: metrics.clone(),
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Fresh claims of `token_type` for `user_id`, valid from `now` for the type's lifetime.
    pub(super) fn claims(&self, user_id: i32, token_type: TokenType, now: DateTime<Utc>) -> Claims {
        let lifetime = match token_type {
            TokenType::Access => self.access_lifetime,
            TokenType::Refresh => self.refresh_lifetime,
        };
        Claims {
            token_type,
            exp: at(now, lifetime).timestamp(),
            iat: now.timestamp(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
            sub: Some(user_id.to_string()),
            sid: None,
            auth_time: None,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            orig_iat: None,
        }
    }

    pub(super) fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        self.keys.sign(claims)
    }

    pub fn refresh_lifetime_secs(&self) -> i64 {
        i64::try_from(self.refresh_lifetime.as_secs()).unwrap_or(i64::MAX)
    }

    /// Signs access claims; returns the token and its expiry.
    pub fn issue_access_with(&self, claims: Claims) -> Result<(String, DateTime<Utc>), TokenError> {
        let exp = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
        Ok((self.sign(&claims)?, exp))
    }

    /// Verifies signature, algorithm, key, `exp`, `iss`/`aud` when configured, and the type.
    pub async fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let verified = match self.verified.get(token) {
            Some(verified) if self.keys.still_verifies(verified.kid.as_deref()) => verified,
            Some(_) => {
                self.verified.remove(token);
                return Err(TokenError::Invalid);
            }
            None => {
                let verified = Arc::new(self.verify_signature(token).await?);
                // Access tokens come back on every request; a refresh token is spent once
                // (rotation) and would only crowd them out.
                if verified.claims.token_type == TokenType::Access {
                    self.verified.insert(token.to_owned(), verified.clone());
                }
                verified
            }
        };
        let claims = &verified.claims;
        // simplejwt's leeway is 0: expired the second `exp` passes.
        if claims.exp <= Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        Ok(claims.clone())
    }

    async fn verify_signature(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        // The algorithm is ours to choose, never the token's (RFC 8725 3.1).
        if header.alg != self.keys.algorithm() {
            return Err(TokenError::Invalid);
        }
        let key = self.keys.verifier(header.kid.as_deref()).await?;
        let mut validation = Validation::new(self.keys.algorithm());
        validation.leeway = 0;
        let mut required = vec!["exp"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        Ok(Verified {
            kid: header.kid,
            claims: data.claims,
        })
    }
}

/// `user_id` as simplejwt writes it: a number, or (≥ 5.5) a decimal string. The string must be
/// canonical (digits only, no sign, no leading zero) and fit the pk type, so one user has exactly
/// one spelling.
mod user_id {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw<'a> {
        Number(i64),
        #[serde(borrow)]
        Text(std::borrow::Cow<'a, str>),
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
        let number = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n,
            Raw::Text(text) => parse(&text).ok_or_else(|| D::Error::custom("user_id is not a canonical decimal"))?,
        };
        i32::try_from(number).map_err(|_| D::Error::custom("user_id out of range"))
    }

    fn parse(text: &str) -> Option<i64> {
        let canonical =
            text == "0" || (!text.is_empty() && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit()));
        canonical.then(|| text.parse().ok()).flatten()
    }

    #[cfg(test)]
    mod tests {
        use super::super::Claims;

        fn user_id(value: &str) -> Option<i32> {
            let json = format!(r#"{{"token_type":"access","exp":1,"iat":0,"jti":"j","user_id":{value}}}"#);
            serde_json::from_str::<Claims>(&json).ok().map(|c| c.user_id)
        }

        #[test]
        fn user_id_is_a_number_or_a_canonical_decimal_string() {
            assert_eq!(user_id("42"), Some(42));
            assert_eq!(user_id(r#""42""#), Some(42));
            assert_eq!(user_id(r#""0""#), Some(0));
            for bad in [
                r#""042""#,
                r#""+42""#,
                r#""-1""#,
                r#""""#,
                r#"" 42""#,
                r#""4e1""#,
                r#""2147483648""#,
                "2147483648",
                "-1.5",
                "null",
            ] {
                assert_eq!(user_id(bad), None, "{bad}");
            }
        }
    }
}
