//! The key ring: the key that signs and the keys that verify, loaded from the database once and
//! reloaded when a token names a `kid` we have not seen (another instance rotated).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use entity::signing_key;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

use super::TokenError;
use crate::{
    config::{JwtAlgorithm, JwtSettings},
    store::{self, StoreError, keys::NewSigningKey},
};

/// Unknown-`kid` reloads happen at most this often, so forged kids cannot hammer the database.
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

pub struct KeyRing {
    algorithm: Algorithm,
    db: DatabaseConnection,
    /// Retired keys stay published this long (the longest token lifetime).
    keep_retired: Duration,
    current: RwLock<Arc<Keys>>,
    last_reload: Mutex<Instant>,
}

struct Keys {
    signing: EncodingKey,
    /// The Ed25519 signing key, parsed once: `jsonwebtoken::encode` parses the PKCS#8 document
    /// again on every call, which derives the public key (a scalar multiplication, as costly as
    /// the signature itself). AWS-LC signs in half the time ed25519-dalek takes (16 vs 32 µs
    /// here); Ed25519 is deterministic, so the tokens are byte for byte the same.
    ed25519: Option<Ed25519KeyPair>,
    signing_kid: Option<String>,
    /// HS256: the one shared key under `""`; EdDSA: by kid.
    verifying: HashMap<String, DecodingKey>,
    /// (kid, base64url public key) of every published Ed25519 key.
    public: Vec<(String, String)>,
}

impl KeyRing {
    /// Loads the keys; with EdDSA and no key in the database, generates and stores the first one.
    pub async fn load(db: DatabaseConnection, settings: &JwtSettings) -> Result<Self, TokenError> {
        // Before any token is signed or checked: the first use fixes jsonwebtoken's provider.
        super::crypto::install();
        let algorithm = match settings.algorithm {
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::HS256 => Algorithm::HS256,
        };
        let keys = match (settings.algorithm, &settings.signing_key) {
            (JwtAlgorithm::HS256, Some(secret)) => {
                let secret = secret.expose_secret().as_bytes();
                Keys {
                    signing: EncodingKey::from_secret(secret),
                    ed25519: None,
                    signing_kid: None,
                    verifying: HashMap::from([(String::new(), DecodingKey::from_secret(secret))]),
                    public: Vec::new(),
                }
            }
            (JwtAlgorithm::HS256, None) => {
                return Err(TokenError::Store(StoreError::Corrupt(
                    "HS256 without a signing key".into(),
                )));
            }
            (JwtAlgorithm::EdDSA, _) => {
                let keep = keep_retired(settings);
                match load_ed25519(&db, keep).await? {
                    Some(keys) => keys,
                    None => {
                        store::keys::insert(&db, generate_ed25519()?).await?;
                        load_ed25519(&db, keep)
                            .await?
                            .ok_or(StoreError::NotFound("signing key"))?
                    }
                }
            }
        };
        Ok(Self {
            algorithm,
            db,
            keep_retired: keep_retired(settings),
            current: RwLock::new(Arc::new(keys)),
            // "Long ago", so the first unknown kid may reload at once.
            last_reload: Mutex::new(Instant::now().checked_sub(RELOAD_INTERVAL).unwrap_or_else(Instant::now)),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn keys(&self) -> Arc<Keys> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A compact JWS of `claims`, signed by the current key and naming its `kid`.
    pub fn sign(&self, claims: &impl serde::Serialize) -> Result<String, TokenError> {
        let keys = self.keys();
        let mut header = Header::new(self.algorithm);
        header.kid = keys.signing_kid.clone();
        match &keys.ed25519 {
            Some(key) => sign_ed25519(key, &header, claims),
            None => jsonwebtoken::encode(&header, claims, &keys.signing).map_err(TokenError::Signing),
        }
    }

    /// The key that verifies a token carrying `kid`. EdDSA tokens must name a known kid.
    pub async fn verifier(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        if self.algorithm == Algorithm::HS256 {
            return self.keys().verifying.get("").cloned().ok_or(TokenError::Invalid);
        }
        let kid = kid.ok_or(TokenError::Invalid)?;
        if let Some(key) = self.keys().verifying.get(kid) {
            return Ok(key.clone());
        }
        if !self.may_reload() {
            return Err(TokenError::Invalid);
        }
        self.reload().await?;
        self.keys().verifying.get(kid).cloned().ok_or(TokenError::Invalid)
    }

    /// Every signing key row, retired and revoked ones included (the admin's list).
    pub async fn list_all(&self) -> Result<Vec<entity::signing_key::Model>, TokenError> {
        Ok(crate::store::keys::list_all(&self.db).await?)
    }

    /// Re-reads the key table: picks up a key rotated by the CLI or another instance.
    pub async fn reload(&self) -> Result<(), TokenError> {
        if self.algorithm == Algorithm::HS256 {
            return Ok(());
        }
        if let Some(keys) = load_ed25519(&self.db, self.keep_retired).await? {
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        }
        Ok(())
    }

    fn may_reload(&self) -> bool {
        let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() < RELOAD_INTERVAL {
            return false;
        }
        *last = Instant::now();
        true
    }

    /// Whether tokens naming `kid` still verify: false once the key was revoked (and the ring
    /// reloaded). Checked on every use of a remembered verification.
    pub fn still_verifies(&self, kid: Option<&str>) -> bool {
        self.algorithm == Algorithm::HS256 || kid.is_some_and(|kid| self.keys().verifying.contains_key(kid))
    }

    /// (kid, base64url `x`) of the public Ed25519 keys; empty with HS256, whose shared secret is
    /// never published.
    pub fn public_keys(&self) -> Vec<(String, String)> {
        self.keys().public.clone()
    }
}

/// How long a retired key keeps verifying: the longest token lifetime, so every token it signed
/// expires first.
fn keep_retired(settings: &JwtSettings) -> Duration {
    settings.refresh_token_lifetime.max(settings.access_token_lifetime)
}

/// What a stored key does now, by the rule the key ring loads keys with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens (and verifies).
    Signing,
    /// Retired by a rotation; verifies `until` the tokens it signed have expired.
    Retired { until: DateTime<Utc> },
    /// Retired longer ago than any token lives: no longer loaded.
    Expired,
    /// Revoked: verifies nothing.
    Revoked,
}

impl KeyState {
    pub fn of(key: &signing_key::Model, settings: &JwtSettings, now: DateTime<Utc>) -> Self {
        match (key.revoked_at, key.retired_at) {
            (Some(_), _) => Self::Revoked,
            (None, None) => Self::Signing,
            (None, Some(at)) => match super::jwt_at(at, keep_retired(settings)) {
                until if until > now => Self::Retired { until },
                _ => Self::Expired,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Signing => "signing",
            Self::Retired { .. } => "retired",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// `authbridge keys rotate`: a new Ed25519 key signs from now on; the older ones are retired but
/// stay published (and verify) until the tokens they signed have expired. Returns the new kid.
pub async fn rotate(db: &DatabaseConnection) -> Result<String, TokenError> {
    let new = store::keys::insert(db, generate_ed25519()?).await?;
    store::keys::retire_all_but(db, &new.kid, Utc::now()).await?;
    Ok(new.kid)
}

/// `authbridge keys revoke KID`, for a key that leaked: it stops verifying at once on the
/// instance that revokes it and on every other within the key-reload interval, and every token
/// it signed dies with it. A signing key is replaced by a new one first. Returns the new kid then.
pub async fn revoke(db: &DatabaseConnection, kid: &str) -> Result<Option<String>, TokenError> {
    let key = store::keys::find(db, kid)
        .await?
        .ok_or(StoreError::NotFound("signing key"))?;
    let replacement = match key.retired_at.is_none() && key.revoked_at.is_none() {
        true => Some(rotate(db).await?),
        false => None,
    };
    store::keys::revoke(db, kid, Utc::now()).await?;
    Ok(replacement)
}

fn generate_ed25519() -> Result<NewSigningKey, TokenError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|e| StoreError::Corrupt(format!("cannot encode new key: {e}")))?;
    Ok(NewSigningKey {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        algorithm: "EdDSA".into(),
        private_key: STANDARD.encode(der.as_bytes()),
        public_key: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
    })
}

/// What `jsonwebtoken::encode` makes for EdDSA (base64url JSON header and claims, the
/// signature over both), with a key that is already parsed.
fn sign_ed25519(key: &Ed25519KeyPair, header: &Header, claims: &impl serde::Serialize) -> Result<String, TokenError> {
    let header = serde_json::to_vec(header).map_err(|e| TokenError::Signing(e.into()))?;
    let claims = serde_json::to_vec(claims).map_err(|e| TokenError::Signing(e.into()))?;
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = key.sign(message.as_bytes());
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
}

/// Reads usable Ed25519 keys; the newest active one signs. `None` when there is no active key.
async fn load_ed25519(db: &DatabaseConnection, keep_retired: Duration) -> Result<Option<Keys>, TokenError> {
    let since = Utc::now() - chrono::Duration::from_std(keep_retired).unwrap_or(chrono::Duration::days(1));
    let rows = store::keys::list_usable(db, since).await?;
    let Some(active) = rows.iter().rev().find(|r| r.retired_at.is_none()) else {
        return Ok(None);
    };
    let private = STANDARD
        .decode(&active.private_key)
        .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", active.kid)))?;
    let mut verifying = HashMap::new();
    let mut published = Vec::new();
    for row in &rows {
        let public = URL_SAFE_NO_PAD
            .decode(&row.public_key)
            .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", row.kid)))?;
        verifying.insert(row.kid.clone(), DecodingKey::from_ed_der(&public));
        published.push((row.kid.clone(), row.public_key.clone()));
    }
    let ed25519 = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&private)
        .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", active.kid)))?;
    Ok(Some(Keys {
        signing: EncodingKey::from_ed_der(&private),
        ed25519: Some(ed25519),
        signing_kid: Some(active.kid.clone()),
        verifying,
        public: published,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parsed_key_signs_exactly_what_jsonwebtoken_signs() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let der = key.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("kid-1".into());
        let claims = serde_json::json!({"token_type": "access", "exp": 2_000_000_000, "user_id": 7, "jti": "j"});

        let parsed = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der.as_bytes()).unwrap();
        let ours = sign_ed25519(&parsed, &header, &claims).unwrap();
        let theirs = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();

        assert_eq!(ours, theirs);
    }
}
