//! `CurrentUser`: authenticates a request from the configured header (`Authorization: Bearer …`,
//! `JWT …` or `Token …` by default), as simplejwt's `JWTAuthentication` and DRF's
//! `TokenAuthentication` do, and loads the user.

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
    tokens::{Claims, TokenError, TokenType},
};

/// The authenticated caller.
pub struct CurrentUser {
    pub user: user::Model,
    pub credential: Presented,
}

/// A checked credential.
pub enum Presented {
    Jwt(Claims),
    /// A DRF key; kept so that logout can delete exactly this one.
    Opaque(String),
}

/// A credential as read from the header, not yet checked.
pub enum Raw<'r> {
    Jwt(&'r str),
    Opaque(&'r str),
}

const BEARER: &str = "Bearer";
const JWT: &str = "JWT";
const TOKEN: &str = "Token";

fn header_scheme(description: &'static str) -> MetaSecurityScheme {
    MetaSecurityScheme {
        ty: "apiKey",
        description: Some(description),
        name: Some("Authorization"),
        key_in: Some("header"),
        scheme: None,
        bearer_format: None,
        flows: None,
        openid_connect_url: None,
    }
}

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
            header_scheme(
                "`Authorization: JWT <access JWT>` (djangorestframework-jwt). Enter `JWT <token>` as the value.",
            ),
        );
        registry.create_security_scheme(
            TOKEN,
            header_scheme(
                "`Authorization: Token <key>` (DRF TokenAuthentication, keys from `/api-token-auth/`). Enter `Token <key>` as the value.",
            ),
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![BEARER, JWT, TOKEN]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _opts: ExtractParamOptions<()>,
    ) -> poem::Result<Self> {
        let state = request
            .data::<AppState>()
            .ok_or_else(|| ApiError::internal(&"AppState missing"))?;
        // A header wins; in cookie mode the access cookie is the fallback (CSRF-checked).
        let header = presented(state, request)?;
        let cookie = match header {
            Some(_) => None,
            None => super::cookies::access_token(request, &state.settings.cookies)?,
        };
        let raw = match (header, &cookie) {
            (Some(raw), _) => raw,
            (None, Some(token)) => Raw::Jwt(token),
            (None, None) => return Err(not_provided().into()),
        };
        Ok(authenticate_raw(state, raw).await?)
    }
}

/// Checks a credential read from a request: signature, expiry and type of a JWT, or an opaque
/// key's hash; then that its user exists, is active and has not revoked it since.
pub async fn authenticate_raw(state: &AppState, raw: Raw<'_>) -> Result<CurrentUser, ApiError> {
    match raw {
        Raw::Jwt(token) => {
            let claims = state.tokens.verify(token, TokenType::Access).await?;
            let user = state.tokens.holder_of(&claims).await?;
            Ok(CurrentUser {
                user,
                credential: Presented::Jwt(claims),
            })
        }
        Raw::Opaque(key) => {
            let user = state.tokens.authenticate_opaque(key).await.map_err(|e| match e {
                // A database fault is not a bad key: clients would throw their key away.
                e @ (TokenError::Store(_) | TokenError::UserInactive) => ApiError::from(e),
                _ => ApiError::unauthorized(code::AUTHENTICATION_FAILED, "Invalid token."),
            })?;
            Ok(CurrentUser {
                user,
                credential: Presented::Opaque(key.to_owned()),
            })
        }
    }
}

impl CurrentUser {
    /// The caller's row as it is in the database now, not the copy authentication used (which
    /// may be `cache_ttl` old): for checks of the password itself.
    pub async fn fresh(&self, state: &AppState) -> Result<user::Model, ApiError> {
        state.cached.user_now(self.user.id).await.map_err(gone_is_unauthorized)
    }
}

/// A valid credential of a user deleted since: 401, as simplejwt's "User not found".
fn gone_is_unauthorized(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::NotFound(_) => ApiError::unauthorized(code::TOKEN_NOT_VALID, "User not found"),
        e => e.into(),
    }
}

fn not_provided() -> ApiError {
    ApiError::unauthorized(code::NOT_AUTHENTICATED, "Authentication credentials were not provided.")
}

/// The credential in `<header>: <Type> <credential>`, where Type is a configured type; `None`
/// when there is none (DRF: an unknown type means "not this authenticator", not an error).
pub fn presented<'r>(state: &AppState, request: &'r Request) -> Result<Option<Raw<'r>>, ApiError> {
    let Some(value) = request.headers().get(state.settings.auth.header_name.as_str()) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::token_not_valid())?.trim();
    // A custom header (`jwt-auth: <jwt>`) may carry the bare token with no type in front.
    if !value.contains(' ') && !state.settings.auth.header_name.eq_ignore_ascii_case("authorization") {
        return Ok(Some(Raw::Jwt(value)));
    }
    let Some((kind, credential)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !state.settings.auth.header_types.iter().any(|t| t == kind) {
        return Ok(None);
    }
    let credential = credential.trim();
    Ok(Some(if kind == TOKEN {
        Raw::Opaque(credential)
    } else {
        Raw::Jwt(credential)
    }))
}
