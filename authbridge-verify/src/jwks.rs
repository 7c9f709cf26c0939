//! The key cache: authbridge's published Ed25519 keys by `kid`, fetched on first use, refetched
//! when a token names an unknown `kid` (at most every `refetch_interval`) or when older than
//! `max_age`. A failed fetch keeps the keys already known, so an outage with a warm cache
//! does not stop verification.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use crate::{VerifierConfig, VerifyError};

/// With no key at all, a failed fetch is retried this soon (not a whole `refetch_interval`).
const EMPTY_RETRY: Duration = Duration::from_secs(5);

pub(crate) struct KeyCache {
    http: reqwest::Client,
    url: String,
    refetch_interval: Duration,
    max_age: Duration,
    snapshot: RwLock<Snapshot>,
    /// One fetch at a time; requests that need it wait for it instead of starting their own.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Snapshot {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
}

impl KeyCache {
    pub(crate) fn new(config: &VerifierConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(config.http_timeout)
            .timeout(config.http_timeout)
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: config.jwks_url.clone(),
            refetch_interval: config.refetch_interval,
            max_age: config.max_age,
            snapshot: RwLock::new(Snapshot::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The key named `kid`, fetching the key set when it is due.
    pub(crate) async fn get(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        if let (Some(key), false) = self.lookup(kid) {
            return Ok(key);
        }
        self.refresh_if_due().await;
        match self.lookup(kid) {
            (Some(key), _) => Ok(key),
            (None, _) if self.is_empty() => Err(VerifyError::KeysUnavailable),
            (None, _) => Err(VerifyError::Invalid),
        }
    }

    /// The key, and whether the set it came from is older than `max_age`.
    fn lookup(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
        let stale = snapshot.fetched_at.is_none_or(|at| at.elapsed() >= self.max_age);
        (snapshot.keys.get(kid).cloned(), stale)
    }

    fn is_empty(&self) -> bool {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).keys.is_empty()
    }

    async fn refresh_if_due(&self) {
        let asked = Instant::now();
        let _turn = self.fetching.lock().await;
        {
            let snapshot = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = snapshot.last_attempt {
                let wait = if snapshot.keys.is_empty() {
                    EMPTY_RETRY
                } else {
                    self.refetch_interval
                };
                // Fetched while we waited for the turn, or too recently: a forged `kid` must
                // not make us hammer authbridge.
                if at >= asked || at.elapsed() < wait {
                    return;
                }
            }
        }
        let fetched = self.fetch().await;
        let mut snapshot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        snapshot.last_attempt = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                snapshot.keys = keys;
                snapshot.fetched_at = Some(Instant::now());
            }
            Err(e) => tracing::warn!(
                error = %e,
                known_keys = snapshot.keys.len(),
                "fetching authbridge's key set failed; keeping the keys already known"
            ),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, reqwest::Error> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(parse(set))
    }
}

/// The Ed25519 signing keys of a key set, by `kid`; anything else is skipped.
fn parse(set: JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .into_iter()
        .filter(|k| k.kty == "OKP" && k.crv.as_deref() == Some("Ed25519"))
        .filter(|k| k.alg.as_deref().is_none_or(|alg| alg == "EdDSA"))
        .filter_map(|k| {
            let key = DecodingKey::from_ed_components(k.x.as_deref()?).ok()?;
            Some((k.kid?, key))
        })
        .collect()
}
