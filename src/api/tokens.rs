//! dj-rest-auth's token endpoints: refresh, verify, logout; and the public key set.

use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{ApiTags, Body, CurrentUser, MaybeBody, auth, cookies, social::rfc3339};
use crate::{
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    state::AppState,
    tokens::{Refreshed, TokenError, TokenType},
};

pub struct TokensApi;

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct VerifyTokenRequest {
    /// An access or refresh JWT issued by this server.
    pub token: String,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct RefreshRequest {
    /// A refresh JWT.
    pub refresh: String,
}

/// dj-rest-auth's refresh body: in cookie mode `refresh` may be left out for the cookie.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct CookieRefreshRequest {
    /// A refresh JWT (in cookie mode, the refresh cookie when left out).
    pub refresh: Option<String>,
}

#[derive(Object, Deserialize)]
#[oai(example)]
pub struct LogoutRequest {
    /// The refresh JWT to blacklist. May be left out when authenticating with a `Token` header.
    pub refresh: Option<String>,
}

/// An empty object, as simplejwt answers.
#[derive(Debug, Object)]
pub struct EmptyResponse {}

#[derive(Debug, Object)]
pub struct DetailResponse {
    pub detail: String,
}

/// `{}` with 200, shared by the operations that answer nothing more.
#[derive(ApiResponse)]
pub enum EmptyReply {
    #[oai(status = 200)]
    Ok(Json<EmptyResponse>),
}

/// `{"detail": "…"}` with 200.
#[derive(ApiResponse)]
pub enum DetailReply {
    #[oai(status = 200)]
    Ok(Json<DetailResponse>),
}

pub(super) fn detail(text: &str) -> DetailReply {
    DetailReply::Ok(Json(DetailResponse { detail: text.into() }))
}

/// dj-rest-auth's refresh answer.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RefreshResponse {
    /// A new access JWT.
    pub access: String,
    /// The next refresh JWT (rotation on, the default); the one sent is now spent.
    #[oai(skip_serializing_if_is_none)]
    pub refresh: Option<String>,
    /// When `access` expires (RFC 3339, UTC).
    pub access_expiration: String,
}

/// One public key (RFC 8037 OKP, Ed25519).
#[derive(Debug, Object)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id, as in the tokens' `kid` header.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[oai(rename = "use")]
    pub use_: String,
}

/// RFC 7517 JSON Web Key Set.
#[derive(Debug, Object)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(ApiResponse)]
pub enum JwksReply {
    /// The public keys that verify our tokens: the signing key and retired keys whose tokens may
    /// still be alive. Empty with HS256.
    #[oai(status = 200)]
    Ok(Json<JwkSet>),
}

#[derive(ApiResponse)]
pub enum VerifyTokenReply {
    /// The token is valid.
    #[oai(status = 200)]
    Ok(Json<EmptyResponse>),
}

#[derive(ApiResponse)]
pub enum RefreshTokenReply {
    #[oai(status = 200)]
    Ok(Json<RefreshResponse>),
}

#[derive(ApiResponse)]
pub enum LogoutReply {
    #[oai(status = 200)]
    Ok(Json<DetailResponse>),
}

/// simplejwt's verify: a valid signature and type, and not revoked (the user's revocation point,
/// disabled users; for a refresh token also a blacklisted token or session).
pub(super) async fn verify_any(state: &AppState, token: &str) -> Result<(), ApiError> {
    match state.tokens.verify(token, TokenType::Access).await {
        Err(TokenError::WrongType) => {
            let claims = state.tokens.verify(token, TokenType::Refresh).await?;
            state.tokens.ensure_live(&claims).await?;
        }
        Ok(claims) => state.tokens.ensure_usable(&claims).await?,
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// A refresh; a replayed token's revoked session goes on the audit trail.
pub(super) async fn refresh_audited(state: &AppState, origin: &Origin, token: &str) -> Result<Refreshed, ApiError> {
    state.tokens.refresh(token).await.map_err(|e| {
        if let TokenError::ReuseDetected { user_id } = e {
            state
                .audit
                .record(origin, Entry::new(event::REFRESH_REUSE_DETECTED).user(user_id));
        }
        e.into()
    })
}

fn logged_out() -> LogoutReply {
    LogoutReply::Ok(Json(DetailResponse {
        detail: "Successfully logged out.".into(),
    }))
}

#[OpenApi(tag = "ApiTags::Tokens")]
impl TokensApi {
    /// Check a token
    ///
    /// simplejwt `TokenVerifyView`: 200 `{}` when the signature, key, expiry and type check out
    /// (and a refresh token is not blacklisted), else 401 `token_not_valid`.
    #[oai(path = "/rest-auth/token/verify/", method = "post", operation_id = "verify_token")]
    async fn verify_token(
        &self,
        state: poem::web::Data<&AppState>,
        body: Body<VerifyTokenRequest>,
    ) -> Result<VerifyTokenReply, ApiError> {
        verify_any(&state, &body.into_inner().token).await?;
        Ok(VerifyTokenReply::Ok(Json(EmptyResponse {})))
    }

    /// Get a new access token
    ///
    /// dj-rest-auth `get_refresh_view` over simplejwt `TokenRefreshView`, rotation on by default:
    /// the refresh token sent is spent and a new one comes back. Replaying a spent token after
    /// the grace interval revokes every token of that login → 401 `token_not_valid`.
    #[oai(path = "/rest-auth/token/refresh/", method = "post", operation_id = "refresh_token")]
    async fn refresh_token(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        origin: Origin,
        body: MaybeBody<CookieRefreshRequest>,
    ) -> Result<RefreshTokenReply, ApiError> {
        let refresh = match body.0.and_then(|b| b.refresh) {
            Some(token) => token,
            None => cookies::refresh_token(req, &state.settings.cookies)?
                .ok_or_else(|| ApiError::field(code::INVALID, "refresh", "This field is required."))?,
        };
        let refreshed = refresh_audited(&state, &origin, &refresh).await?;
        let rotated = refreshed.refresh.as_ref().map(|(token, exp)| (token.as_str(), *exp));
        cookies::set_session(
            req,
            &state.settings.cookies,
            (&refreshed.access, refreshed.access_expiration),
            rotated,
        );
        Ok(RefreshTokenReply::Ok(Json(RefreshResponse {
            access: refreshed.access,
            refresh: refreshed.refresh.map(|(token, _)| token),
            access_expiration: rfc3339(refreshed.access_expiration),
        })))
    }

    /// Log out
    ///
    /// dj-rest-auth `LogoutView`: blacklists the refresh token sent, and deletes the opaque key
    /// of a `Token` header. With neither → 401.
    #[oai(path = "/rest-auth/logout/", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        origin: Origin,
        body: MaybeBody<LogoutRequest>,
    ) -> Result<LogoutReply, ApiError> {
        let refresh = match body.0.and_then(|b| b.refresh) {
            Some(token) => Some(token),
            None => cookies::refresh_token(req, &state.settings.cookies)?,
        };
        cookies::clear_session(req, &state.settings.cookies);
        let opaque = match auth::presented(&state, req)? {
            Some(auth::Raw::Opaque(key)) => Some(key),
            _ => None,
        };
        if refresh.is_none() && opaque.is_none() {
            return Err(ApiError::unauthorized(
                code::NOT_AUTHENTICATED,
                "Refresh token was not included in request data.",
            ));
        }
        if let Some(refresh) = refresh {
            let user_id = state.tokens.blacklist(&refresh).await?;
            state
                .audit
                .record(&origin, Entry::new(event::LOGOUT).user(user_id).method("refresh"));
        }
        if let Some(key) = opaque {
            state.tokens.delete_opaque(key).await?;
            state.audit.record(&origin, Entry::new(event::LOGOUT).method("token"));
        }
        Ok(logged_out())
    }

    /// Log out everywhere
    ///
    /// Revokes every refresh token and opaque key of the caller (access tokens already issued
    /// live out their few minutes).
    #[oai(path = "/rest-auth/logout/all/", method = "post", operation_id = "logout_all")]
    async fn logout_all(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
    ) -> Result<LogoutReply, ApiError> {
        state.tokens.revoke_user(caller.user.id).await?;
        state
            .audit
            .record(&origin, Entry::new(event::LOGOUT_ALL).user(caller.user.id));
        Ok(logged_out())
    }

    /// Public signing keys (JWKS)
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: poem::web::Data<&AppState>) -> JwksReply {
        let keys = state.tokens.keys().public_keys().into_iter().map(|(kid, x)| Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            kid,
            alg: "EdDSA".into(),
            use_: "sig".into(),
        });
        JwksReply::Ok(Json(JwkSet { keys: keys.collect() }))
    }
}

impl poem_openapi::types::Example for VerifyTokenRequest {
    fn example() -> Self {
        Self {
            token: "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.sig".into(),
        }
    }
}

impl poem_openapi::types::Example for RefreshRequest {
    fn example() -> Self {
        Self {
            refresh: "<refresh JWT>".into(),
        }
    }
}

impl poem_openapi::types::Example for CookieRefreshRequest {
    fn example() -> Self {
        Self {
            refresh: Some("<refresh JWT>".into()),
        }
    }
}

impl poem_openapi::types::Example for LogoutRequest {
    fn example() -> Self {
        Self {
            refresh: Some("<refresh JWT>".into()),
        }
    }
}

impl poem_openapi::types::Example for RefreshResponse {
    fn example() -> Self {
        Self {
            access: "<access JWT>".into(),
            refresh: Some("<next refresh JWT>".into()),
            access_expiration: "2026-11-23T12:05:00Z".into(),
        }
    }
}
