//! `CurrentUser`: authenticates a request from the configured header (`Authorization: Bearer …`
//! or `JWT …` by default), as simplejwt's `JWTAuthentication` does, and loads the user.

use entity::user;
use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use crate::{
    error::{ApiError, code},
    state::AppState,
    store,
    tokens::{Claims, TokenType},
};

/// The authenticated caller.
pub struct CurrentUser {
    pub user: user::Model,
    pub claims: Claims,
}

const BEARER: &str = "Bearer";
const JWT: &str = "JWT";

impl<'a> ApiExtractor<'a> for CurrentUser {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            BEARER,
            MetaSecurityScheme {
                ty: "http",
                description: Some("`Authorization: Bearer <access JWT>` (simplejwt)."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            JWT,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "`Authorization: JWT <access JWT>` (djangorestframework-jwt clients). Enter `JWT <token>` as the value.",
                ),
                name: Some("Authorization"),
                key_in: Some("header"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BEARER, JWT]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let state = request
            .data::<AppState>()
            .ok_or_else(|| ApiError::internal(&"AppState missing"))?;
        let token = credential(state, request)?;
        let claims = state
            .tokens
            .verify(token, TokenType::Access)
            .await
            .map_err(ApiError::from)?;
        let user = match store::users::get(&state.db, claims.user_id).await {
            Ok(user) => user,
            Err(store::StoreError::NotFound(_)) => {
                return Err(ApiError::unauthorized(code::TOKEN_NOT_VALID, "User not found").into());
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        if !user.is_active {
            return Err(ApiError::unauthorized(code::USER_INACTIVE, "User is inactive").into());
        }
        Ok(Self { user, claims })
    }
}

/// The token from `<header>: <Type> <token>`, where Type is a configured JWT type.
fn credential<'r>(state: &AppState, request: &'r Request) -> Result<&'r str, ApiError> {
    let missing = || ApiError::unauthorized(code::NOT_AUTHENTICATED, "Authentication credentials were not provided.");
    let value = request
        .headers()
        .get(state.settings.auth_header_name.as_str())
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| ApiError::token_not_valid())?.trim();
    // A custom header (`jwt-auth: <jwt>`) may carry the bare token with no type in front.
    if !value.contains(' ') && !state.settings.auth_header_name.eq_ignore_ascii_case("authorization") {
        return Ok(value);
    }
    let (kind, token) = value.split_once(' ').ok_or_else(missing)?;
    let accepted = state
        .settings
        .auth_header_types
        .iter()
        .any(|t| t == kind && (t == BEARER || t == JWT));
    if !accepted {
        // DRF: an unknown scheme means "not this authenticator", so no credentials were given.
        return Err(missing());
    }
    Ok(token.trim())
}
