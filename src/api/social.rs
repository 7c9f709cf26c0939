//! `POST /accounts/rest-auth/{provider}/`: provider credential in, our tokens out.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use serde::Deserialize;

use super::{ApiTags, Body, UserResponse, current_site_id};
use crate::{
    error::{ApiError, code},
    login::{self, Credential},
    state::AppState,
    tokens::IssuedPair,
};

pub struct SocialApi;

/// Exactly one credential: `access_token`, `code`, or `id_token` (api.md 3).
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct SocialLoginRequest {
    /// Access token the app got from the provider's SDK (Kakao: `OAuthToken.accessToken`).
    pub access_token: Option<String>,
    /// Authorization code to exchange at the provider. Not accepted yet (issue #6): send `access_token`.
    pub code: Option<String>,
    /// OIDC id_token. Not checked yet (issue #6): alone it is refused; beside `access_token` it is ignored.
    pub id_token: Option<String>,
}

impl poem_openapi::types::Example for SocialLoginRequest {
    fn example() -> Self {
        Self {
            access_token: Some("<kakao access token>".into()),
            code: None,
            id_token: None,
        }
    }
}

// Hand-written so that no token ever reaches a log through `{:?}`.
impl fmt::Debug for SocialLoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("SocialLoginRequest")
            .field("access_token", &mask(&self.access_token))
            .field("code", &mask(&self.code))
            .field("id_token", &mask(&self.id_token))
            .finish()
    }
}

impl TryFrom<SocialLoginRequest> for Credential {
    type Error = ApiError;

    fn try_from(req: SocialLoginRequest) -> Result<Self, ApiError> {
        let blank = |field: &str| ApiError::field(code::INVALID, field, "This field may not be blank.");
        match (req.access_token, req.code, req.id_token) {
            (Some(_), Some(_), _) => Err(ApiError::field(
                code::INVALID,
                "non_field_errors",
                "Send either access_token or code, not both.",
            )),
            (Some(token), None, _) if token.trim().is_empty() => Err(blank("access_token")),
            (Some(token), None, _) => Ok(Credential::AccessToken(token.trim().to_owned().into())),
            (None, Some(_), _) | (None, None, Some(_)) => Err(ApiError::field(
                code::INVALID,
                "non_field_errors",
                "Only access_token login is available on this server version.",
            )),
            (None, None, None) => Err(ApiError::field(
                code::INVALID,
                "non_field_errors",
                "Send access_token, code or id_token.",
            )),
        }
    }
}

/// dj-rest-auth's login response with JWTs.
#[derive(Debug, Object)]
pub struct TokenPairResponse {
    /// Access JWT; send as `Authorization: Bearer <access>`.
    pub access: String,
    /// Refresh JWT; exchange at `/rest-auth/token/refresh/`.
    pub refresh: String,
    /// When `access` expires (RFC 3339, UTC).
    pub access_expiration: String,
    /// When `refresh` expires (RFC 3339, UTC).
    pub refresh_expiration: String,
    pub user: UserResponse,
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl TokenPairResponse {
    pub fn new(pair: IssuedPair, user: entity::user::Model) -> Self {
        Self {
            access: pair.access,
            refresh: pair.refresh,
            access_expiration: rfc3339(pair.access_expiration),
            refresh_expiration: rfc3339(pair.refresh_expiration),
            user: user.into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Signed in: our tokens and the user.
    #[oai(status = 200)]
    Ok(Json<TokenPairResponse>),
}

#[OpenApi(tag = "ApiTags::SocialLogin")]
impl SocialApi {
    /// Sign in with a provider credential
    ///
    /// dj-rest-auth `SocialLoginView` (`KakaoLogin`). Verifies the credential with the provider,
    /// checks that it was issued to this site's app, creates or updates the user and answers with
    /// our JWTs. Provider rejects the token → 400 `invalid_provider_token`; token of another app →
    /// 400 `provider_app_mismatch`; provider down → 502, slow → 504.
    #[oai(
        path = "/accounts/rest-auth/:provider/",
        method = "post",
        operation_id = "login_with_provider"
    )]
    async fn login_with_provider(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        /// Provider id: `kakao`.
        provider: Path<String>,
        body: Body<SocialLoginRequest>,
    ) -> Result<LoginResponse, ApiError> {
        let credential = Credential::try_from(body.into_inner())?;
        let site_id = current_site_id(&state, req).await?;
        let (user, pair) = login::social_login(&state, site_id, &provider, credential).await?;
        Ok(LoginResponse::Ok(Json(TokenPairResponse::new(pair, user))))
    }
}
