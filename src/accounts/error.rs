//! `AccountError`: why an account operation refused or failed, in the domain's terms. It knows
//! nothing of HTTP; `error.rs` maps each variant to its status and body, once.

use crate::{mail::MailError, providers::ProviderError, ratelimit::Throttled, store::StoreError, tokens::TokenError};

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// An input breaks a rule; `field` names the input (`non_field_errors`: the whole request).
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// A new password fails Django's validators: every problem, reported on `field`.
    #[error("{field}: the password is too weak")]
    WeakPassword { field: &'static str, problems: Vec<String> },
    /// A registration names an address that has an account (without `prevent_enumeration`).
    #[error("the address has an account")]
    EmailInUse,
    /// Wrong password, unknown user or disabled user: one answer for all three.
    #[error("wrong credentials")]
    InvalidCredentials,
    /// Mandatory email verification, and none of the user's addresses is verified.
    #[error("the email address is not verified")]
    EmailNotVerified,
    /// A disabled user tried to sign in with a provider.
    #[error("the user is disabled")]
    UserInactive,
    /// The site has no app for the provider (or the provider is not built in).
    #[error("the provider is not configured for this site")]
    ProviderNotConfigured,
    /// The social account is not one of the user's.
    #[error("no such social account of the user")]
    NoSuchSocialAccount,
    /// Disconnecting would leave the user no way to sign in.
    #[error("the last way to sign in")]
    LastLoginMethod,
    /// A provider's webhook came with a key no app of the provider has.
    #[error("the webhook's admin key is not an app's")]
    BadAdminKey,
    /// A provider's signed notification is not signed by the provider for one of our apps.
    #[error("the notification is not signed by the provider for this server")]
    UnsignedNotice,
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Throttled(#[from] Throttled),
    /// A password hash could not be computed: ours, no input explains it.
    #[error(transparent)]
    Hashing(#[from] crate::password::PasswordError),
}

impl AccountError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// `result` of a call to `provider`, its failure logged (`log_provider_failure`).
pub(super) fn logged<T>(provider: &str, result: Result<T, ProviderError>) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        log_provider_failure(provider, e);
    }
    result
}

/// Logs a provider's failure where it happened, with the provider's name: the client only
/// learns the status (502/504), an operator needs the reason.
pub(super) fn log_provider_failure(provider: &str, e: &ProviderError) {
    match e {
        ProviderError::Timeout => tracing::warn!(provider, "provider timed out"),
        ProviderError::Unavailable(reason) => tracing::warn!(provider, reason, "provider unavailable"),
        ProviderError::Misconfigured(reason) => tracing::error!(
            provider,
            reason,
            "the provider refused this server's app credentials: check the social app"
        ),
        // The client's credential: its own 400, nothing for an operator.
        ProviderError::InvalidToken
        | ProviderError::AppMismatch
        | ProviderError::CodeRejected(_)
        | ProviderError::IdTokenMismatch => {}
    }
}
