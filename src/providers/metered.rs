//! A provider wrapped so that every call is timed and counted by outcome (`/metrics`); the
//! wrapped provider does not know it is watched.

use std::{sync::Arc, time::Instant};

use secrecy::SecretString;

use super::SocialApp;
use super::{CodeGrant, KeptToken, Provider, ProviderError, ProviderTokens, ProviderUser};
use crate::metrics::Metrics;

pub(super) struct Metered {
    pub(super) inner: Arc<dyn Provider>,
    pub(super) metrics: Metrics,
}

impl Metered {
    fn record<T>(&self, endpoint: &'static str, started: Instant, result: &Result<T, ProviderError>) {
        self.metrics
            .provider_call(self.inner.id(), endpoint, outcome(result), started.elapsed());
    }
}

/// A label per `ProviderError` variant, without its text (which may quote the provider).
fn outcome<T>(result: &Result<T, ProviderError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(ProviderError::InvalidToken) => "invalid_token",
        Err(ProviderError::AppMismatch) => "app_mismatch",
        Err(ProviderError::Timeout) => "timeout",
        Err(ProviderError::Unavailable(_)) => "unavailable",
        Err(ProviderError::CodeRejected(_)) => "code_rejected",
        Err(ProviderError::Misconfigured(_)) => "misconfigured",
        Err(ProviderError::IdTokenMismatch) => "id_token_mismatch",
    }
}

#[async_trait::async_trait]
impl Provider for Metered {
    fn id(&self) -> &'static str {
        self.inner.id()
    }

    async fn verify_access_token(&self, app: &SocialApp, token: &SecretString) -> Result<ProviderUser, ProviderError> {
        let started = Instant::now();
        let result = self.inner.verify_access_token(app, token).await;
        self.record("access_token", started, &result);
        result
    }

    async fn exchange_code(&self, app: &SocialApp, grant: &CodeGrant) -> Result<ProviderTokens, ProviderError> {
        let started = Instant::now();
        let result = self.inner.exchange_code(app, grant).await;
        self.record("code", started, &result);
        result
    }

    async fn unlink(&self, app: &SocialApp, uid: &str, kept: Option<&KeptToken>) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.unlink(app, uid, kept).await;
        self.record("unlink", started, &result);
        result
    }

    fn can_unlink(&self, app: &SocialApp) -> bool {
        self.inner.can_unlink(app)
    }

    async fn revoke(&self, app: &SocialApp, kept: &KeptToken) -> Result<(), ProviderError> {
        let started = Instant::now();
        let result = self.inner.revoke(app, kept).await;
        self.record("revoke", started, &result);
        result
    }

    // The login hooks are forwarded whole (a provider may override them); the calls they make
    // inside the wrapped provider are timed as one.
    async fn login_with_access_token(
        &self,
        app: &SocialApp,
        token: &SecretString,
        id_token: Option<&SecretString>,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let started = Instant::now();
        let result = self.inner.login_with_access_token(app, token, id_token, nonce).await;
        self.record("access_token", started, &result);
        result
    }

    async fn login_with_code(
        &self,
        app: &SocialApp,
        grant: &CodeGrant,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let started = Instant::now();
        let result = self.inner.login_with_code(app, grant, nonce).await;
        self.record("code", started, &result);
        result
    }

    async fn verify_id_token(
        &self,
        app: &SocialApp,
        id_token: &SecretString,
        nonce: Option<&str>,
    ) -> Result<ProviderUser, ProviderError> {
        let started = Instant::now();
        let result = self.inner.verify_id_token(app, id_token, nonce).await;
        self.record("id_token", started, &result);
        result
    }
}
