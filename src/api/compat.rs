//! The token endpoints of the other Django packages, each with its own response shape:
//! simplejwt's `/api/token/…`, djangorestframework-jwt's `/api-jwt-auth/…` and DRF's
//! `/api-token-auth/`. They share the handlers' logic in `tokens`.

use std::fmt;

use chrono::Utc;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    ApiTags, Body,
    tokens::{EmptyReply, EmptyResponse, RefreshRequest, VerifyTokenRequest, refresh_audited, verify_any},
};
use crate::{
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    ratelimit::ClientIp,
    state::AppState,
    tokens::{TokenError, TokenType},
};

pub struct CompatApi;

/// Username (or email) and password.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct CredentialsRequest {
    /// Username; an email address also works.
    pub username: Option<String>,
    /// Email, when no username is sent.
    pub email: Option<String>,
    #[oai(validator(max_length = 4096))]
    pub password: String,
}

impl fmt::Debug for CredentialsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialsRequest")
            .field("username", &self.username)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl CredentialsRequest {
    /// The login name and password; a missing name is a 400 naming `username`.
    fn parts(self) -> Result<(String, SecretString), ApiError> {
        let login = self.username.or(self.email).filter(|l| !l.trim().is_empty());
        let login = login.ok_or_else(|| ApiError::field(code::INVALID, "username", "This field is required."))?;
        Ok((login, SecretString::from(self.password)))
    }
}

/// simplejwt's pair.
#[derive(Debug, Object)]
pub struct TokenPair {
    pub access: String,
    pub refresh: String,
}

/// simplejwt's refresh answer: `refresh` only with rotation on.
#[derive(Debug, Object)]
pub struct SimpleRefreshResponse {
    pub access: String,
    #[oai(skip_serializing_if_is_none)]
    pub refresh: Option<String>,
}

/// djangorestframework-jwt's and DRF's `{"token": …}`.
#[derive(Debug, Object, Deserialize)]
pub struct TokenBody {
    pub token: String,
}

#[derive(ApiResponse)]
pub enum PairReply {
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum SimpleRefreshReply {
    #[oai(status = 200)]
    Ok(Json<SimpleRefreshResponse>),
}

#[derive(ApiResponse)]
pub enum TokenReply {
    #[oai(status = 200)]
    Ok(Json<TokenBody>),
}

/// djangorestframework-jwt's and DRF's wording for bad credentials.
fn unable_to_log_in() -> ApiError {
    ApiError::field(
        code::INVALID_CREDENTIALS,
        "non_field_errors",
        "Unable to log in with provided credentials.",
    )
}

/// djangorestframework-jwt's errors: 400 with its messages.
fn drf_jwt_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::field(code::TOKEN_NOT_VALID, "non_field_errors", "Signature has expired."),
        TokenError::Invalid | TokenError::WrongType | TokenError::Revoked | TokenError::ReuseDetected { .. } => {
            ApiError::field(code::TOKEN_NOT_VALID, "non_field_errors", "Error decoding signature.")
        }
        other => other.into(),
    }
}

fn token_reply(token: String) -> TokenReply {
    TokenReply::Ok(Json(TokenBody { token }))
}

async fn password_login(
    state: &AppState,
    client: ClientIp,
    origin: Origin,
    body: CredentialsRequest,
) -> Result<Option<entity::user::Model>, ApiError> {
    let (login, password) = body.parts()?;
    Ok(state.accounts.authenticate(&client, &origin, &login, &password).await?)
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl CompatApi {
    /// Obtain a token pair (simplejwt)
    ///
    /// simplejwt `TokenObtainPairView`: username (or email) + password → `{access, refresh}`.
    #[oai(path = "/api/token/", method = "post", operation_id = "simplejwt_obtain_pair")]
    async fn obtain_pair(
        &self,
        state: poem::web::Data<&AppState>,
        client: ClientIp,
        origin: Origin,
        body: Body<CredentialsRequest>,
    ) -> Result<PairReply, ApiError> {
        let user = password_login(&state, client, origin, body.into_inner())
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    code::NO_ACTIVE_ACCOUNT,
                    "No active account found with the given credentials",
                )
            })?;
        let pair = state.tokens.start_session(&user).await?;
        Ok(PairReply::Ok(Json(TokenPair {
            access: pair.access,
            refresh: pair.refresh,
        })))
    }

    /// Refresh (simplejwt)
    ///
    /// simplejwt `TokenRefreshView`: the same rotation and reuse rules as `/rest-auth/token/refresh/`.
    #[oai(path = "/api/token/refresh/", method = "post", operation_id = "simplejwt_refresh")]
    async fn refresh(
        &self,
        state: poem::web::Data<&AppState>,
        origin: Origin,
        body: Body<RefreshRequest>,
    ) -> Result<SimpleRefreshReply, ApiError> {
        let refreshed = refresh_audited(&state, &origin, &body.into_inner().refresh).await?;
        let refresh = refreshed.refresh.map(|(token, _)| token);
        Ok(SimpleRefreshReply::Ok(Json(SimpleRefreshResponse {
            access: refreshed.access,
            refresh,
        })))
    }

    /// Verify (simplejwt)
    #[oai(path = "/api/token/verify/", method = "post", operation_id = "simplejwt_verify")]
    async fn verify(
        &self,
        state: poem::web::Data<&AppState>,
        body: Body<VerifyTokenRequest>,
    ) -> Result<EmptyReply, ApiError> {
        verify_any(&state, &body.into_inner().token).await?;
        Ok(EmptyReply::Ok(Json(EmptyResponse {})))
    }

    /// Blacklist a refresh token (simplejwt)
    ///
    /// simplejwt `TokenBlacklistView`.
    #[oai(
        path = "/api/token/blacklist/",
        method = "post",
        operation_id = "simplejwt_blacklist"
    )]
    async fn blacklist(
        &self,
        state: poem::web::Data<&AppState>,
        origin: Origin,
        body: Body<RefreshRequest>,
    ) -> Result<EmptyReply, ApiError> {
        let user_id = state.tokens.blacklist(&body.into_inner().refresh).await?;
        state
            .audit
            .record(&origin, Entry::new(event::LOGOUT).user(user_id).method("refresh"));
        Ok(EmptyReply::Ok(Json(EmptyResponse {})))
    }

    /// Obtain a token (djangorestframework-jwt)
    ///
    /// `obtain_jwt_token`: username + password → `{"token": <access JWT>}`.
    #[oai(path = "/api-jwt-auth/", method = "post", operation_id = "drf_jwt_obtain")]
    async fn jwt_obtain(
        &self,
        state: poem::web::Data<&AppState>,
        client: ClientIp,
        origin: Origin,
        body: Body<CredentialsRequest>,
    ) -> Result<TokenReply, ApiError> {
        let user = password_login(&state, client, origin, body.into_inner())
            .await?
            .ok_or_else(unable_to_log_in)?;
        Ok(token_reply(state.tokens.issue_drf_jwt(&user).await?))
    }

    /// Refresh a token (djangorestframework-jwt)
    ///
    /// `refresh_jwt_token`: a still valid token → a new one, until the refresh lifetime has
    /// passed since the first one (`orig_iat`); then 400 "Refresh has expired.".
    #[oai(path = "/api-jwt-auth/refresh/", method = "post", operation_id = "drf_jwt_refresh")]
    async fn jwt_refresh(
        &self,
        state: poem::web::Data<&AppState>,
        body: Body<TokenBody>,
    ) -> Result<TokenReply, ApiError> {
        let old = state
            .tokens
            .verify(&body.into_inner().token, TokenType::Access)
            .await
            .map_err(drf_jwt_error)?;
        // Revoked as every token is: the user's revocation point, a disabled user, and the
        // session ended by logout or reuse detection. The new `iat` is read before the check.
        let now = Utc::now();
        state.tokens.ensure_usable(&old).await.map_err(drf_jwt_error)?;
        state.tokens.ensure_session_live(&old).await.map_err(drf_jwt_error)?;
        let orig_iat = old.orig_iat.unwrap_or(old.iat);
        if now.timestamp() > orig_iat.saturating_add(state.tokens.refresh_lifetime_secs()) {
            return Err(ApiError::field(
                code::TOKEN_NOT_VALID,
                "non_field_errors",
                "Refresh has expired.",
            ));
        }
        Ok(token_reply(state.tokens.renew_drf_jwt(&old, now)?))
    }

    /// Verify a token (djangorestframework-jwt)
    ///
    /// `verify_jwt_token`: echoes the token when valid; 400 "Signature has expired." when not.
    #[oai(path = "/api-jwt-auth/verify/", method = "post", operation_id = "drf_jwt_verify")]
    async fn jwt_verify(
        &self,
        state: poem::web::Data<&AppState>,
        body: Body<TokenBody>,
    ) -> Result<TokenReply, ApiError> {
        let token = body.into_inner().token;
        let claims = state
            .tokens
            .verify(&token, TokenType::Access)
            .await
            .map_err(drf_jwt_error)?;
        state.tokens.ensure_usable(&claims).await.map_err(drf_jwt_error)?;
        Ok(token_reply(token))
    }

    /// Obtain an opaque token (DRF)
    ///
    /// DRF `obtain_auth_token`: username + password → `{"token": <40 hex>}`, used as
    /// `Authorization: Token <key>`. Each call makes a new key (only hashes are stored, so an
    /// old key cannot be handed out again).
    #[oai(path = "/api-token-auth/", method = "post", operation_id = "drf_obtain_auth_token")]
    async fn obtain_auth_token(
        &self,
        state: poem::web::Data<&AppState>,
        client: ClientIp,
        origin: Origin,
        body: Body<CredentialsRequest>,
    ) -> Result<TokenReply, ApiError> {
        let user = password_login(&state, client, origin, body.into_inner())
            .await?
            .ok_or_else(unable_to_log_in)?;
        Ok(token_reply(state.tokens.create_opaque(&user, false).await?))
    }
}

impl poem_openapi::types::Example for CredentialsRequest {
    fn example() -> Self {
        Self {
            username: Some("alice".into()),
            email: None,
            password: "correct horse battery".into(),
        }
    }
}
