//! The flat setting names (`AUTHBRIDGE_KAKAO_API_BASE`, `kakao_api_base = …` in the file) are a
//! contract (api.md §8); the code reads a tree of sections. This table maps one onto the other.

use figment::{
    Error, Metadata, Profile, Provider,
    error::Kind,
    value::{Dict, Map, Value},
};

/// Every setting: its flat name, then its place in the tree (`section.field`).
pub const NAMES: &[(&str, &str)] = &[
    ("listen", "server.listen"),
    ("site_id", "server.site_id"),
    ("max_body_bytes", "server.max_body_bytes"),
    ("log_format", "server.log_format"),
    ("database_url", "database.url"),
    ("database_max_connections", "database.max_connections"),
    ("migrate_on_start", "database.migrate_on_start"),
    ("cache_ttl", "database.cache_ttl"),
    ("maintenance_interval", "database.maintenance_interval"),
    ("provider_timeout", "providers.timeout"),
    ("provider_connect_timeout", "providers.connect_timeout"),
    ("kakao_api_base", "kakao.api_base"),
    ("kakao_auth_base", "kakao.auth_base"),
    ("kakao_issuer", "kakao.issuer"),
    ("kakao_require_nonce", "kakao.require_nonce"),
    ("naver_api_base", "naver.api_base"),
    ("naver_auth_base", "naver.auth_base"),
    ("apple_base", "apple.base"),
    ("apple_issuer", "apple.issuer"),
    ("google_oauth_base", "google.oauth_base"),
    ("google_api_base", "google.api_base"),
    ("google_issuer", "google.issuer"),
    ("jwt_algorithm", "jwt.algorithm"),
    ("signing_key", "jwt.signing_key"),
    ("access_token_lifetime", "jwt.access_token_lifetime"),
    ("refresh_token_lifetime", "jwt.refresh_token_lifetime"),
    ("rotate_refresh_tokens", "jwt.rotate_refresh_tokens"),
    ("refresh_reuse_grace", "jwt.refresh_reuse_grace"),
    ("key_reload_interval", "jwt.key_reload_interval"),
    ("jwt_issuer", "jwt.issuer"),
    ("jwt_audience", "jwt.audience"),
    ("auth_header_name", "auth.header_name"),
    ("auth_header_types", "auth.header_types"),
    ("reauthentication_window", "auth.reauthentication_window"),
    ("jwt_auth_cookie", "cookies.access_name"),
    ("jwt_auth_refresh_cookie", "cookies.refresh_name"),
    ("jwt_auth_cookie_secure", "cookies.secure"),
    ("smtp_url", "mail.smtp_url"),
    ("mail_from", "mail.from"),
    ("email_verification", "accounts.email_verification"),
    ("prevent_enumeration", "accounts.prevent_enumeration"),
    ("email_confirm_url", "accounts.email_confirm_url"),
    ("password_reset_url", "accounts.password_reset_url"),
    ("email_confirmation_lifetime", "accounts.email_confirmation_lifetime"),
    ("password_reset_lifetime", "accounts.password_reset_lifetime"),
    ("audit_enabled", "audit.enabled"),
    ("audit_retention", "audit.retention"),
    ("rate_limits_enabled", "rate_limits.enabled"),
    ("login_rate_per_account", "rate_limits.login_per_account"),
    ("login_rate_per_ip", "rate_limits.login_per_ip"),
    ("register_rate_per_account", "rate_limits.register_per_account"),
    ("register_rate_per_ip", "rate_limits.register_per_ip"),
    (
        "password_reset_rate_per_account",
        "rate_limits.password_reset_per_account",
    ),
    ("password_reset_rate_per_ip", "rate_limits.password_reset_per_ip"),
    ("introspect_rate_per_client", "rate_limits.introspect_per_client"),
    ("introspect_rate_per_ip", "rate_limits.introspect_per_ip"),
    ("social_login_rate_per_ip", "rate_limits.social_login_per_ip"),
    ("rate_limit_memory_entries", "rate_limits.memory_entries"),
    ("redis_url", "redis.url"),
    ("redis_key_prefix", "redis.key_prefix"),
    ("redis_timeout", "redis.timeout"),
    ("trusted_proxies", "proxies.trusted"),
    ("forwarded_header", "proxies.forwarded_header"),
    ("metrics_enabled", "metrics.enabled"),
    ("metrics_listen", "metrics.listen"),
    ("cors_allowed_origins", "browser.cors_allowed_origins"),
    ("cors_allow_credentials", "browser.cors_allow_credentials"),
    ("cors_max_age", "browser.cors_max_age"),
    ("hsts_max_age", "browser.hsts_max_age"),
    ("social_apps", "social_apps"),
];

/// The flat names alone, for the "expected one of" of an unknown-key error.
const FLAT: [&str; NAMES.len()] = {
    let mut out = [""; NAMES.len()];
    let mut i = 0;
    while i < NAMES.len() {
        out[i] = NAMES[i].0;
        i += 1;
    }
    out
};

/// Wraps a provider whose keys are flat names (the file, the environment) and hands figment the
/// same values placed in their sections. Errors still name the flat key: the interpolater maps a
/// section path back.
pub struct Flat<P> {
    inner: P,
    /// Environment variables: name keys upper-cased, as the variable is spelled.
    upper: bool,
}

impl<P: Provider> Flat<P> {
    pub fn file(inner: P) -> Self {
        Self { inner, upper: false }
    }

    pub fn env(inner: P) -> Self {
        Self { inner, upper: true }
    }
}

impl<P: Provider> Provider for Flat<P> {
    fn metadata(&self) -> Metadata {
        let upper = self.upper;
        self.inner
            .metadata()
            .interpolater(move |profile: &Profile, path: &[&str]| {
                let flat = flat_name(path);
                match upper {
                    true => flat.to_ascii_uppercase(),
                    false => format!("{profile}.{flat}"),
                }
            })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let mut tree = Map::new();
        for (profile, flat) in self.inner.data()? {
            let sections =
                sectioned(flat).map_err(|key| Error::from(Kind::UnknownField(key.clone(), &FLAT)).with_path(&key))?;
            tree.insert(profile, sections);
        }
        Ok(tree)
    }
}

/// `["kakao", "api_base"]` → `kakao_api_base`; a path deeper than a setting (an entry of
/// `social_apps`) keeps its tail.
fn flat_name(path: &[&str]) -> String {
    for depth in (1..=path.len()).rev() {
        let tree = path[..depth].join(".");
        if let Some((flat, _)) = NAMES.iter().find(|(_, t)| *t == tree) {
            return std::iter::once(*flat)
                .chain(path[depth..].iter().copied())
                .collect::<Vec<_>>()
                .join(".");
        }
    }
    path.join(".")
}

/// The same values placed in their sections; `Err` holds a key that names no setting.
fn sectioned(flat: Dict) -> Result<Dict, String> {
    let mut tree = Dict::new();
    for (key, value) in flat {
        let Some((_, path)) = NAMES.iter().find(|(name, _)| *name == key) else {
            return Err(key);
        };
        let nested = figment::util::nest(path, value)
            .into_dict()
            .expect("a path nests into a dict");
        tree = merge(tree, nested);
    }
    Ok(tree)
}

/// Merges `b` into `a`, section by section (both hold distinct settings).
fn merge(mut a: Dict, b: Dict) -> Dict {
    for (key, value) in b {
        let merged = match (a.remove(&key), value) {
            (Some(Value::Dict(_, old)), Value::Dict(tag, new)) => Value::Dict(tag, merge(old, new)),
            (_, value) => value,
        };
        a.insert(key, merged);
    }
    a
}
