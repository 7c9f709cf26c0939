//! Token verification and the public key set.

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{ApiTags, Body};
use crate::{error::ApiError, state::AppState, tokens::TokenType};

pub struct TokensApi;

#[derive(Object, Deserialize)]
pub struct VerifyTokenRequest {
    /// An access or refresh JWT issued by this server.
    pub token: String,
}

/// An empty object, as simplejwt answers.
#[derive(Debug, Object)]
pub struct EmptyResponse {}

#[derive(ApiResponse)]
pub enum VerifyTokenResponse {
    /// The token is valid.
    #[oai(status = 200)]
    Ok(Json<EmptyResponse>),
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Check a token
    ///
    /// simplejwt `TokenVerifyView`: 200 `{}` when the signature, key, expiry and type check out,
    /// else 401 `token_not_valid`.
    #[oai(path = "/rest-auth/token/verify/", method = "post", operation_id = "verify_token")]
    async fn verify_token(
        &self,
        state: poem::web::Data<&AppState>,
        body: Body<VerifyTokenRequest>,
    ) -> Result<VerifyTokenResponse, ApiError> {
        let token = body.into_inner().token;
        // simplejwt verifies either kind here.
        match state.tokens.verify(&token, TokenType::Access).await {
            Err(crate::tokens::TokenError::WrongType) => {
                state.tokens.verify(&token, TokenType::Refresh).await?;
            }
            other => {
                other?;
            }
        }
        Ok(VerifyTokenResponse::Ok(Json(EmptyResponse {})))
    }
}
