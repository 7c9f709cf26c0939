//! Step-up: what changes how one signs in (deleting the account, setting a first password,
//! connecting or disconnecting a provider account) needs proof that the caller is the user now,
//! not only a session: the current password where there is one, or a sign-in (`auth_time`)
//! within `reauthentication_window`. A stolen access token has neither.

use std::fmt;

use chrono::Utc;
use poem_openapi::Object;
use secrecy::SecretString;
use serde::Deserialize;

use super::{CurrentUser, Presented, body::not_null, social::SocialLoginRequest};
use crate::{
    error::{ApiError, code},
    ratelimit::{Action, ClientIp},
    state::AppState,
};

/// The current password, as step-up proof; not needed within 10 minutes of a sign-in.
#[derive(Object, Deserialize)]
pub struct CurrentPasswordRequest {
    /// The current password; without it, a sign-in within the last 10 minutes is needed.
    #[serde(default, deserialize_with = "not_null")]
    pub password: Option<String>,
}

impl fmt::Debug for CurrentPasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentPasswordRequest").finish_non_exhaustive()
    }
}

/// The same credentials as a login, and the current password when the sign-in is not recent.
#[derive(Object, Deserialize)]
pub struct ConnectRequest {
    #[oai(flatten)]
    #[serde(flatten)]
    pub credential: SocialLoginRequest,
    /// The current password; without it, a sign-in within the last 10 minutes is needed.
    #[oai(skip_serializing_if_is_none)]
    pub password: Option<String>,
}

impl fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

impl CurrentUser {
    /// Whether the caller signed in (password, provider) within the reauthentication window.
    /// Opaque keys and tokens without `auth_time` (made by simplejwt) never count as recent.
    pub fn signed_in_recently(&self, state: &AppState) -> bool {
        let window = i64::try_from(state.settings.auth.reauthentication_window.as_secs()).unwrap_or(i64::MAX);
        matches!(&self.credential, Presented::Jwt(claims)
            if claims.auth_time.is_some_and(|t| Utc::now().timestamp().saturating_sub(t) <= window))
    }

    /// The caller proves it is them now: `password` when sent (checked, and limited as a login),
    /// else a recent sign-in; otherwise 403 `reauthentication_required`.
    pub async fn step_up(&self, state: &AppState, client: &ClientIp, password: Option<String>) -> Result<(), ApiError> {
        let user = self.fresh(state).await?;
        let has_password = !user.password.starts_with('!');
        match password.filter(|p| !p.is_empty()) {
            Some(password) if has_password => check_current_password(state, client, &user, password).await,
            _ if self.signed_in_recently(state) => Ok(()),
            _ => Err(ApiError::forbidden(
                code::REAUTHENTICATION_REQUIRED,
                if has_password {
                    "Send your current password, or sign in again and retry within a few minutes."
                } else {
                    "Sign in again, then retry within a few minutes."
                },
            )),
        }
    }
}

/// Checks the current password of `user`. Wrong → 400 `invalid_credentials` on `password`.
async fn check_current_password(
    state: &AppState,
    client: &ClientIp,
    user: &entity::user::Model,
    password: String,
) -> Result<(), ApiError> {
    if password_matches(state, client, user, password).await? {
        return Ok(());
    }
    Err(ApiError::field(
        code::INVALID_CREDENTIALS,
        "password",
        "Invalid password.",
    ))
}

/// Whether `password` is the user's, drawing on the login budgets first: a stolen session must
/// not become a password oracle.
pub async fn password_matches(
    state: &AppState,
    client: &ClientIp,
    user: &entity::user::Model,
    password: String,
) -> Result<bool, ApiError> {
    state.limits.check(Action::Login, client, Some(&user.username)).await?;
    Ok(crate::password::verify(Some(&user.password), &SecretString::from(password)).await)
}
