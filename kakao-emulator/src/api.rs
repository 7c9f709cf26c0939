//! The `kapi` host: user info, token info, logout, unlink and OIDC userinfo, with Kakao's
//! `{"msg", "code"}` errors (kakao-api.md sections 1–3, 5.5, 6).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use poem::{
    Body, Request, Response,
    error::ResponseError,
    handler,
    http::{HeaderValue, StatusCode, header},
    web::Data,
};
use serde_json::{Value, json};

use crate::{
    Shared, Unlink,
    grants::{AccessLookup, Grant},
    json_response, params, read_body,
};

/// A kapi error; a 401 carries `WWW-Authenticate: Bearer error=invalid_token` (kakao-api.md 3).
#[derive(Debug)]
pub(super) struct KapiError {
    status: StatusCode,
    msg: &'static str,
    code: i64,
}

impl KapiError {
    const fn new(status: StatusCode, msg: &'static str, code: i64) -> Self {
        Self { status, msg, code }
    }

    const fn unauthorized(msg: &'static str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, msg, -401)
    }

    pub const fn bad_parameter(msg: &'static str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg, -2)
    }

    pub const fn not_registered() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "NotRegisteredUserException", -101)
    }
}

impl std::fmt::Display for KapiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kakao {}: {}", self.code, self.msg)
    }
}

impl std::error::Error for KapiError {}

impl ResponseError for KapiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut response = json_response(self.status, &json!({"msg": self.msg, "code": self.code}));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=invalid_token"),
            );
        }
        response
    }
}

/// Who a kapi call is about: the token's user, or the admin key's `target_id`.
struct Caller {
    user_id: i64,
    /// The app the call acts for: the token's, or the one whose admin key was shown.
    app_id: i64,
    /// With a Bearer token: its grant, remaining lifetime and the token itself.
    bearer: Option<(Grant, Duration, String)>,
}

fn caller(shared: &Shared, req: &Request, p: &std::collections::HashMap<String, String>) -> Result<Caller, KapiError> {
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(KapiError::unauthorized("no authentication key!"))?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return match shared.grants().lookup_access(token.trim(), Utc::now()) {
            AccessLookup::Valid { grant, remaining } => Ok(Caller {
                user_id: grant.user_id,
                app_id: grant.app_id,
                bearer: Some((grant, remaining, token.trim().to_owned())),
            }),
            AccessLookup::Expired => Err(KapiError::unauthorized("this access token is already expired")),
            AccessLookup::Unknown => Err(KapiError::unauthorized("this access token does not exist")),
        };
    }
    let Some(key) = header.strip_prefix("KakaoAK ") else {
        return Err(KapiError::unauthorized("no authentication key!"));
    };
    let app_id = shared
        .app_by_admin_key(key.trim())
        .ok_or(KapiError::unauthorized("invalid app key."))?
        .app_id;
    // With the admin key the user is named in the request (kakao-api.md 1.1, 6.1).
    if p.get("target_id_type").map(String::as_str) != Some("user_id") {
        return Err(KapiError::bad_parameter(
            "target_id_type=user_id is required with an admin key",
        ));
    }
    let user_id = p
        .get("target_id")
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or(KapiError::bad_parameter("target_id must be a user id (Long)"))?;
    if shared.user(user_id).is_none() || !shared.grants().is_linked(user_id) {
        return Err(KapiError::not_registered());
    }
    Ok(Caller {
        user_id,
        app_id,
        bearer: None,
    })
}

async fn read_params(req: &Request, body: Body) -> Result<std::collections::HashMap<String, String>, KapiError> {
    let bytes = read_body(body)
        .await
        .ok_or(KapiError::bad_parameter("unreadable or too large body"))?;
    Ok(params(req, &bytes))
}

/// `GET|POST /v2/user/me` (kakao-api.md 1): Bearer, or `KakaoAK` + `target_id`.
#[handler]
pub(super) async fn me(req: &Request, body: Body, shared: Data<&Arc<Shared>>) -> Result<Response, KapiError> {
    let p = read_params(req, body).await?;
    let caller = caller(&shared, req, &p)?;
    let user = shared.user(caller.user_id).ok_or(KapiError::not_registered())?;
    let keys = match p.get("property_keys") {
        Some(raw) => Some(
            serde_json::from_str::<Vec<String>>(raw)
                .map_err(|_| KapiError::bad_parameter("property_keys must be a JSON array of strings"))?,
        ),
        None => None,
    };
    let secure = p.get("secure_resource").is_some_and(|v| v == "true");
    Ok(json_response(StatusCode::OK, &user.render(secure, keys.as_deref())))
}

/// `GET /v1/user/access_token_info` (kakao-api.md 2): `expires_in` is what is left.
#[handler]
pub(super) async fn access_token_info(
    req: &Request,
    body: Body,
    shared: Data<&Arc<Shared>>,
) -> Result<Response, KapiError> {
    let p = read_params(req, body).await?;
    let caller = caller(&shared, req, &p)?;
    let (grant, remaining, _) = caller
        .bearer
        .ok_or(KapiError::bad_parameter("this API takes a user access token (Bearer)"))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"id": grant.user_id, "expires_in": remaining.as_secs(), "app_id": grant.app_id}),
    ))
}

/// `POST /v1/user/logout` (kakao-api.md 6.1): Bearer revokes that login's tokens; the admin key
/// revokes all of the user's.
#[handler]
pub(super) async fn logout(req: &Request, body: Body, shared: Data<&Arc<Shared>>) -> Result<Response, KapiError> {
    let p = read_params(req, body).await?;
    let caller = caller(&shared, req, &p)?;
    match &caller.bearer {
        Some((_, _, token)) => {
            shared.grants().revoke_by_access(token);
        }
        None => shared.grants().revoke_user(caller.user_id),
    }
    Ok(json_response(StatusCode::OK, &json!({"id": caller.user_id})))
}

/// `POST /v1/user/unlink` (kakao-api.md 6.2): revokes every token. The app asked for it, so no
/// unlink webhook is sent (Kakao sends none either); `/emulator/users/{id}/unlink` sends one.
#[handler]
pub(super) async fn unlink(req: &Request, body: Body, shared: Data<&Arc<Shared>>) -> Result<Response, KapiError> {
    let p = read_params(req, body).await?;
    let caller = caller(&shared, req, &p)?;
    shared.grants().unlink(caller.user_id);
    crate::lock(&shared.unlinks).push(Unlink {
        user_id: caller.user_id,
        app_id: caller.app_id,
    });
    Ok(json_response(StatusCode::OK, &json!({"id": caller.user_id})))
}

/// `GET|POST /v1/oidc/userinfo` (kakao-api.md 5.5): `sub` is a string; `email_verified` means
/// verified and valid.
#[handler]
pub(super) async fn userinfo(req: &Request, body: Body, shared: Data<&Arc<Shared>>) -> Result<Response, KapiError> {
    let p = read_params(req, body).await?;
    let caller = caller(&shared, req, &p)?;
    if caller.bearer.is_none() {
        return Err(KapiError::bad_parameter("this API takes a user access token (Bearer)"));
    }
    let user = shared.user(caller.user_id).ok_or(KapiError::not_registered())?;
    let mut info = json!({"sub": user.id().to_string()});
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            info[key] = Value::String(v.to_owned());
        }
    };
    put("nickname", user.nickname());
    put("picture", user.picture());
    put("name", user.account_str("name"));
    put("gender", user.account_str("gender"));
    put("phone_number", user.account_str("phone_number"));
    put("email", user.email());
    if user.email().is_some() {
        info["email_verified"] = json!(user.trusted_email().is_some());
    }
    Ok(json_response(StatusCode::OK, &info))
}
