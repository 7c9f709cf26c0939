//! One struct per subsystem's settings; each subsystem is handed its own section only.
//! The flat names these fields are read from (`AUTHBRIDGE_KAKAO_API_BASE`) are in `names.rs`.

use std::{net::SocketAddr, time::Duration};

use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::values::{EmailVerification, ForwardedHeader, JwtAlgorithm, LogFormat, Rate, ip_nets, origins};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Site used when no site's domain matches the request's Host.
    pub site_id: i32,
    /// Largest accepted request body, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Log output: `pretty` or `json`.
    pub log_format: LogFormat,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            site_id: 1,
            max_body_bytes: 64 * 1024,
            log_format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// sea-orm database URL: `sqlite://…`, `postgres://…` or `mysql://…`.
    pub url: SecretString,
    /// Largest number of pooled database connections.
    pub max_connections: u32,
    /// Run pending migrations at start-up.
    pub migrate_on_start: bool,
    /// How long rows read on every request (users, social accounts, sites, social apps) may be served from memory
    /// (`1s`; `0s` turns the caches off). Changes made through this instance are seen at once;
    /// changes made elsewhere (another instance, the CLI) within this time.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How often expired refresh-token rows, revoked sessions, old audit events and unconfirmed
    /// registrations whose key expired are purged.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://authbridge.db?mode=rwc"),
            max_connections: 8,
            migrate_on_start: true,
            cache_ttl: Duration::from_secs(1),
            maintenance_interval: Duration::from_secs(3600),
        }
    }
}

/// What every identity provider shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// Total time allowed for all provider calls of one login (`5s`, `500ms`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Time allowed to open a connection to a provider.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KakaoSettings {
    /// Base URL of Kakao's API host (`kapi`).
    pub api_base: Url,
    /// Base URL of Kakao's auth host (`kauth`).
    pub auth_base: Url,
    /// `iss` required of Kakao id_tokens.
    pub issuer: String,
    /// An id_token sent alone (no access token, no code) must come with the nonce it echoes; `false`
    /// accepts it without one (a replayed id_token then signs in until it expires).
    pub require_nonce: bool,
}

impl Default for KakaoSettings {
    fn default() -> Self {
        Self {
            api_base: Url::parse("https://kapi.kakao.com").expect("static URL"),
            auth_base: Url::parse("https://kauth.kakao.com").expect("static URL"),
            issuer: "https://kauth.kakao.com".into(),
            require_nonce: true,
        }
    }
}

/// Naver Login's two hosts (docs/providers.md 1.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NaverSettings {
    /// Base URL of Naver's API host (`openapi.naver.com`: the profile).
    pub api_base: Url,
    /// Base URL of Naver's auth host (`nid.naver.com`: token, revoke).
    pub auth_base: Url,
}

impl Default for NaverSettings {
    fn default() -> Self {
        Self {
            api_base: Url::parse("https://openapi.naver.com").expect("static URL"),
            auth_base: Url::parse("https://nid.naver.com").expect("static URL"),
        }
    }
}

/// Sign in with Apple's host (docs/providers.md 3.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppleSettings {
    /// Base URL of Apple's host (`appleid.apple.com`: token, revoke, keys).
    pub base: Url,
    /// `iss` required of Apple's id_tokens and notifications; the `aud` of our client secrets.
    pub issuer: String,
}

impl Default for AppleSettings {
    fn default() -> Self {
        Self {
            base: Url::parse("https://appleid.apple.com").expect("static URL"),
            issuer: "https://appleid.apple.com".into(),
        }
    }
}

/// Google's hosts (docs/providers.md 2.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleSettings {
    /// Base URL of Google's OAuth host (`oauth2.googleapis.com`: token, tokeninfo, revoke).
    pub oauth_base: Url,
    /// Base URL of Google's API host (`www.googleapis.com`: keys, userinfo).
    pub api_base: Url,
    /// `iss` required of Google's id_tokens; the same without `https://` is accepted too.
    pub issuer: String,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        Self {
            oauth_base: Url::parse("https://oauth2.googleapis.com").expect("static URL"),
            api_base: Url::parse("https://www.googleapis.com").expect("static URL"),
            issuer: "https://accounts.google.com".into(),
        }
    }
}

/// The tokens we issue: how they are signed, what they claim, how long they live.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSettings {
    /// JWT signing algorithm: `EdDSA` (keys kept in the database) or `HS256` (shared secret).
    pub algorithm: JwtAlgorithm,
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
    /// How often each instance re-reads the signing keys (`1m`): a key rotated or revoked
    /// elsewhere takes effect here within this time.
    #[serde(with = "humantime_serde")]
    pub key_reload_interval: Duration,
    /// `iss` claim put in and required of tokens, when set.
    pub issuer: Option<String>,
    /// `aud` claim put in and required of tokens, when set.
    pub audience: Option<String>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::EdDSA,
            signing_key: None,
            access_token_lifetime: Duration::from_secs(5 * 60),
            refresh_token_lifetime: Duration::from_secs(24 * 3600),
            rotate_refresh_tokens: true,
            refresh_reuse_grace: Duration::from_secs(10),
            key_reload_interval: Duration::from_secs(60),
            issuer: None,
            audience: None,
        }
    }
}

/// How a request says who sends it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Request header that carries credentials (one deployment uses `jwt-auth`).
    pub header_name: String,
    /// Accepted credential types in that header: any of `Bearer`, `JWT`, `Token`.
    pub header_types: Vec<String>,
    /// How recent a sign-in must be (`auth_time`) to delete the account, set a first password or
    /// connect or disconnect a provider account without the current password (`10m`).
    #[serde(with = "humantime_serde")]
    pub reauthentication_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            header_name: "Authorization".into(),
            header_types: vec!["Bearer".into(), "JWT".into(), "Token".into()],
            reauthentication_window: Duration::from_secs(10 * 60),
        }
    }
}

/// dj-rest-auth's cookie mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CookieSettings {
    /// dj-rest-auth `JWT_AUTH_COOKIE`: when set (e.g. `jwt-auth`), logins also set the access
    /// JWT in this HttpOnly cookie and requests may authenticate with it (CSRF-checked).
    pub access_name: Option<String>,
    /// dj-rest-auth `JWT_AUTH_REFRESH_COOKIE`: the refresh JWT's cookie in cookie mode.
    pub refresh_name: String,
    /// `Secure` flag of the cookies (turn off only for plain-HTTP development).
    pub secure: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            access_name: None,
            refresh_name: "jwt-refresh-token".into(),
            secure: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// SMTP server URL for outgoing mail (`smtp://host:25`, `smtps://user:pass@host`).
    pub smtp_url: Option<SecretString>,
    /// Sender of outgoing mail.
    pub from: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "authbridge <no-reply@localhost>".into(),
        }
    }
}

/// Local accounts (allauth's account settings): verification, enumeration, mailed links.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountSettings {
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
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            email_verification: EmailVerification::Mandatory,
            prevent_enumeration: true,
            email_confirm_url: "http://127.0.0.1:8000/verify-email/{key}".into(),
            password_reset_url: "http://127.0.0.1:8000/reset-password/{uid}/{token}".into(),
            email_confirmation_lifetime: Duration::from_secs(3 * 86_400),
            password_reset_lifetime: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Record security events in the `audit_events` table (`true`).
    pub enabled: bool,
    /// How long audit events are kept (`90days`; `0s` keeps them forever).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retention: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Apply the rate limits of password and social login, registration, password reset and
    /// introspection (`false`: off).
    pub enabled: bool,
    /// Password logins and token obtains per account (the login name, case-insensitive): `N/period`.
    pub login_per_account: Rate,
    /// Password logins and token obtains per client IP (an IPv6 client's /64).
    pub login_per_ip: Rate,
    /// Registrations per email address.
    pub register_per_account: Rate,
    /// Registrations per client IP.
    pub register_per_ip: Rate,
    /// Password reset requests per email address.
    pub password_reset_per_account: Rate,
    /// Password reset requests per client IP.
    pub password_reset_per_ip: Rate,
    /// Token introspection requests per resource-server client id.
    pub introspect_per_client: Rate,
    /// Token introspection requests per client IP.
    pub introspect_per_ip: Rate,
    /// Social logins and connects per client IP: each attempt costs calls on the provider quota.
    pub social_login_per_ip: Rate,
    /// Most entries each in-memory budget table keeps (per action and scope); past it the oldest
    /// is dropped, so a flood of distinct names or addresses cannot grow memory without bound.
    pub memory_entries: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let minute = Duration::from_secs(60);
        let hour = Duration::from_secs(3600);
        Self {
            enabled: true,
            login_per_account: Rate::new(10, minute),
            login_per_ip: Rate::new(30, minute),
            register_per_account: Rate::new(5, hour),
            register_per_ip: Rate::new(20, hour),
            password_reset_per_account: Rate::new(5, hour),
            password_reset_per_ip: Rate::new(20, hour),
            introspect_per_client: Rate::new(6000, minute),
            introspect_per_ip: Rate::new(6000, minute),
            social_login_per_ip: Rate::new(300, minute),
            memory_entries: 50_000,
        }
    }
}

/// The Redis that holds the rate-limit counts shared by all instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Redis (`redis://[:password@]host:6379/0`) shared by all instances for the rate-limit counts;
    /// unset: each instance counts in its own memory.
    pub url: Option<SecretString>,
    /// Prefix of the rate-limit keys in Redis.
    pub key_prefix: String,
    /// Time allowed for one Redis call, connecting included; past it, the instance's own memory counts.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "authbridge:rl:".into(),
            timeout: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// Reverse proxies (addresses or CIDRs) whose forwarded header names the client.
    #[serde(deserialize_with = "ip_nets")]
    pub trusted: Vec<IpNet>,
    /// The header those proxies set: `x-forwarded-for` or `forwarded` (RFC 7239).
    pub forwarded_header: ForwardedHeader,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            trusted: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve Prometheus metrics at `/metrics` (`false`: not recorded, not served).
    pub enabled: bool,
    /// Serve `/metrics` on this address instead of `listen` (keeps it off the public port).
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
        }
    }
}

/// What browsers are told: CORS and HSTS (`browser.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserSettings {
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

impl Default for BrowserSettings {
    fn default() -> Self {
        Self {
            cors_allowed_origins: Vec::new(),
            cors_allow_credentials: false,
            cors_max_age: Duration::from_secs(3600),
            hsts_max_age: None,
        }
    }
}
