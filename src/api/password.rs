//! dj-rest-auth's password endpoints: change, reset by mail, reset confirm. Each revokes the
//! user's refresh tokens and opaque keys.

use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::{
    ApiTags, Body, CurrentUser,
    step_up::password_matches,
    tokens::{DetailReply, detail},
};
use crate::{
    accounts::NewPassword,
    audit::Origin,
    error::{ApiError, code},
    ratelimit::ClientIp,
    state::AppState,
};

pub struct PasswordApi;

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct PasswordChangeRequest {
    /// Required when the account has a password. Without one, a sign-in within the last 10
    /// minutes is needed to set a first password.
    pub old_password: Option<String>,
    pub new_password1: String,
    pub new_password2: String,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct PasswordResetRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct PasswordResetConfirmRequest {
    /// From the reset link.
    pub uid: String,
    /// From the reset link.
    pub token: String,
    pub new_password1: String,
    pub new_password2: String,
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl PasswordApi {
    /// Change the password
    ///
    /// dj-rest-auth `PasswordChangeView` with `OLD_PASSWORD_FIELD_ENABLED`. The old password is
    /// limited like a login. An account without a password (social sign-in only) may set a first
    /// one only within 10 minutes of signing in; else 403 `reauthentication_required`. Every
    /// token of the user is revoked.
    #[oai(
        path = "/rest-auth/password/change/",
        method = "post",
        operation_id = "change_password"
    )]
    async fn change(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        client: ClientIp,
        origin: Origin,
        body: Body<PasswordChangeRequest>,
    ) -> Result<DetailReply, ApiError> {
        let body = body.into_inner();
        let user = caller.fresh(&state).await?;
        if !user.password.starts_with('!') {
            let old = body.old_password.unwrap_or_default();
            if !password_matches(&state, &client, &user, old).await? {
                return Err(ApiError::field(
                    code::INVALID,
                    "old_password",
                    "Your old password was entered incorrectly. Please enter it again.",
                ));
            }
        } else if !caller.signed_in_recently(&state) {
            // A first password is a new way to sign in: a stolen access token must not set one.
            return Err(ApiError::forbidden(
                code::REAUTHENTICATION_REQUIRED,
                "Sign in again, then set a password within a few minutes.",
            ));
        }
        let new = NewPassword {
            password1: body.new_password1,
            password2: body.new_password2,
        };
        state.accounts.change_password(&origin, &user, new).await?;
        Ok(detail("New password has been saved."))
    }

    /// Ask for a password-reset mail
    ///
    /// dj-rest-auth `PasswordResetView`: 200 whether or not the address is registered.
    #[oai(
        path = "/rest-auth/password/reset/",
        method = "post",
        operation_id = "reset_password"
    )]
    async fn reset(
        &self,
        state: poem::web::Data<&AppState>,
        client: ClientIp,
        body: Body<PasswordResetRequest>,
    ) -> Result<DetailReply, ApiError> {
        let email = body.into_inner().email;
        state.accounts.send_password_reset(&client, email.trim()).await?;
        Ok(detail("Password reset e-mail has been sent."))
    }

    /// Set a new password from a reset link
    ///
    /// dj-rest-auth `PasswordResetConfirmView`: the link works once and expires.
    #[oai(
        path = "/rest-auth/password/reset/confirm/",
        method = "post",
        operation_id = "reset_password_confirm"
    )]
    async fn confirm(
        &self,
        state: poem::web::Data<&AppState>,
        origin: Origin,
        body: Body<PasswordResetConfirmRequest>,
    ) -> Result<DetailReply, ApiError> {
        let body = body.into_inner();
        let new = NewPassword {
            password1: body.new_password1,
            password2: body.new_password2,
        };
        let reset = state
            .accounts
            .reset_password(&origin, &body.uid, body.token.trim(), new);
        if reset.await?.is_none() {
            return Err(ApiError::field(code::INVALID, "token", "Invalid value"));
        }
        Ok(detail("Password has been reset with the new password."))
    }
}

impl poem_openapi::types::Example for PasswordChangeRequest {
    fn example() -> Self {
        Self {
            old_password: Some("old secret phrase".into()),
            new_password1: "new secret phrase".into(),
            new_password2: "new secret phrase".into(),
        }
    }
}

impl poem_openapi::types::Example for PasswordResetRequest {
    fn example() -> Self {
        Self {
            email: "alice@example.com".into(),
        }
    }
}

impl poem_openapi::types::Example for PasswordResetConfirmRequest {
    fn example() -> Self {
        Self {
            uid: "Nw".into(),
            token: "<token from the mail>".into(),
            new_password1: "new secret phrase".into(),
            new_password2: "new secret phrase".into(),
        }
    }
}
