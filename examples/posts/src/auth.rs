//! `Caller`: who sent the request. `Bearer`/`JWT` access tokens are verified here, from
//! authbridge's published keys (no call per request); `Token` keys are introspected at authbridge
//! (`POST /rest-auth/token/introspect/`), each answer reused for `introspection_cache`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use authbridge_verify::{Rejection, Verifier, VerifierConfig, extract::credential};
use poem::{Request, RequestBody, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{app::State, config::Settings};

/// Cached answers kept at most; past it expired ones are dropped, then all.
const MAX_CACHED: usize = 10_000;
/// How long a JWT user's username is reused before it is asked again.
const USERNAME_TTL: Duration = Duration::from_secs(300);

/// The authenticated caller.
pub struct Caller {
    /// The user's pk on authbridge.
    pub user_id: i64,
    /// Known for `Token` callers (introspection says it); JWTs carry none.
    pub username: Option<String>,
    /// The JWT, to ask authbridge for the username when it is needed.
    jwt: Option<String>,
}

#[derive(Clone)]
pub struct Identity {
    pub user_id: i64,
    pub username: String,
}

#[derive(Deserialize)]
struct Introspection {
    active: bool,
    user_id: Option<i64>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct UserDetails {
    username: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("authbridge request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("introspection answered without user_id")]
    Incomplete,
}

/// A small time-bounded map.
struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }
}

pub struct Auth {
    verifier: Verifier,
    http: reqwest::Client,
    authbridge_url: String,
    client: Option<(String, SecretString)>,
    /// Introspection answers by key: `None` = inactive (cached too, so a bad key costs one call).
    introspected: TtlCache<String, Option<Identity>>,
    usernames: TtlCache<i64, String>,
}

impl Auth {
    pub fn new(settings: &Settings) -> Self {
        let verifier = Verifier::new(VerifierConfig {
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            ..VerifierConfig::new(&settings.authbridge_url)
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            verifier,
            http,
            authbridge_url: settings.authbridge_url.trim_end_matches('/').to_owned(),
            client: settings.client_id.clone().zip(settings.client_secret.clone()),
            introspected: TtlCache::new(settings.introspection_cache),
            usernames: TtlCache::new(USERNAME_TTL),
        }
    }

    /// The owner of a DRF key, or `None` when authbridge says it is not active.
    async fn introspect(&self, key: &str) -> Result<Option<Identity>, AuthError> {
        let Some((client_id, secret)) = &self.client else {
            return Ok(None);
        };
        if let Some(answer) = self.introspected.get(&key.to_owned()) {
            return Ok(answer);
        }
        let answer: Introspection = self
            .http
            .post(format!("{}/rest-auth/token/introspect/", self.authbridge_url))
            .basic_auth(client_id, Some(secret.expose_secret()))
            .form(&[("token", key)])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let identity = match answer {
            Introspection { active: false, .. } => None,
            Introspection {
                user_id: Some(user_id),
                username,
                ..
            } => Some(Identity {
                user_id,
                username: username.unwrap_or_default(),
            }),
            _ => return Err(AuthError::Incomplete),
        };
        self.introspected.put(key.to_owned(), identity.clone());
        Ok(identity)
    }

    /// The caller's username: from introspection, from memory, or from authbridge's
    /// `GET /rest-auth/user/` with the caller's own token.
    pub async fn username(&self, caller: &Caller) -> Result<String, AuthError> {
        if let Some(name) = &caller.username {
            return Ok(name.clone());
        }
        if let Some(name) = self.usernames.get(&caller.user_id) {
            return Ok(name);
        }
        let jwt = caller.jwt.as_deref().unwrap_or_default();
        let user: UserDetails = self
            .http
            .get(format!("{}/rest-auth/user/", self.authbridge_url))
            .bearer_auth(jwt)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        self.usernames.put(caller.user_id, user.username.clone());
        Ok(user.username)
    }
}

fn invalid_key() -> Rejection {
    Rejection {
        status: StatusCode::UNAUTHORIZED,
        code: "authentication_failed",
        detail: "Invalid token.",
    }
}

const BEARER: &str = "Bearer";
const TOKEN: &str = "Token";

/// In the spec as two security schemes, so Swagger UI and generated clients know how to send them.
impl<'a> ApiExtractor<'a> for Caller {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            BEARER,
            MetaSecurityScheme {
                ty: "http",
                description: Some("`Authorization: Bearer <access JWT>` from authbridge, verified here."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            TOKEN,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some("`Authorization: Token <key>` (a DRF key from authbridge), introspected there."),
                name: Some("Authorization"),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BEARER, TOKEN]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let state = req
            .data::<State>()
            .ok_or_else(|| poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR))?;
        match credential(req) {
            Some(("Bearer" | "JWT", token)) => {
                let claims = state.auth.verifier.verify(token).await.map_err(Rejection::from)?;
                Ok(Self {
                    user_id: claims.user_id,
                    username: None,
                    jwt: Some(token.to_owned()),
                })
            }
            Some(("Token", key)) => match state.auth.introspect(key).await {
                Ok(Some(identity)) => Ok(Self {
                    user_id: identity.user_id,
                    username: Some(identity.username),
                    jwt: None,
                }),
                Ok(None) => Err(invalid_key().into()),
                Err(e) => {
                    tracing::warn!(error = %e, "introspection failed");
                    Err(Rejection::unavailable().into())
                }
            },
            _ => Err(Rejection::not_authenticated().into()),
        }
    }
}
