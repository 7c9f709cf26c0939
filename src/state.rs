//! `AppState`: what every handler may use. Cheap to clone; put in the route's `.data()`.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    config::Settings, mail::Mailer, providers::Providers, ratelimit::RateLimiter, store::cache::Cached, tokens::Tokens,
};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Users, sites and social apps as read at most `cache_ttl` ago: for the per-request reads.
    pub cached: Cached,
    pub settings: Arc<Settings>,
    pub providers: Providers,
    pub tokens: Tokens,
    pub mailer: Mailer,
    /// Login, registration and password-reset budgets: `state.limits.check(…).await?` first.
    pub limits: RateLimiter,
}
