//! The signed-in user: read, delete (with the provider unlink), export.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{ApiTags, Body, CurrentUser, MaybeBody, UserResponse, body::not_null, social::rfc3339};
use crate::{
    accounts::{Actor, ProfileChange, UserRecord},
    audit::Origin,
    error::{ApiError, code},
    ratelimit::ClientIp,
    state::AppState,
};

pub struct AccountsApi;

#[derive(ApiResponse)]
pub enum GetUserReply {
    /// The caller.
    #[oai(status = 200)]
    Ok(Json<UserResponse>),
}

/// Editable fields; `pk` and `email` are read-only and ignored.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct UpdateUserRequest {
    /// Letters, digits and `@.+-_`, at most 150 characters; unique.
    #[oai(validator(min_length = 1, max_length = 150))]
    #[serde(default, deserialize_with = "not_null")]
    pub username: Option<String>,
    /// At most 150 characters.
    #[oai(validator(max_length = 150))]
    #[serde(default, deserialize_with = "not_null")]
    pub first_name: Option<String>,
    /// At most 150 characters.
    #[oai(validator(max_length = 150))]
    #[serde(default, deserialize_with = "not_null")]
    pub last_name: Option<String>,
}

#[derive(Object, Deserialize)]
pub struct DeleteAccountRequest {
    /// The current password; without it, a sign-in within the last 10 minutes is needed.
    #[serde(default, deserialize_with = "not_null")]
    pub password: Option<String>,
}

#[derive(ApiResponse)]
pub enum DeleteAccountReply {
    /// Deleted, and unlinked at every provider.
    #[oai(status = 204)]
    Deleted,
}

/// Everything stored about the caller.
#[derive(Debug, Object)]
pub struct UserExport {
    pub user: ExportedUser,
    pub email_addresses: Vec<ExportedEmail>,
    pub social_accounts: Vec<ExportedSocialAccount>,
    /// Refresh tokens spent (rotated) or blacklisted, identified by `jti`: a token never used has
    /// no row (the tokens themselves are never stored).
    pub sessions: Vec<ExportedSession>,
    /// Opaque keys (stored as hashes only; creation times).
    pub opaque_tokens_created: Vec<String>,
}

#[derive(Debug, Object)]
pub struct ExportedUser {
    pub pk: i32,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub date_joined: String,
    #[oai(skip_serializing_if_is_none)]
    pub last_login: Option<String>,
    /// Whether a password is set (its hash is not exported).
    pub has_password: bool,
}

#[derive(Debug, Object)]
pub struct ExportedEmail {
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

#[derive(Debug, Object)]
pub struct ExportedSocialAccount {
    pub provider: String,
    pub uid: String,
    /// What the provider said about the account at the last login.
    pub extra_data: serde_json::Value,
    pub date_joined: String,
    pub last_login: String,
}

#[derive(Debug, Object)]
pub struct ExportedSession {
    pub jti: String,
    pub issued_at: String,
    pub expires_at: String,
    #[oai(skip_serializing_if_is_none)]
    pub rotated_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<String>,
}

#[derive(ApiResponse)]
pub enum ExportReply {
    #[oai(status = 200)]
    Ok(Json<UserExport>),
}

fn opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(rfc3339)
}

async fn update_user(
    state: &AppState,
    caller: &CurrentUser,
    body: UpdateUserRequest,
) -> Result<GetUserReply, ApiError> {
    let change = ProfileChange {
        username: body.username,
        first_name: body.first_name,
        last_name: body.last_name,
    };
    let updated = state.accounts.update_profile(caller.user.id, change).await?;
    Ok(GetUserReply::Ok(Json(updated.into())))
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// The signed-in user
    ///
    /// dj-rest-auth `UserDetailsView` (GET).
    #[oai(path = "/rest-auth/user/", method = "get", operation_id = "get_current_user")]
    async fn get_current_user(&self, caller: CurrentUser) -> Result<GetUserReply, ApiError> {
        Ok(GetUserReply::Ok(Json(caller.user.into())))
    }

    /// Replace the signed-in user's details
    ///
    /// dj-rest-auth `UserDetailsView` (PUT): `username` is required; `pk` and `email` are read-only.
    #[oai(path = "/rest-auth/user/", method = "put", operation_id = "replace_current_user")]
    async fn replace_current_user(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        body: Body<UpdateUserRequest>,
    ) -> Result<GetUserReply, ApiError> {
        let body = body.into_inner();
        if body.username.is_none() {
            return Err(ApiError::field(code::INVALID, "username", "This field is required."));
        }
        update_user(&state, &caller, body).await
    }

    /// Update some of the signed-in user's details
    ///
    /// dj-rest-auth `UserDetailsView` (PATCH).
    #[oai(path = "/rest-auth/user/", method = "patch", operation_id = "update_current_user")]
    async fn update_current_user(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        body: Body<UpdateUserRequest>,
    ) -> Result<GetUserReply, ApiError> {
        update_user(&state, &caller, body.into_inner()).await
    }

    /// Delete the signed-in user's account
    ///
    /// Needs the current password, or a sign-in (`auth_time`) within the reauthentication window
    /// (10 minutes by default); else 403 `reauthentication_required`.
    /// Every linked Kakao account is first unlinked at Kakao with the app's admin key; if Kakao
    /// cannot be reached the request fails with 502 and nothing is deleted (retry later). Then the
    /// user, its social accounts, email addresses and tokens are deleted.
    #[oai(path = "/rest-auth/user/", method = "delete", operation_id = "delete_current_user")]
    async fn delete_current_user(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        client: ClientIp,
        origin: Origin,
        body: MaybeBody<DeleteAccountRequest>,
    ) -> Result<DeleteAccountReply, ApiError> {
        caller.step_up(&state, &client, body.0.and_then(|b| b.password)).await?;
        state.accounts.delete(&origin, Actor::Owner, caller.user.id).await?;
        Ok(DeleteAccountReply::Deleted)
    }

    /// Everything stored about the signed-in user
    #[oai(
        path = "/rest-auth/user/export/",
        method = "get",
        operation_id = "export_current_user"
    )]
    async fn export(&self, state: poem::web::Data<&AppState>, caller: CurrentUser) -> Result<ExportReply, ApiError> {
        let u = &caller.user;
        let UserRecord {
            emails,
            social_accounts: accounts,
            sessions,
            opaque_tokens: opaque,
        } = state.accounts.record_of(u.id).await?;
        Ok(ExportReply::Ok(Json(UserExport {
            user: ExportedUser {
                pk: u.id,
                username: u.username.clone(),
                email: u.email.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                is_active: u.is_active,
                is_staff: u.is_staff,
                date_joined: rfc3339(u.date_joined),
                last_login: opt(u.last_login),
                has_password: !u.password.starts_with('!'),
            },
            email_addresses: emails
                .into_iter()
                .map(|e| ExportedEmail {
                    email: e.email,
                    verified: e.verified,
                    primary: e.primary,
                })
                .collect(),
            social_accounts: accounts
                .into_iter()
                .map(|a| ExportedSocialAccount {
                    provider: a.provider,
                    uid: a.uid,
                    extra_data: a.extra_data,
                    date_joined: rfc3339(a.date_joined),
                    last_login: rfc3339(a.last_login),
                })
                .collect(),
            sessions: sessions
                .into_iter()
                .map(|s| ExportedSession {
                    jti: s.jti,
                    issued_at: rfc3339(s.issued_at),
                    expires_at: rfc3339(s.expires_at),
                    rotated_at: opt(s.rotated_at),
                    revoked_at: opt(s.revoked_at),
                })
                .collect(),
            opaque_tokens_created: opaque.into_iter().map(|t| rfc3339(t.created_at)).collect(),
        })))
    }
}

impl poem_openapi::types::Example for UpdateUserRequest {
    fn example() -> Self {
        Self {
            username: None,
            first_name: Some("Alice".into()),
            last_name: Some("Kim".into()),
        }
    }
}
