//! Issue and verify JWTs with simplejwt's claims (`token_type`, `exp`, `iat`, `jti`, `user_id`),
//! checked as RFC 8725 asks: one algorithm, a known key, exp, and the token type.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::{KeyRing, TokenError};
use crate::config::Settings;

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
    pub user_id: i32,
    /// simplejwt does not send `sub`; ours always do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// A freshly issued access + refresh pair.
pub struct IssuedPair {
    pub access: String,
    pub refresh: String,
    pub access_expiration: DateTime<Utc>,
    pub refresh_expiration: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Tokens {
    keys: Arc<KeyRing>,
    access_lifetime: Duration,
    refresh_lifetime: Duration,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Tokens {
    pub fn new(keys: Arc<KeyRing>, settings: &Settings) -> Self {
        Self {
            keys,
            access_lifetime: settings.access_token_lifetime,
            refresh_lifetime: settings.refresh_token_lifetime,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
        }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn issue_pair(&self, user_id: i32) -> Result<IssuedPair, TokenError> {
        let now = Utc::now();
        let (access, access_expiration) = self.issue(user_id, TokenType::Access, now)?;
        let (refresh, refresh_expiration) = self.issue(user_id, TokenType::Refresh, now)?;
        Ok(IssuedPair {
            access,
            refresh,
            access_expiration,
            refresh_expiration,
        })
    }

    fn issue(
        &self,
        user_id: i32,
        token_type: TokenType,
        now: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), TokenError> {
        let lifetime = match token_type {
            TokenType::Access => self.access_lifetime,
            TokenType::Refresh => self.refresh_lifetime,
        };
        let exp = now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        let claims = Claims {
            token_type,
            exp: exp.timestamp(),
            iat: now.timestamp(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            user_id,
            sub: Some(user_id.to_string()),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let (key, kid) = self.keys.signer();
        let mut header = Header::new(self.keys.algorithm());
        header.kid = kid;
        let token = jsonwebtoken::encode(&header, &claims, &key).map_err(TokenError::Signing)?;
        Ok((token, exp))
    }

    /// Verifies signature, algorithm, key, `exp`, `iss`/`aud` when configured, and the type.
    pub async fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        // The algorithm is ours to choose, never the token's (RFC 8725 3.1).
        if header.alg != self.keys.algorithm() {
            return Err(TokenError::Invalid);
        }
        let key = self.keys.verifier(header.kid.as_deref()).await?;
        let mut validation = Validation::new(self.keys.algorithm());
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
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
        if data.claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        Ok(data.claims)
    }
}
