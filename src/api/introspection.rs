//! `POST /rest-auth/token/introspect/` (RFC 7662) for registered resource servers: is this access
//! JWT or `Token` key good right now, and whose is it? Checked exactly as request authentication
//! checks it (`auth::authenticate_raw`), so revocations count.

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::SecretString;
use serde::Deserialize;

use super::{ApiTags, Body, Presented, auth};
use crate::{
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    ratelimit::{Action, ClientIp},
    resource_clients,
    state::AppState,
};

pub struct IntrospectionApi;

/// RFC 7662 2.1. No `Debug`: it carries a token and a client secret.
#[derive(Object, Deserialize)]
#[oai(example)]
pub struct IntrospectRequest {
    /// The token to check: an access JWT, or a DRF key (`Token` scheme).
    pub token: String,
    /// `access_token` or `token`; optional, and not needed: the token's form tells.
    pub token_type_hint: Option<String>,
    /// The resource server's client id, when not sent with HTTP Basic auth.
    pub client_id: Option<String>,
    /// The resource server's secret, when not sent with HTTP Basic auth.
    pub client_secret: Option<String>,
}

/// RFC 7662 2.2. Only `active` when the token is not usable, whatever the reason.
#[derive(Debug, Object, Default)]
#[oai(example)]
pub struct IntrospectResponse {
    /// Whether the token would authenticate a request now.
    pub active: bool,
    /// The user's pk as a string.
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// The user's pk (the JWT `user_id` claim).
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<i32>,
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
    /// `access` (a JWT) or `token` (a DRF key).
    #[oai(skip_serializing_if_is_none)]
    pub token_type: Option<String>,
    /// Expiry (NumericDate); DRF keys have none.
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    /// Issue time (NumericDate) of a JWT.
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// The JWT's id.
    #[oai(skip_serializing_if_is_none)]
    pub jti: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub iss: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
}

#[derive(ApiResponse)]
pub enum IntrospectReply {
    /// `{"active": true, …}` or `{"active": false}`.
    #[oai(status = 200)]
    Ok(Json<IntrospectResponse>),
}

/// DRF keys are 40 hex characters; anything else is taken for a JWT.
fn is_drf_key(token: &str) -> bool {
    token.len() == 40 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The client's id and secret from HTTP Basic auth or the form (RFC 6749 2.3.1), never both.
fn client_credentials(req: &Request, body: &mut IntrospectRequest) -> Result<(String, SecretString), ApiError> {
    let basic = req
        .headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let form = (body.client_id.take(), body.client_secret.take());
    match (basic, form) {
        (Some(_), (Some(_), _)) => Err(ApiError::field(
            code::INVALID,
            "client_id",
            "Send the client credentials either with HTTP Basic auth or in the body, not both.",
        )),
        (Some(encoded), _) => {
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
                .ok_or_else(ApiError::invalid_client)?;
            let (id, secret) = decoded.split_once(':').ok_or_else(ApiError::invalid_client)?;
            Ok((id.to_owned(), SecretString::from(secret.to_owned())))
        }
        (None, (Some(id), Some(secret))) => Ok((id, SecretString::from(secret))),
        (None, _) => Err(ApiError::invalid_client()),
    }
}

fn introspection(current: auth::CurrentUser) -> IntrospectResponse {
    let user = current.user;
    let mut answer = IntrospectResponse {
        active: true,
        sub: Some(user.id.to_string()),
        user_id: Some(user.id),
        username: Some(user.username),
        ..Default::default()
    };
    match current.credential {
        Presented::Jwt(claims) => {
            answer.token_type = Some("access".into());
            answer.exp = Some(claims.exp);
            answer.iat = Some(claims.iat);
            answer.jti = Some(claims.jti);
            answer.iss = claims.iss;
            answer.aud = claims.aud;
        }
        Presented::Opaque(_) => answer.token_type = Some("token".into()),
    }
    answer
}

#[OpenApi(tag = "ApiTags::ResourceServers")]
impl IntrospectionApi {
    /// Introspect a token (RFC 7662)
    ///
    /// For resource servers registered with `authbridge client add`: HTTP Basic auth (or
    /// `client_id` + `client_secret` in the body). Answers whether an access JWT or a `Token` key
    /// would authenticate a request now (signature, expiry, revocation, active user) and whose it
    /// is. Any unusable token → `{"active": false}`, without saying why.
    #[oai(
        path = "/rest-auth/token/introspect/",
        method = "post",
        operation_id = "introspect_token"
    )]
    async fn introspect_token(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        client: ClientIp,
        origin: Origin,
        body: Body<IntrospectRequest>,
    ) -> Result<IntrospectReply, ApiError> {
        let mut body = body.into_inner();
        let (client_id, secret) = client_credentials(req, &mut body)?;
        state
            .limits
            .check(Action::Introspect, &client, Some(&client_id))
            .await?;
        if resource_clients::authenticate(&state.db, &client_id, &secret)
            .await?
            .is_none()
        {
            let refused = Entry::new(event::TOKEN_INTROSPECTED).outcome("invalid_client");
            state
                .audit
                .record(&origin, refused.detail(serde_json::json!({"client_id": client_id})));
            return Err(ApiError::invalid_client());
        }
        let raw = if is_drf_key(&body.token) {
            auth::Raw::Opaque(&body.token)
        } else {
            auth::Raw::Jwt(&body.token)
        };
        let answer = match auth::authenticate_raw(&state, raw).await {
            Ok(current) => introspection(current),
            // 401 and 403 both mean "not usable": RFC 7662 says only `active: false`.
            Err(ApiError::Unauthorized(..) | ApiError::Forbidden(_)) => IntrospectResponse::default(),
            Err(e) => return Err(e),
        };
        let mut asked = Entry::new(event::TOKEN_INTROSPECTED)
            .outcome(if answer.active { "active" } else { "inactive" })
            .detail(serde_json::json!({"client_id": client_id}));
        asked.user_id = answer.user_id;
        state.audit.record(&origin, asked);
        Ok(IntrospectReply::Ok(Json(answer)))
    }
}

impl poem_openapi::types::Example for IntrospectRequest {
    fn example() -> Self {
        Self {
            token: "eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2ln".into(),
            token_type_hint: None,
            client_id: None,
            client_secret: None,
        }
    }
}

impl poem_openapi::types::Example for IntrospectResponse {
    fn example() -> Self {
        Self {
            active: true,
            sub: Some("7".into()),
            user_id: Some(7),
            username: Some("kakao_3095134389".into()),
            token_type: Some("access".into()),
            exp: Some(1_796_040_300),
            iat: Some(1_796_040_000),
            jti: Some("6f1c0e4b2b7a4f0e9d1c3a5b7e9f1a2c".into()),
            iss: None,
            aud: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_drf_key;

    #[test]
    fn drf_keys_are_told_from_jwts_by_their_form() {
        assert!(is_drf_key(&"a1".repeat(20)));
        assert!(!is_drf_key(&"a1".repeat(21)));
        assert!(!is_drf_key("eyJhbGciOiJFZERTQSJ9.e30.c2ln"));
    }
}
