//! Verifies authbridge's access JWTs in another service: signature against the keys published at
//! `/.well-known/jwks.json` (cached), algorithm, `exp`, `token_type`, and `iss`/`aud` when set.
//! No call to authbridge per request and no shared secret. `extract` holds the poem request extractor.

pub mod extract;
mod jwks;

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::{Deserialize, Deserializer, de};

pub use crate::extract::{Authenticated, Rejection};

/// What a `Verifier` checks and where it finds the keys.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// authbridge's key set, e.g. `https://auth.example.com/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Required `iss`, when authbridge sets `jwt_issuer`.
    pub issuer: Option<String>,
    /// Required `aud`, when authbridge sets `jwt_audience`.
    pub audience: Option<String>,
    /// A token naming a `kid` we do not know refetches the key set at most this often.
    pub refetch_interval: Duration,
    /// The key set is fetched again (on the next token) when this old, so a key authbridge
    /// stopped publishing stops verifying here; a failed fetch keeps the keys we have.
    pub max_age: Duration,
    /// Connect + read time of one key-set fetch.
    pub http_timeout: Duration,
}

impl VerifierConfig {
    /// Defaults for an authbridge at `base_url` (`https://auth.example.com`).
    pub fn new(base_url: &str) -> Self {
        Self {
            jwks_url: format!("{}/.well-known/jwks.json", base_url.trim_end_matches('/')),
            issuer: None,
            audience: None,
            refetch_interval: Duration::from_secs(60),
            max_age: Duration::from_secs(300),
            http_timeout: Duration::from_secs(5),
        }
    }
}

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user's primary key on authbridge; an integer or a decimal string on the wire
    /// (djangorestframework-simplejwt ≥ 5.5 writes a string).
    #[serde(deserialize_with = "int_or_string")]
    pub user_id: i64,
    /// Always `access` once verified.
    pub token_type: String,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub jti: Option<String>,
    /// The user's pk as a string.
    #[serde(default)]
    pub sub: Option<String>,
    /// The session (refresh family) the token belongs to.
    #[serde(default)]
    pub sid: Option<String>,
    /// When the user actually signed in (NumericDate); refreshes keep it.
    #[serde(default)]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub aud: Option<String>,
}

fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(i64),
        Str(String),
    }
    match IntOrString::deserialize(d)? {
        IntOrString::Int(n) => Ok(n),
        IntOrString::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(de::Error::custom)
        }
        IntOrString::Str(_) => Err(de::Error::custom("user_id is not a decimal integer")),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Malformed, another algorithm, unknown `kid`, bad signature, wrong `iss`/`aud`.
    #[error("token is invalid")]
    Invalid,
    #[error("token has expired")]
    Expired,
    /// A refresh token presented as an access token.
    #[error("not an access token")]
    WrongType,
    /// No key is known yet and the key set cannot be fetched.
    #[error("authbridge's key set is unavailable")]
    KeysUnavailable,
}

/// Cheap to clone; share one per process (its key cache is inside).
#[derive(Clone)]
pub struct Verifier {
    config: Arc<VerifierConfig>,
    keys: Arc<jwks::KeyCache>,
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Self {
        let keys = Arc::new(jwks::KeyCache::new(&config));
        Self {
            config: Arc::new(config),
            keys,
        }
    }

    /// Verifies an access JWT and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        // The algorithm is ours to choose, never the token's (RFC 8725 3.1).
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Invalid);
        }
        let kid = header.kid.ok_or(VerifyError::Invalid)?;
        let key = self.keys.get(&kid).await?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &self.validation())
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                _ => VerifyError::Invalid,
            })?
            .claims;
        if claims.token_type != "access" {
            return Err(VerifyError::WrongType);
        }
        Ok(claims)
    }

    fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::EdDSA);
        // authbridge (as simplejwt) has no leeway: expired the second `exp` passes.
        validation.leeway = 0;
        let mut required = vec!["exp"];
        required.extend(self.config.issuer.as_ref().map(|_| "iss"));
        required.extend(self.config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        validation
    }
}

#[cfg(test)]
mod tests;
