//! Typed configuration: defaults < `authbridge.toml` (or `--config FILE`) < `AUTHBRIDGE_*` env.
//! Values are checked here, at load time; the rest of the code reads typed fields only, each
//! subsystem from its own section.

mod names;
mod sections;
mod values;

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

pub use sections::{
    AccountSettings, AppleSettings, AuditSettings, AuthSettings, BrowserSettings, CookieSettings, DatabaseSettings,
    GoogleSettings, JwtSettings, KakaoSettings, MailSettings, MetricsSettings, NaverSettings, ProviderSettings,
    ProxySettings, RateLimitSettings, RedisSettings, ServerSettings,
};
pub use values::{AppSettings, EmailVerification, ForwardedHeader, JwtAlgorithm, LogFormat, Rate, SocialAppConfig};

use names::Flat;

/// Environment variables that may instead name a file holding the secret (`AUTHBRIDGE_X_FILE`).
const FILE_SECRETS: [&str; 4] = ["database_url", "signing_key", "smtp_url", "redis_url"];

/// The whole tree: `App::build` and `cli::run` hand each subsystem its section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Bind address, default site, body limit, log format (app, api, telemetry).
    pub server: ServerSettings,
    /// Connection, pool, migrations, row cache and maintenance period (store, app).
    pub database: DatabaseSettings,
    /// Timeouts shared by every provider (providers::http_client).
    pub providers: ProviderSettings,
    /// Kakao's hosts, issuer and nonce rule (providers::kakao, login).
    pub kakao: KakaoSettings,
    /// Naver's hosts (providers::naver).
    pub naver: NaverSettings,
    /// Apple's host and issuer (providers::apple).
    pub apple: AppleSettings,
    /// Google's hosts and issuer (providers::google).
    pub google: GoogleSettings,
    /// Signing, claims and lifetimes of our tokens (tokens).
    pub jwt: JwtSettings,
    /// How requests present credentials, and the step-up window (api::auth, api::step_up).
    pub auth: AuthSettings,
    /// dj-rest-auth cookie mode (api::cookies).
    pub cookies: CookieSettings,
    /// SMTP transport and sender (mail).
    pub mail: MailSettings,
    /// Verification, enumeration and mailed links of local accounts (accounts).
    pub accounts: AccountSettings,
    /// The audit trail (audit, app's purge).
    pub audit: AuditSettings,
    /// Budgets per action and scope (ratelimit).
    pub rate_limits: RateLimitSettings,
    /// The shared rate-limit store (ratelimit).
    pub redis: RedisSettings,
    /// Which peers may name the client (ratelimit::client).
    pub proxies: ProxySettings,
    /// Prometheus metrics (metrics, app).
    pub metrics: MetricsSettings,
    /// CORS and HSTS (browser).
    pub browser: BrowserSettings,
    /// Social apps applied at start-up (file only: `[[social_apps]]`).
    pub social_apps: Vec<SocialAppConfig>,
}

impl Settings {
    /// Loads defaults < `file` (when it exists, or always when named explicitly) < environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} not found", path.display());
                figment = figment.merge(Flat::file(Toml::file(path)));
            }
            None => figment = figment.merge(Flat::file(Toml::file("authbridge.toml"))),
        }
        figment = figment.merge(Flat::env(
            Env::prefixed("AUTHBRIDGE_")
                // AUTHBRIDGE_TEST_* belong to the test suite; *_FILE are read below.
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !key.starts_with("test_") && !key.ends_with("_file")
                }),
        ));
        for key in FILE_SECRETS {
            let var = format!("AUTHBRIDGE_{}_FILE", key.to_uppercase());
            if let Ok(path) = std::env::var(&var) {
                let value =
                    std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{var}: cannot read {path}: {e}"))?;
                figment = figment.merge(Flat::file((key, value.trim_end().to_owned())));
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
        if self.jwt.algorithm == JwtAlgorithm::HS256 {
            use secrecy::ExposeSecret;
            let key = self
                .jwt
                .signing_key
                .as_ref()
                .map(|k| k.expose_secret().len())
                .unwrap_or(0);
            // RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
            anyhow::ensure!(
                key >= 32,
                "AUTHBRIDGE_SIGNING_KEY must be set to at least 32 characters when \
                 AUTHBRIDGE_JWT_ALGORITHM=HS256 (make one with `openssl rand -base64 48`)"
            );
        }
        for t in &self.auth.header_types {
            anyhow::ensure!(
                ["Bearer", "JWT", "Token"].contains(&t.as_str()),
                "AUTHBRIDGE_AUTH_HEADER_TYPES: unknown type {t:?} (allowed: Bearer, JWT, Token)"
            );
        }
        anyhow::ensure!(
            poem::http::HeaderName::from_bytes(self.auth.header_name.as_bytes()).is_ok(),
            "AUTHBRIDGE_AUTH_HEADER_NAME: {:?} is not a valid header name",
            self.auth.header_name
        );
        anyhow::ensure!(
            !self.jwt.access_token_lifetime.is_zero(),
            "AUTHBRIDGE_ACCESS_TOKEN_LIFETIME must be > 0"
        );
        anyhow::ensure!(
            !self.jwt.refresh_token_lifetime.is_zero(),
            "AUTHBRIDGE_REFRESH_TOKEN_LIFETIME must be > 0"
        );
        anyhow::ensure!(
            !self.providers.timeout.is_zero(),
            "AUTHBRIDGE_PROVIDER_TIMEOUT must be > 0"
        );
        anyhow::ensure!(
            !self.database.maintenance_interval.is_zero(),
            "AUTHBRIDGE_MAINTENANCE_INTERVAL must be > 0"
        );
        anyhow::ensure!(self.server.max_body_bytes > 0, "AUTHBRIDGE_MAX_BODY_BYTES must be > 0");
        anyhow::ensure!(!self.redis.timeout.is_zero(), "AUTHBRIDGE_REDIS_TIMEOUT must be > 0");
        // Fetch spec: `*` with credentials is refused by browsers; echoing any origin instead
        // would let every site read a signed-in user's answers.
        anyhow::ensure!(
            !(self.browser.cors_allow_credentials && self.browser.cors_allowed_origins.iter().any(|o| o == "*")),
            "AUTHBRIDGE_CORS_ALLOW_CREDENTIALS=true needs explicit origins in \
             AUTHBRIDGE_CORS_ALLOWED_ORIGINS, not `*`"
        );
        anyhow::ensure!(
            self.rate_limits.memory_entries > 0,
            "AUTHBRIDGE_RATE_LIMIT_MEMORY_ENTRIES must be > 0"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
