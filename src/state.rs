//! `AppState`: what every handler may use. Cheap to clone; put in the route's `.data()`.

use std::{ops::Deref, sync::Arc};

use sea_orm::DatabaseConnection;

use crate::{
    config::Settings, metrics::Metrics, providers::Providers, ratelimit::RateLimiter, store::cache::Cached,
    tokens::Tokens,
};

/// One pointer to the shared parts. The route's `.data()` clones the state into every request:
/// cloning the parts themselves was ~20 reference-count updates (cache lines bouncing between
/// the cores) and two `String` copies per request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    /// The domain: logins, registration, passwords, links, deletion (`state.accounts.…`).
    pub accounts: crate::accounts::Accounts,
    pub db: DatabaseConnection,
    /// Users, sites and social apps as read at most `cache_ttl` ago: for the per-request reads.
    pub cached: Cached,
    pub settings: Arc<Settings>,
    pub providers: Providers,
    pub tokens: Tokens,
    /// Login, registration, password-reset and introspection budgets: `state.limits.check(…).await?` first.
    pub limits: RateLimiter,
    /// The security trail: `state.audit.record(&origin, Entry::new(…))` queues, never waits.
    pub audit: crate::audit::Audit,
    /// Counters and histograms served at `/metrics` (a no-op when metrics are off).
    pub metrics: Metrics,
}
