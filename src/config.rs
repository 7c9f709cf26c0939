//! Typed configuration: defaults < `authbridge.toml` (or `--config FILE`) < `AUTHBRIDGE_*` env.
//! Values are checked here, at load time; the rest of the code reads typed fields only.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::Path,
    str::FromStr,
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use url::Url;

/// Environment variables that may instead name a file holding the secret (`AUTHBRIDGE_X_FILE`).
const FILE_SECRETS: [&str; 4] = ["database_url", "signing_key", "smtp_url", "redis_url"];

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// sea-orm database URL: `sqlite://…`, `postgres://…` or `mysql://…`.
    pub database_url: SecretString,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// Run pending migrations at start-up.
    pub migrate_on_start: bool,
    /// Site used when no site's domain matches the request's Host.
    pub site_id: i32,
    /// Largest accepted request body, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Base URL of Kakao's API host (`kapi`).
    pub kakao_api_base: Url,
    /// Base URL of Kakao's auth host (`kauth`).
    pub kakao_auth_base: Url,
    /// `iss` required of Kakao id_tokens.
    pub kakao_issuer: String,
    /// An id_token sent alone (no access token, no code) must come with the nonce it echoes; `false`
    /// accepts it without one (a replayed id_token then signs in until it expires).
    pub kakao_require_nonce: bool,
    /// Total time allowed for all provider calls of one login (`5s`, `500ms`).
    #[serde(with = "humantime_serde")]
    pub provider_timeout: Duration,
    /// Time allowed to open a connection to a provider.
    #[serde(with = "humantime_serde")]
    pub provider_connect_timeout: Duration,
    /// JWT signing algorithm: `EdDSA` (keys kept in the database) or `HS256` (shared secret).
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 shared secret (Django's SECRET_KEY / SIMPLE_JWT SIGNING_KEY); required for HS256.
    pub signing_key: Option<SecretString>,
    /// Access token lifetime (`5m`).
    #[serde(with = "humantime_serde")]
    pub access_token_lifetime: Duration,
    /// Refresh token lifetime (`1day`).
    #[serde(with = "humantime_serde")]
    pub refresh_token_lifetime: Duration,
    /// Rotate refresh tokens on refresh (simplejwt `ROTATE_REFRESH_TOKENS`); the spent one is blacklisted.
    pub rotate_refresh_tokens: bool,
    /// How long a spent refresh token may be replayed (a client's concurrent retry) before the
    /// replay revokes its whole family.
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
    /// How recent a sign-in must be (`auth_time`) to delete the account, set a first password or
    /// connect or disconnect a provider account without the current password (`10m`).
    #[serde(with = "humantime_serde")]
    pub reauthentication_window: Duration,
    /// How often each instance re-reads the signing keys (`1m`): a key rotated or revoked
    /// elsewhere takes effect here within this time.
    #[serde(with = "humantime_serde")]
    pub key_reload_interval: Duration,
    /// Record security events in the `audit_events` table (`true`).
    pub audit_enabled: bool,
    /// How long audit events are kept (`90days`; `0s` keeps them forever).
    #[serde(with = "humantime_serde")]
    pub audit_retention: Duration,
    /// How often expired refresh-token rows, revoked sessions, old audit events and unconfirmed
    /// registrations whose key expired are purged.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// How long rows read on every request (users, social accounts, sites, social apps) may be served from memory
    /// (`1s`; `0s` turns the caches off). Changes made through this instance are seen at once;
    /// changes made elsewhere (another instance, the CLI) within this time.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// `iss` claim put in and required of tokens, when set.
    pub jwt_issuer: Option<String>,
    /// `aud` claim put in and required of tokens, when set.
    pub jwt_audience: Option<String>,
    /// Request header that carries credentials (one deployment uses `jwt-auth`).
    pub auth_header_name: String,
    /// Accepted credential types in that header: any of `Bearer`, `JWT`, `Token`.
    pub auth_header_types: Vec<String>,
    /// dj-rest-auth `JWT_AUTH_COOKIE`: when set (e.g. `jwt-auth`), logins also set the access
    /// JWT in this HttpOnly cookie and requests may authenticate with it (CSRF-checked).
    pub jwt_auth_cookie: Option<String>,
    /// dj-rest-auth `JWT_AUTH_REFRESH_COOKIE`: the refresh JWT's cookie in cookie mode.
    pub jwt_auth_refresh_cookie: String,
    /// `Secure` flag of the cookies (turn off only for plain-HTTP development).
    pub jwt_auth_cookie_secure: bool,
    /// SMTP server URL for outgoing mail (`smtp://host:25`, `smtps://user:pass@host`).
    pub smtp_url: Option<SecretString>,
    /// Sender of outgoing mail.
    pub mail_from: String,
    /// allauth `ACCOUNT_EMAIL_VERIFICATION`: `mandatory` (no login before), `optional`, `none`.
    pub email_verification: EmailVerification,
    /// allauth `ACCOUNT_PREVENT_ENUMERATION`: registering a taken address answers as a new one and
    /// mails the address's owner; `false`: a 400 on `email` says the address is taken.
    pub prevent_enumeration: bool,
    /// Link in the confirmation mail; `{key}` is replaced by the key.
    pub email_confirm_url: String,
    /// Link in the password-reset mail; `{uid}` and `{token}` are replaced.
    pub password_reset_url: String,
    /// How long an email-confirmation key works (allauth: 3 days).
    #[serde(with = "humantime_serde")]
    pub email_confirmation_lifetime: Duration,
    /// How long a password-reset link works (Django: 3 days; shorter is safer).
    #[serde(with = "humantime_serde")]
    pub password_reset_lifetime: Duration,
    /// Log output: `pretty` or `json`.
    pub log_format: LogFormat,
    /// Social apps applied at start-up (file only: `[[social_apps]]`).
    pub social_apps: Vec<SocialAppConfig>,
    /// Apply the rate limits of password and social login, registration, password reset and
    /// introspection (`false`: off).
    pub rate_limits_enabled: bool,
    /// Password logins and token obtains per account (the login name, case-insensitive): `N/period`.
    pub login_rate_per_account: Rate,
    /// Password logins and token obtains per client IP (an IPv6 client's /64).
    pub login_rate_per_ip: Rate,
    /// Registrations per email address.
    pub register_rate_per_account: Rate,
    /// Registrations per client IP.
    pub register_rate_per_ip: Rate,
    /// Password reset requests per email address.
    pub password_reset_rate_per_account: Rate,
    /// Password reset requests per client IP.
    pub password_reset_rate_per_ip: Rate,
    /// Token introspection requests per resource-server client id.
    pub introspect_rate_per_client: Rate,
    /// Token introspection requests per client IP.
    pub introspect_rate_per_ip: Rate,
    /// Social logins per client IP: each attempt costs two calls on the app's Kakao quota.
    pub social_login_rate_per_ip: Rate,
    /// Most entries each in-memory budget table keeps (per action and scope); past it the oldest
    /// is dropped, so a flood of distinct names or addresses cannot grow memory without bound.
    pub rate_limit_memory_entries: usize,
    /// Redis (`redis://[:password@]host:6379/0`) shared by all instances for the rate-limit counts;
    /// unset: each instance counts in its own memory.
    pub redis_url: Option<SecretString>,
    /// Prefix of the rate-limit keys in Redis.
    pub redis_key_prefix: String,
    /// Time allowed for one Redis call, connecting included; past it, the instance's own memory counts.
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
    /// Reverse proxies (addresses or CIDRs) whose forwarded header names the client.
    #[serde(deserialize_with = "ip_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// The header those proxies set: `x-forwarded-for` or `forwarded` (RFC 7239).
    pub forwarded_header: ForwardedHeader,
    /// Serve Prometheus metrics at `/metrics` (`false`: not recorded, not served).
    pub metrics_enabled: bool,
    /// Serve `/metrics` on this address instead of `listen` (keeps it off the public port).
    pub metrics_listen: Option<SocketAddr>,
    /// Origins (`https://app.example.com`) whose browser scripts may call the API (CORS); `*`
    /// for any origin without credentials. Empty: no CORS headers at all.
    #[serde(deserialize_with = "origins")]
    pub cors_allowed_origins: Vec<String>,
    /// Let those origins send cookies (`Access-Control-Allow-Credentials`); needs explicit origins.
    pub cors_allow_credentials: bool,
    /// How long a browser may cache a CORS preflight answer.
    #[serde(with = "humantime_serde")]
    pub cors_max_age: Duration,
    /// `Strict-Transport-Security: max-age=…` on every response when set (serve over HTTPS only).
    #[serde(with = "humantime_serde")]
    pub hsts_max_age: Option<Duration>,
}

/// A rate: `N/period`, period one of `s`, `min`, `hour`, `day` or a duration (`10/30s`). N requests
/// may come at once; then one more each period/N (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl Rate {
    pub const fn new(count: u32, period: Duration) -> Self {
        Self { count, period }
    }

    /// The time one request's share takes to come back: period / count.
    pub fn interval(&self) -> Duration {
        self.period / self.count
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a rate such as `10/min`");
        let (count, period) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = match period.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            other => humantime_serde::re::humantime::parse_duration(other).map_err(|_| bad())?,
        };
        // Below a millisecond per request the Redis script's clock could not tell requests apart.
        if count == 0 || period / count < Duration::from_millis(1) {
            return Err(format!("{s:?}: the count must be > 0 and at most one per millisecond"));
        }
        Ok(Self { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime_serde::re::humantime::format_duration(self.period)
        )
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    XForwardedFor,
    Forwarded,
}

/// A list, or one comma-separated string (`10.0.0.0/8, 127.0.0.1`) as an environment variable
/// gives it; a bare address is a /32 (/128).
fn ip_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR")))
        })
        .collect()
}

/// CORS origins, a list or one comma-separated string; each `*` or `scheme://host[:port]`,
/// kept in the form browsers send in `Origin` (lower case, no trailing slash).
fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(v) => v,
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == "*" {
                return Ok(s.to_owned());
            }
            let bad = || serde::de::Error::custom(format!("{s:?} is not an origin such as `https://app.example.com`"));
            let url = Url::parse(s).map_err(|_| bad())?;
            let origin = url.origin().ascii_serialization();
            // A path, query or user part would never match what a browser sends.
            if origin == "null" || origin != s.trim_end_matches('/').to_ascii_lowercase() {
                return Err(bad());
            }
            Ok(origin)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    EdDSA,
    HS256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailVerification {
    Mandatory,
    Optional,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// One `[[social_apps]]` entry: the same fields as `authbridge socialapp add`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocialAppConfig {
    pub provider: String,
    pub name: Option<String>,
    pub client_id: String,
    pub secret: SecretString,
    #[serde(default)]
    pub admin_key: Option<SecretString>,
    #[serde(default)]
    pub app_ids: Vec<String>,
    #[serde(default)]
    pub client_keys: Vec<String>,
    #[serde(default = "default_sites")]
    pub sites: Vec<i32>,
}

fn default_sites() -> Vec<i32> {
    vec![1]
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: SecretString::from("sqlite://authbridge.db?mode=rwc"),
            database_max_connections: 8,
            migrate_on_start: true,
            site_id: 1,
            max_body_bytes: 64 * 1024,
            kakao_api_base: Url::parse("https://kapi.kakao.com").expect("static URL"),
            kakao_auth_base: Url::parse("https://kauth.kakao.com").expect("static URL"),
            kakao_issuer: "https://kauth.kakao.com".into(),
            kakao_require_nonce: true,
            provider_timeout: Duration::from_secs(5),
            provider_connect_timeout: Duration::from_secs(2),
            jwt_algorithm: JwtAlgorithm::EdDSA,
            signing_key: None,
            access_token_lifetime: Duration::from_secs(5 * 60),
            refresh_token_lifetime: Duration::from_secs(24 * 3600),
            rotate_refresh_tokens: true,
            refresh_reuse_grace: Duration::from_secs(10),
            reauthentication_window: Duration::from_secs(10 * 60),
            key_reload_interval: Duration::from_secs(60),
            audit_enabled: true,
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            maintenance_interval: Duration::from_secs(3600),
            cache_ttl: Duration::from_secs(1),
            jwt_issuer: None,
            jwt_audience: None,
            auth_header_name: "Authorization".into(),
            auth_header_types: vec!["Bearer".into(), "JWT".into(), "Token".into()],
            jwt_auth_cookie: None,
            jwt_auth_refresh_cookie: "jwt-refresh-token".into(),
            jwt_auth_cookie_secure: true,
            smtp_url: None,
            mail_from: "authbridge <no-reply@localhost>".into(),
            email_verification: EmailVerification::Mandatory,
            prevent_enumeration: true,
            email_confirm_url: "http://127.0.0.1:8000/verify-email/{key}".into(),
            password_reset_url: "http://127.0.0.1:8000/reset-password/{uid}/{token}".into(),
            email_confirmation_lifetime: Duration::from_secs(3 * 86_400),
            password_reset_lifetime: Duration::from_secs(3600),
            log_format: LogFormat::Pretty,
            social_apps: Vec::new(),
            rate_limits_enabled: true,
            login_rate_per_account: Rate::new(10, Duration::from_secs(60)),
            login_rate_per_ip: Rate::new(30, Duration::from_secs(60)),
            register_rate_per_account: Rate::new(5, Duration::from_secs(3600)),
            register_rate_per_ip: Rate::new(20, Duration::from_secs(3600)),
            password_reset_rate_per_account: Rate::new(5, Duration::from_secs(3600)),
            password_reset_rate_per_ip: Rate::new(20, Duration::from_secs(3600)),
            introspect_rate_per_client: Rate::new(6000, Duration::from_secs(60)),
            introspect_rate_per_ip: Rate::new(6000, Duration::from_secs(60)),
            social_login_rate_per_ip: Rate::new(300, Duration::from_secs(60)),
            rate_limit_memory_entries: 50_000,
            redis_url: None,
            redis_key_prefix: "authbridge:rl:".into(),
            redis_timeout: Duration::from_millis(500),
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            metrics_enabled: true,
            metrics_listen: None,
            cors_allowed_origins: Vec::new(),
            cors_allow_credentials: false,
            cors_max_age: Duration::from_secs(3600),
            hsts_max_age: None,
        }
    }
}

impl Settings {
    /// Loads defaults < `file` (when it exists, or always when named explicitly) < environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} not found", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("authbridge.toml")),
        }
        figment = figment.merge(
            Env::prefixed("AUTHBRIDGE_")
                // AUTHBRIDGE_TEST_* belong to the test suite; *_FILE are read below.
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !key.starts_with("test_") && !key.ends_with("_file")
                }),
        );
        for key in FILE_SECRETS {
            let var = format!("AUTHBRIDGE_{}_FILE", key.to_uppercase());
            if let Ok(path) = std::env::var(&var) {
                let value =
                    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{var}: cannot read {path}: {e}"))?;
                figment = figment.merge((key, value.trim_end().to_owned()));
            }
        }
        let settings: Settings = figment
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks that values fit together; each message names the key to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.jwt_algorithm == JwtAlgorithm::HS256 {
            use secrecy::ExposeSecret;
            let key = self.signing_key.as_ref().map(|k| k.expose_secret().len()).unwrap_or(0);
            // RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
            anyhow::ensure!(
                key >= 32,
                "AUTHBRIDGE_SIGNING_KEY must be set to at least 32 characters when \
                 AUTHBRIDGE_JWT_ALGORITHM=HS256 (make one with `openssl rand -base64 48`)"
            );
        }
        for t in &self.auth_header_types {
            anyhow::ensure!(
                ["Bearer", "JWT", "Token"].contains(&t.as_str()),
                "AUTHBRIDGE_AUTH_HEADER_TYPES: unknown type {t:?} (allowed: Bearer, JWT, Token)"
            );
        }
        anyhow::ensure!(
            poem::http::HeaderName::from_bytes(self.auth_header_name.as_bytes()).is_ok(),
            "AUTHBRIDGE_AUTH_HEADER_NAME: {:?} is not a valid header name",
            self.auth_header_name
        );
        anyhow::ensure!(
            !self.access_token_lifetime.is_zero(),
            "AUTHBRIDGE_ACCESS_TOKEN_LIFETIME must be > 0"
        );
        anyhow::ensure!(
            !self.refresh_token_lifetime.is_zero(),
            "AUTHBRIDGE_REFRESH_TOKEN_LIFETIME must be > 0"
        );
        anyhow::ensure!(
            !self.provider_timeout.is_zero(),
            "AUTHBRIDGE_PROVIDER_TIMEOUT must be > 0"
        );
        anyhow::ensure!(
            !self.maintenance_interval.is_zero(),
            "AUTHBRIDGE_MAINTENANCE_INTERVAL must be > 0"
        );
        anyhow::ensure!(self.max_body_bytes > 0, "AUTHBRIDGE_MAX_BODY_BYTES must be > 0");
        anyhow::ensure!(!self.redis_timeout.is_zero(), "AUTHBRIDGE_REDIS_TIMEOUT must be > 0");
        // Fetch spec: `*` with credentials is refused by browsers; echoing any origin instead
        // would let every site read a signed-in user's answers.
        anyhow::ensure!(
            !(self.cors_allow_credentials && self.cors_allowed_origins.iter().any(|o| o == "*")),
            "AUTHBRIDGE_CORS_ALLOW_CREDENTIALS=true needs explicit origins in \
             AUTHBRIDGE_CORS_ALLOWED_ORIGINS, not `*`"
        );
        anyhow::ensure!(
            self.rate_limit_memory_entries > 0,
            "AUTHBRIDGE_RATE_LIMIT_MEMORY_ENTRIES must be > 0"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_named_and_humantime_periods() {
        assert_eq!("10/min".parse(), Ok(Rate::new(10, Duration::from_secs(60))));
        assert_eq!(" 5 / hour".parse(), Ok(Rate::new(5, Duration::from_secs(3600))));
        assert_eq!("3/30s".parse(), Ok(Rate::new(3, Duration::from_secs(30))));
        for bad in ["10", "0/min", "x/min", "10/fortnightly", "5000/1s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_take_a_list_or_a_comma_separated_string() {
        let from_env: Settings = Figment::new()
            .merge(("trusted_proxies", "10.0.0.0/8, 127.0.0.1,::1"))
            .extract()
            .unwrap();
        let nets: Vec<String> = from_env.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        let from_file: Settings = Figment::new()
            .merge(Toml::string(r#"trusted_proxies = ["192.168.0.0/16"]"#))
            .extract()
            .unwrap();
        assert_eq!(from_file.trusted_proxies.len(), 1);
        let bad = Figment::new()
            .merge(("trusted_proxies", "proxy.local"))
            .extract::<Settings>();
        assert!(bad.is_err());
    }

    #[test]
    fn cors_origins_are_origins_and_credentials_need_explicit_ones() {
        let from_env: Settings = Figment::new()
            .merge((
                "cors_allowed_origins",
                "https://App.example.com/, http://localhost:3000",
            ))
            .extract()
            .unwrap();
        assert_eq!(
            from_env.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:3000"]
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/login",
            "https://user@app.example.com",
        ] {
            let parsed = Figment::new()
                .merge(("cors_allowed_origins", bad))
                .extract::<Settings>();
            assert!(parsed.is_err(), "{bad}");
        }
        let wildcard_with_credentials = Settings {
            cors_allowed_origins: vec!["*".into()],
            cors_allow_credentials: true,
            ..Settings::default()
        };
        assert!(wildcard_with_credentials.validate().is_err());
    }
}
