//! Emulator-only endpoints under `/emulator/` (no Kakao counterpart): list users, mint tokens
//! without the browser, and act out a user unlinking in Kakao's UI, which sends the unlink webhook.

use std::sync::Arc;

use chrono::Utc;
use poem::{
    Body, Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Path},
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    CallbackMethod, Shared, UnlinkCallback, grants::Grant, json_response, kauth_error::KauthError,
    oauth::token_response, params, read_body,
};

/// `referrer_type` values of the unlink webhook (kakao-api.md 6.3).
const REFERRER_TYPES: [&str; 5] = [
    "UNLINK_FROM_APPS",
    "ACCOUNT_DELETE",
    "FORCED_ACCOUNT_DELETE",
    "UNLINK_FROM_ADMIN",
    "INCOMPLETE_SIGN_UP",
];

/// `GET /emulator/users`: who can log in.
#[handler]
pub(super) fn list_users(shared: Data<&Arc<Shared>>) -> Response {
    let users: Vec<Value> = shared
        .users()
        .all()
        .iter()
        .map(|u| json!({"id": u.id(), "nickname": u.nickname(), "email": u.email(), "scopes": u.scopes()}))
        .collect();
    json_response(StatusCode::OK, &Value::Array(users))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum UserId {
    Number(i64),
    Text(String),
}

/// Body of `POST /emulator/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    user_id: UserId,
    /// App key the token is issued to (the ID token's `aud`); default the REST API key.
    client_id: Option<String>,
    /// `app_id` token info reports; another value makes a "foreign app" token.
    app_id: Option<i64>,
    /// Requested scopes; an ID token comes only with `openid`. Default: `openid`.
    scope: Option<String>,
    nonce: Option<String>,
}

/// `POST /emulator/tokens {"user_id": …}`: what `/oauth/token` would answer after a login.
#[handler]
pub(super) async fn mint_tokens(shared: Data<&Arc<Shared>>, body: Body) -> Result<Response, KauthError> {
    let bytes = read_body(body)
        .await
        .ok_or_else(|| KauthError::invalid_request("unreadable or too large body"))?;
    let request: MintRequest = serde_json::from_slice(&bytes).map_err(|_| {
        KauthError::invalid_request(
            "expected JSON {\"user_id\": …, \"client_id\"?, \"app_id\"?, \"scope\"?, \"nonce\"?}",
        )
    })?;
    let user_id = match &request.user_id {
        UserId::Number(id) => Some(*id),
        UserId::Text(id) => id.parse().ok(),
    };
    let user = user_id
        .and_then(|id| shared.user(id))
        .ok_or_else(|| KauthError::invalid_request("user_id names no emulated user"))?;
    let client_id = request
        .client_id
        .unwrap_or_else(|| shared.config.app.rest_api_key.clone());
    let (app, kind) = shared
        .app_by_key(&client_id)
        .ok_or_else(|| KauthError::invalid_request("client_id is not a key of the emulated app"))?;
    let mut scopes = user.scopes();
    if request
        .scope
        .as_deref()
        .is_none_or(|s| s.split([',', ' ']).any(|x| x == "openid"))
    {
        scopes.push("openid".into());
    }
    let now = Utc::now();
    let grant = Grant {
        user_id: user.id(),
        app_id: request.app_id.unwrap_or(app.app_id),
        client_id,
        kind,
        scopes,
        auth_time: now,
    };
    let set = shared.grants().issue(grant, &shared.config.lifetimes, now);
    let body = token_response(&shared, set, request.nonce, true, now)?;
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /emulator/users/{id}/unlink[?referrer_type=…]`: the user unlinks the app on Kakao's
/// side; all tokens die and the unlink webhook is sent (and awaited, 3 s at most).
#[handler]
pub(super) async fn unlink_user(req: &Request, Path(id): Path<String>, shared: Data<&Arc<Shared>>) -> Response {
    let p = params(req, &[]);
    let referrer = p.get("referrer_type").map_or("UNLINK_FROM_APPS", String::as_str);
    if !REFERRER_TYPES.contains(&referrer) {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": format!("referrer_type must be one of {REFERRER_TYPES:?}")}),
        );
    }
    let Some(user) = id.parse::<i64>().ok().and_then(|id| shared.user(id)) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not_found", "error_description": "no emulated user with this id"}),
        );
    };
    shared.grants().unlink(user.id());
    let webhook = match &shared.config.unlink_callback {
        Some(callback) => match send_unlink_webhook(&shared, callback, user.id(), referrer).await {
            Ok(status) => json!({"status": status}),
            Err(error) => json!({"error": error}),
        },
        None => Value::Null,
    };
    json_response(
        StatusCode::OK,
        &json!({"id": user.id(), "referrer_type": referrer, "webhook": webhook}),
    )
}

/// Calls the app's unlink callback as Kakao does (kakao-api.md 6.3): `Authorization: KakaoAK
/// <admin key>`, string `app_id`/`user_id`, `referrer_type`; query for GET, form for POST.
async fn send_unlink_webhook(
    shared: &Shared,
    callback: &UnlinkCallback,
    user_id: i64,
    referrer: &str,
) -> Result<u16, String> {
    let fields = [
        ("app_id", shared.config.app.app_id.to_string()),
        ("user_id", user_id.to_string()),
        ("referrer_type", referrer.to_owned()),
    ];
    let request = match callback.method {
        CallbackMethod::Get => {
            let mut url = callback.url.clone();
            url.query_pairs_mut().extend_pairs(&fields);
            shared.http.get(url)
        }
        CallbackMethod::Post => shared
            .http
            .post(callback.url.clone())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(fields).unwrap_or_default()),
    };
    let auth = format!("KakaoAK {}", shared.config.app.admin_key.expose_secret());
    match request.header(header::AUTHORIZATION, auth).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            if status == 200 {
                tracing::info!(user_id, status, "unlink webhook delivered");
            } else {
                // Anything but 200 (3xx included) counts as a failure for Kakao.
                tracing::warn!(user_id, status, "unlink webhook answered other than 200");
            }
            Ok(status)
        }
        Err(e) => {
            let error = if e.is_timeout() {
                "timeout (3 s)".to_owned()
            } else {
                e.without_url().to_string()
            };
            tracing::warn!(user_id, error, "unlink webhook failed");
            Err(error)
        }
    }
}
