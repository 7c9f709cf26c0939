//! Rate limits of password logins, registration, password reset (api.md 6), social logins and
//! token introspection:
//! GCRA per client IP and per account, counted in this process's memory (governor) or shared
//! through Redis.
//! Handlers call `check` before any password work; this module decides nothing else.

mod client;
mod memory;
mod redis;

use std::{net::IpAddr, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};

pub use self::client::{ClientIp, client_ip};
use crate::{
    config::{Rate, RateLimitSettings, RedisSettings},
    metrics::Metrics,
};

/// What a request spends its budget on. Token obtains (`/api/token/`, `/api-jwt-auth/`,
/// `/api-token-auth/`) are password logins: they share `Login`'s budget. A social login has a
/// per-IP budget only: each attempt costs two calls on the app's Kakao quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    Register,
    PasswordReset,
    /// `POST /rest-auth/token/introspect/`; the "account" is the resource server's client id.
    Introspect,
    SocialLogin,
}

impl Action {
    const ALL: [Action; 5] = [
        Action::Login,
        Action::Register,
        Action::PasswordReset,
        Action::Introspect,
        Action::SocialLogin,
    ];

    fn name(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Register => "register",
            Action::PasswordReset => "password_reset",
            Action::Introspect => "introspect",
            Action::SocialLogin => "social_login",
        }
    }
}

/// Whose budget: the client's address or the account named in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Ip,
    Account,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Account => "account",
        }
    }
}

/// One budget a request draws on: (action, scope) names the rate, `id` the holder.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    action: Action,
    scope: Scope,
    /// A client's address (an IPv6 client's /64) or a digest of the account name: fixed size, so
    /// memory does not grow with long names, and no login name is written to Redis.
    id: [u8; 16],
}

impl Bucket {
    fn ip(action: Action, ip: IpAddr) -> Self {
        let id = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            // One IPv6 host usually holds a whole /64: count it as one client.
            IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 64) - 1)).to_be_bytes(),
        };
        Self {
            action,
            scope: Scope::Ip,
            id,
        }
    }

    fn account(action: Action, account: &str) -> Self {
        let digest = Sha256::digest(account_key(account).as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        Self {
            action,
            scope: Scope::Account,
            id,
        }
    }

    /// Index into the per-(action, scope) tables.
    fn slot(&self) -> usize {
        slot(self.action, self.scope)
    }
}

fn slot(action: Action, scope: Scope) -> usize {
    let a = Action::ALL.iter().position(|x| *x == action).unwrap_or_default();
    a * 2 + usize::from(scope == Scope::Account)
}

/// The account's bucket name: `Alice`, ` alice ` and `ALICE` share one budget.
pub fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

/// Refused: the budget comes back after `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited; retry after {retry_after:?}")]
pub struct Throttled {
    pub retry_after: Duration,
}

/// The rates of every (action, scope), indexed by `slot` (a social login's account slot is unused).
type Rates = [Rate; 10];

fn rates(settings: &RateLimitSettings) -> Rates {
    let mut rates = [settings.social_login_per_ip; 10];
    let table = [
        (Action::Login, settings.login_per_ip, settings.login_per_account),
        (
            Action::Register,
            settings.register_per_ip,
            settings.register_per_account,
        ),
        (
            Action::PasswordReset,
            settings.password_reset_per_ip,
            settings.password_reset_per_account,
        ),
        (
            Action::Introspect,
            settings.introspect_per_ip,
            settings.introspect_per_client,
        ),
    ];
    for (action, ip, account) in table {
        rates[slot(action, Scope::Ip)] = ip;
        rates[slot(action, Scope::Account)] = account;
    }
    rates[slot(Action::SocialLogin, Scope::Ip)] = settings.social_login_per_ip;
    rates
}

/// Cheap to clone; lives in `AppState` as `limits`.
#[derive(Clone)]
pub struct RateLimiter(Option<Arc<Inner>>);

struct Inner {
    memory: memory::MemoryLimits,
    redis: Option<redis::RedisLimits>,
    metrics: Metrics,
}

impl RateLimiter {
    /// From the settings: off, in memory, or in Redis (connected lazily, on first use).
    pub fn from_settings(
        settings: &RateLimitSettings,
        shared: &RedisSettings,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        if !settings.enabled {
            return Ok(Self(None));
        }
        let rates = rates(settings);
        let redis = match &shared.url {
            Some(url) => Some(redis::RedisLimits::new(
                url,
                shared.key_prefix.clone(),
                shared.timeout,
                rates,
            )?),
            None => None,
        };
        Ok(Self(Some(Arc::new(Inner {
            memory: memory::MemoryLimits::new(&rates, settings.memory_entries),
            redis,
            metrics: metrics.clone(),
        }))))
    }

    /// Spends one request of `action` from the client's budget and then, when given and the
    /// client's allowed it, the account's (case and surrounding spaces do not matter). Call it
    /// before any password work; `?` turns a refusal into 429 with `Retry-After`.
    ///
    /// Redis unreachable or slow: fails open to this instance's memory counts, with one `warn!`
    /// per outage, so a Redis outage neither stops logins nor lifts the limits.
    pub async fn check(&self, action: Action, client: &ClientIp, account: Option<&str>) -> Result<(), Throttled> {
        let Some(inner) = &self.0 else { return Ok(()) };
        let mut buckets = vec![Bucket::ip(action, client.0)];
        if let Some(account) = account {
            buckets.push(Bucket::account(action, account));
        }
        let wait = match &inner.redis {
            Some(redis) if redis.is_up() => match redis.check(&buckets).await {
                Ok(wait) => wait,
                Err(e) => {
                    redis.mark_down(&e);
                    inner.memory.check(&buckets)
                }
            },
            _ => inner.memory.check(&buckets),
        };
        match wait {
            Some((scope, retry_after)) => {
                tracing::info!(
                    action = action.name(),
                    scope = scope.name(),
                    retry_after_ms = retry_after.as_millis() as u64,
                    "rate limited"
                );
                inner.metrics.throttled(action.name(), scope.name());
                Err(Throttled { retry_after })
            }
            None => Ok(()),
        }
    }

    /// Forgets in-memory buckets that are full again, so memory stays bounded; call it now and then.
    pub fn retain_recent(&self) {
        if let Some(inner) = &self.0 {
            inner.memory.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn limiter(tweak: impl FnOnce(&mut RateLimitSettings)) -> RateLimiter {
        let mut settings = RateLimitSettings {
            login_per_account: Rate::new(2, Duration::from_secs(60)),
            login_per_ip: Rate::new(3, Duration::from_secs(60)),
            ..RateLimitSettings::default()
        };
        tweak(&mut settings);
        RateLimiter::from_settings(&settings, &RedisSettings::default(), &Metrics::default()).unwrap()
    }

    fn ip(s: &str) -> ClientIp {
        ClientIp(s.parse().unwrap())
    }

    #[tokio::test]
    async fn the_account_budget_ignores_case_and_spaces() {
        let limits = limiter(|_| {});
        let me = ip("192.0.2.1");
        assert!(limits.check(Action::Login, &me, Some("Alice")).await.is_ok());
        assert!(limits.check(Action::Login, &me, Some(" alice ")).await.is_ok());
        let refused = limits.check(Action::Login, &me, Some("ALICE")).await.unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(25) && refused.retry_after <= Duration::from_secs(30));
        // Another account from the same client still has its own budget, until the IP's runs out.
        assert!(limits.check(Action::Login, &ip("192.0.2.2"), Some("bob")).await.is_ok());
    }

    #[tokio::test]
    async fn the_ip_budget_spans_accounts_and_an_ipv6_64() {
        let limits = limiter(|_| {});
        for (n, name) in ["a", "b", "c"].iter().enumerate() {
            let client = ClientIp(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, n as u16)));
            assert!(limits.check(Action::Login, &client, Some(name)).await.is_ok());
        }
        let same_64 = ip("2001:db8:0:1:ffff::9");
        assert!(limits.check(Action::Login, &same_64, Some("d")).await.is_err());
        let other_64 = ip("2001:db8:0:2::1");
        assert!(limits.check(Action::Login, &other_64, Some("d")).await.is_ok());
        // Actions have separate budgets.
        assert!(limits.check(Action::Register, &same_64, Some("d")).await.is_ok());
    }

    #[tokio::test]
    async fn turned_off_it_never_refuses() {
        let limits = limiter(|s| s.enabled = false);
        for _ in 0..20 {
            assert!(limits.check(Action::Login, &ip("192.0.2.1"), Some("a")).await.is_ok());
        }
    }
}
