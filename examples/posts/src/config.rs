//! Settings from `POSTS_*` environment variables, each with a default that serves locally.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;
use secrecy::SecretString;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `POSTS_LISTEN`: address and port to listen on.
    pub listen: SocketAddr,
    /// `POSTS_DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// `POSTS_AUTHBRIDGE_URL`: where authbridge serves (its key set, introspection, `/rest-auth/user/`).
    pub authbridge_url: String,
    /// `POSTS_JWT_ISSUER` / `POSTS_JWT_AUDIENCE`: required `iss` / `aud`, when authbridge sets them.
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// `POSTS_CLIENT_ID` / `POSTS_CLIENT_SECRET`: this API's credentials from `authbridge client
    /// add`; without them `Token` keys are refused and only JWTs work.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// `POSTS_INTROSPECTION_CACHE_SECS`: how long an introspection answer is reused, so a revoked
    /// `Token` key works here at most this long.
    pub introspection_cache: Duration,
    /// `POSTS_MEDIA_DIR`: where uploaded photos are stored.
    pub media_dir: PathBuf,
    /// `POSTS_PUBLIC_URL`: this API's URL as clients see it, for photo and page URLs (default
    /// `http://<bound address>`).
    pub public_url: Option<String>,
    /// `POSTS_MAX_UPLOAD_BYTES`: larger request bodies get 413.
    pub max_upload_bytes: usize,
    /// `POSTS_MAX_IMAGE_SIDE`: photos wider or taller than this (pixels) get 400.
    pub max_image_side: u32,
    /// `POSTS_PAGE_SIZE`: posts per page of the list.
    pub page_size: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8001)),
            database_url: "sqlite://posts.db?mode=rwc".into(),
            authbridge_url: "http://127.0.0.1:8000".into(),
            jwt_issuer: None,
            jwt_audience: None,
            client_id: None,
            client_secret: None,
            introspection_cache: Duration::from_secs(30),
            media_dir: PathBuf::from("media"),
            public_url: None,
            max_upload_bytes: 5 * 1024 * 1024,
            max_image_side: 4096,
            page_size: 10,
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parsed<T: FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match var(name) {
        Some(v) => v.parse().with_context(|| format!("{name}={v:?} is not valid")),
        None => Ok(default),
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let d = Self::default();
        let settings = Self {
            listen: parsed("POSTS_LISTEN", d.listen)?,
            database_url: var("POSTS_DATABASE_URL").unwrap_or(d.database_url),
            authbridge_url: var("POSTS_AUTHBRIDGE_URL").unwrap_or(d.authbridge_url),
            jwt_issuer: var("POSTS_JWT_ISSUER"),
            jwt_audience: var("POSTS_JWT_AUDIENCE"),
            client_id: var("POSTS_CLIENT_ID"),
            client_secret: var("POSTS_CLIENT_SECRET").map(SecretString::from),
            introspection_cache: Duration::from_secs(parsed(
                "POSTS_INTROSPECTION_CACHE_SECS",
                d.introspection_cache.as_secs(),
            )?),
            media_dir: var("POSTS_MEDIA_DIR").map_or(d.media_dir, PathBuf::from),
            public_url: var("POSTS_PUBLIC_URL"),
            max_upload_bytes: parsed("POSTS_MAX_UPLOAD_BYTES", d.max_upload_bytes)?,
            max_image_side: parsed("POSTS_MAX_IMAGE_SIDE", d.max_image_side)?,
            page_size: parsed("POSTS_PAGE_SIZE", d.page_size)?,
        };
        anyhow::ensure!(
            settings.client_id.is_some() == settings.client_secret.is_some(),
            "set both POSTS_CLIENT_ID and POSTS_CLIENT_SECRET (from `authbridge client add`), or neither"
        );
        Ok(settings)
    }
}
