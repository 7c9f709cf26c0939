//! The signed-in user.

use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{ApiTags, CurrentUser, UserResponse};
use crate::error::ApiError;

pub struct AccountsApi;

#[derive(ApiResponse)]
pub enum GetUserResponse {
    /// The caller.
    #[oai(status = 200)]
    Ok(Json<UserResponse>),
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// The signed-in user
    ///
    /// dj-rest-auth `UserDetailsView` (GET).
    #[oai(path = "/rest-auth/user/", method = "get", operation_id = "get_current_user")]
    async fn get_current_user(&self, caller: CurrentUser) -> Result<GetUserResponse, ApiError> {
        Ok(GetUserResponse::Ok(Json(caller.user.into())))
    }
}
