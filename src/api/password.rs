//! dj-rest-auth's password endpoints: change, reset by mail, reset confirm. Each revokes the
//! user's refresh tokens and opaque keys.

use poem_openapi::{Object, OpenApi};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    ApiTags, Body, CurrentUser,
    tokens::{DetailReply, detail},
};
use crate::{
    accounts,
    error::{ApiError, code},
    ratelimit::{Action, ClientIp},
    state::AppState,
};

pub struct PasswordApi;

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct PasswordChangeRequest {
    /// Required when the account has a password.
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
    /// dj-rest-auth `PasswordChangeView` with `OLD_PASSWORD_FIELD_ENABLED`.
    #[oai(
        path = "/rest-auth/password/change/",
        method = "post",
        operation_id = "change_password"
    )]
    async fn change(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        body: Body<PasswordChangeRequest>,
    ) -> Result<DetailReply, ApiError> {
        let body = body.into_inner();
        let user = caller.fresh(&state).await?;
        if !user.password.starts_with('!') {
            let old = body.old_password.unwrap_or_default();
            if !crate::password::verify(Some(&user.password), &SecretString::from(old)).await {
                return Err(ApiError::field(
                    code::INVALID,
                    "old_password",
                    "Your old password was entered incorrectly. Please enter it again.",
                ));
            }
        }
        accounts::check_new_password(
            &body.new_password1,
            &body.new_password2,
            &[&user.username, &user.email],
            accounts::NEW_PASSWORD_FIELDS,
        )?;
        accounts::set_password(&state, user.id, &SecretString::from(body.new_password1)).await?;
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
        state
            .limits
            .check(Action::PasswordReset, &client, Some(email.trim()))
            .await?;
        accounts::send_password_reset(&state, email.trim())?;
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
        body: Body<PasswordResetConfirmRequest>,
    ) -> Result<DetailReply, ApiError> {
        let body = body.into_inner();
        accounts::check_new_password(
            &body.new_password1,
            &body.new_password2,
            &[],
            accounts::NEW_PASSWORD_FIELDS,
        )?;
        if !accounts::reset_password(
            &state,
            &body.uid,
            body.token.trim(),
            &SecretString::from(body.new_password1),
        )
        .await?
        {
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
