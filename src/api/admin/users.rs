//! Admin: users (list, search, detail with linked accounts, disable/enable, revoke sessions, delete).

use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{DoneResponse, paging, staff};
use crate::{
    accounts::{Actor, UserDetail},
    api::{ApiTags, CurrentUser, social::rfc3339, social_accounts::SocialAccountResponse},
    audit::Origin,
    error::ApiError,
    state::AppState,
};

pub struct AdminUsersApi;

/// A user as the admin sees it (never the password hash).
#[derive(Debug, Object)]
pub struct AdminUserResponse {
    pub pk: i32,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub has_password: bool,
    pub date_joined: String,
    #[oai(skip_serializing_if_is_none)]
    pub last_login: Option<String>,
}

impl From<entity::user::Model> for AdminUserResponse {
    fn from(u: entity::user::Model) -> Self {
        Self {
            pk: u.id,
            has_password: !u.password.starts_with('!'),
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            is_active: u.is_active,
            is_staff: u.is_staff,
            date_joined: rfc3339(u.date_joined),
            last_login: u.last_login.map(rfc3339),
        }
    }
}

/// One page of users.
#[derive(Debug, Object)]
pub struct AdminUserPageResponse {
    /// How many users match in all.
    pub count: u64,
    pub results: Vec<AdminUserResponse>,
}

#[derive(Debug, Object)]
pub struct AdminUserDetailResponse {
    pub user: AdminUserResponse,
    pub social_accounts: Vec<SocialAccountResponse>,
}

#[derive(ApiResponse)]
pub enum AdminUserPageReply {
    #[oai(status = 200)]
    Ok(Json<AdminUserPageResponse>),
}

#[derive(ApiResponse)]
pub enum AdminUserDetailReply {
    #[oai(status = 200)]
    Ok(Json<AdminUserDetailResponse>),
}

#[derive(ApiResponse)]
pub enum AdminDoneReply {
    #[oai(status = 200)]
    Ok(Json<DoneResponse>),
}

fn done(detail: &str) -> AdminDoneReply {
    AdminDoneReply::Ok(Json(DoneResponse { detail: detail.into() }))
}

#[OpenApi(tag = "ApiTags::Admin", prefix_path = "/admin/api")]
impl AdminUsersApi {
    /// List users
    ///
    /// Paged by id; `search` matches a part of the username or email (any case), or exactly a
    /// provider uid (a Kakao user id).
    #[oai(path = "/users/", method = "get", operation_id = "admin_list_users")]
    async fn list(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        search: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
        page: Query<Option<u64>>,
        /// Items a page (50 by default).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        page_size: Query<Option<u64>>,
    ) -> Result<AdminUserPageReply, ApiError> {
        staff(&caller)?;
        let (page, size) = paging(page.0, page_size.0);
        let (users, count) = state.accounts.page_users(search.0.as_deref(), page, size).await?;
        Ok(AdminUserPageReply::Ok(Json(AdminUserPageResponse {
            count,
            results: users.into_iter().map(Into::into).collect(),
        })))
    }

    /// A user with its linked provider accounts
    #[oai(path = "/users/:id/", method = "get", operation_id = "admin_get_user")]
    async fn detail(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        id: Path<i32>,
    ) -> Result<AdminUserDetailReply, ApiError> {
        staff(&caller)?;
        let UserDetail {
            user,
            social_accounts: accounts,
        } = state.accounts.user_detail(*id).await?;
        Ok(AdminUserDetailReply::Ok(Json(AdminUserDetailResponse {
            user: user.into(),
            social_accounts: accounts.into_iter().map(Into::into).collect(),
        })))
    }

    /// Disable a user
    ///
    /// As `authbridge user disable`: sign-ins are refused and every token of the user dies.
    #[oai(path = "/users/:id/disable/", method = "post", operation_id = "admin_disable_user")]
    async fn disable(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
    ) -> Result<AdminDoneReply, ApiError> {
        let admin = staff(&caller)?;
        state
            .accounts
            .set_active(&origin, Actor::Admin(admin), *id, false)
            .await?;
        Ok(done("User disabled; every token revoked."))
    }

    /// Enable a user
    #[oai(path = "/users/:id/enable/", method = "post", operation_id = "admin_enable_user")]
    async fn enable(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
    ) -> Result<AdminDoneReply, ApiError> {
        let admin = staff(&caller)?;
        state
            .accounts
            .set_active(&origin, Actor::Admin(admin), *id, true)
            .await?;
        Ok(done("User enabled."))
    }

    /// Revoke every session of a user
    ///
    /// As the user's own logout everywhere: every token and opaque key dies at once.
    #[oai(
        path = "/users/:id/revoke-sessions/",
        method = "post",
        operation_id = "admin_revoke_user_sessions"
    )]
    async fn revoke_sessions(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
    ) -> Result<AdminDoneReply, ApiError> {
        let admin = staff(&caller)?;
        state
            .accounts
            .revoke_sessions(&origin, Actor::Admin(admin), *id)
            .await?;
        Ok(done("Every session revoked."))
    }

    /// Delete a user
    ///
    /// As the user's own deletion: each linked account is first unlinked at its provider; if a
    /// provider cannot be reached → 502 and nothing is deleted.
    #[oai(path = "/users/:id/", method = "delete", operation_id = "admin_delete_user")]
    async fn delete(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
    ) -> Result<AdminDoneReply, ApiError> {
        let admin = staff(&caller)?;
        state.accounts.delete(&origin, Actor::Admin(admin), *id).await?;
        Ok(done("User deleted and unlinked at its providers."))
    }
}
