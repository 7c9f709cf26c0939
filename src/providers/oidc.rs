//! OIDC id_token verification against a provider's JWKS (kakao-api.md 5): RS256 only, `iss`,
//! `aud` ∈ the app's client keys, `exp`/`iat` with a small leeway, `nonce` when the client sent
//! one. The key set is cached: an unknown `kid` refetches it at most once a minute (the fetched set
//! replaces the cached one), and an outage of the JWKS endpoint does not stop logins while the
//! cache holds the key.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

use super::ProviderError;

/// Unknown-kid refetches of a warm cache, at most this often (forged kids cannot make us hammer
/// the provider).
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Fetches of an empty cache (start-up, or the provider down so far), at most this often.
const COLD_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Clock skew tolerated on `exp`/`iat`.
const LEEWAY_SECS: u64 = 30;

pub struct JwksCache {
    url: String,
    /// `None` until a key set was fetched once; an empty set fetched is a warm (if useless) cache.
    keys: RwLock<Option<HashMap<String, DecodingKey>>>,
    /// When the last fetch of a cold cache, and the last refetch of a warm one, started.
    last_fetch: Mutex<(Option<Instant>, Option<Instant>)>,
    /// One fetch at a time: a request that misses while a fetch is in flight waits for it and
    /// looks again, instead of being told the keys are not there yet (a 502 with Kakao up).
    fetching: tokio::sync::Mutex<()>,
}

/// The claims we read; the whole payload is kept as `extra_data`.
#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    nonce: Option<String>,
}

impl JwksCache {
    pub fn new(url: String) -> Self {
        Self {
            url,
            keys: RwLock::new(None),
            last_fetch: Mutex::new((None, None)),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    async fn key(&self, http: &reqwest::Client, kid: &str) -> Result<DecodingKey, ProviderError> {
        if let Some(key) = self.keys.read().await.as_ref().and_then(|k| k.get(kid)) {
            return Ok(key.clone());
        }
        let _one_fetch = self.fetching.lock().await;
        // A fetch that ended while we waited may have brought the key.
        let cold = {
            let keys = self.keys.read().await;
            if let Some(key) = keys.as_ref().and_then(|k| k.get(kid)) {
                return Ok(key.clone());
            }
            keys.is_none()
        };
        let may_fetch = {
            let mut last = self.last_fetch.lock().unwrap_or_else(|e| e.into_inner());
            let (slot, interval) = if cold {
                (&mut last.0, COLD_RETRY_INTERVAL)
            } else {
                (&mut last.1, REFETCH_INTERVAL)
            };
            let due = slot.is_none_or(|t| t.elapsed() >= interval);
            if due {
                *slot = Some(Instant::now());
            }
            due
        };
        if !may_fetch {
            return Err(if cold {
                ProviderError::Unavailable("JWKS not fetched yet".into())
            } else {
                ProviderError::InvalidToken
            });
        }
        let fetched = self.fetch(http).await?;
        let key = fetched.get(kid).cloned();
        // Replaced, not extended: a key the provider withdrew (rotated out, leaked) stops verifying.
        *self.keys.write().await = Some(fetched);
        key.ok_or(ProviderError::InvalidToken)
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<HashMap<String, DecodingKey>, ProviderError> {
        let response = http.get(&self.url).send().await.map_err(|e| {
            if e.is_timeout() {
                ProviderError::Timeout
            } else {
                ProviderError::Unavailable(e.without_url().to_string())
            }
        })?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!("JWKS: HTTP {}", response.status())));
        }
        let body = super::read_body(response).await?;
        let set: JwkSet =
            serde_json::from_slice(&body).map_err(|_| ProviderError::Unavailable("JWKS: unreadable key set".into()))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
            .collect())
    }

    /// Verifies `token` and returns its payload: `iss` one of `issuers`, `aud` one of
    /// `audiences`. `nonce`, when given, must equal the claim.
    pub async fn verify(
        &self,
        http: &reqwest::Client,
        token: &str,
        issuers: &[&str],
        audiences: &[String],
        nonce: Option<&str>,
    ) -> Result<(String, Value), ProviderError> {
        let payload = self
            .verify_claims(http, token, issuers, audiences, &["exp", "iat", "iss", "aud", "sub"])
            .await?;
        let claims: IdClaims = serde_json::from_value(payload.clone()).map_err(|_| ProviderError::InvalidToken)?;
        if let Some(sent) = nonce {
            let echoed = claims.nonce.as_deref().unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(echoed.as_bytes())) {
                return Err(ProviderError::InvalidToken);
            }
        }
        Ok((claims.sub, payload))
    }

    /// The RS256 signature with a published key, `iss`, `aud`, `exp` when present (required when
    /// named in `required`), and `iat` not in the future; the payload as it is.
    pub async fn verify_claims(
        &self,
        http: &reqwest::Client,
        token: &str,
        issuers: &[&str],
        audiences: &[String],
        required: &[&str],
    ) -> Result<Value, ProviderError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| ProviderError::InvalidToken)?;
        if header.alg != Algorithm::RS256 {
            return Err(ProviderError::InvalidToken);
        }
        let kid = header.kid.ok_or(ProviderError::InvalidToken)?;
        let key = self.key(http, &kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(issuers);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(required);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|_| ProviderError::InvalidToken)?;
        let iat = data.claims["iat"].as_i64().ok_or(ProviderError::InvalidToken)?;
        if iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64 {
            return Err(ProviderError::InvalidToken);
        }
        Ok(data.claims)
    }
}
