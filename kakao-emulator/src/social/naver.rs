//! Naver's `nid.naver.com` (`/oauth2.0/token`, `/oauth2.0/revoke`) and `openapi.naver.com`
//! (`/v1/nid/me`), docs/providers.md section 1.

use std::sync::Arc;

use poem::{Body, Request, Response, handler, web::Data};
use serde_json::{Value, json};

use super::{Grant, Social, bearer, issue, json_body, params, reply, revoke, secret_is, take_code};

/// `GET|POST /v1/nid/me`: the `resultcode` envelope; 401 `024` for a bad token, `028` without one.
#[handler]
pub(super) fn me(req: &Request, shared: Data<&Arc<Social>>) -> Response {
    let Some(token) = bearer(req) else {
        return reply(
            401,
            &json!({"resultcode": "028", "message": "Authentication header not exists"}),
        );
    };
    match shared.tokens().live("naver", &token) {
        Some(grant) => reply(
            200,
            &json!({"resultcode": "00", "message": "success", "response": grant.user}),
        ),
        None => reply(
            401,
            &json!({"resultcode": "024", "message": "Authentication failed (인증 실패하였습니다.)"}),
        ),
    }
}

fn token_error(error: &str, description: &str) -> Response {
    // Naver's status for these is undocumented; a 200 is the trap a client must not fall into.
    reply(200, &json!({"error": error, "error_description": description}))
}

/// `GET|POST /oauth2.0/token`: `authorization_code`, `refresh_token`, and the legacy `delete`.
#[handler]
pub(super) async fn token_endpoint(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let app = &shared.config.naver;
    if p.get("client_id") != Some(&app.client_id) || !secret_is(&app.client_secret, p.get("client_secret")) {
        return reply(
            401,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed."}),
        );
    }
    match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = p.get("code").and_then(|c| take_code(&shared, "naver", c)) else {
                return token_error("invalid_request", "no valid data in session");
            };
            if code.state.is_some() && code.state.as_ref() != p.get("state") {
                return token_error("invalid_request", "state mismatch");
            }
            let (access, refresh) = issue(&shared, "naver", &code.grant, true);
            reply(
                200,
                &json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": "3600"}),
            )
        }
        Some("refresh_token") => {
            let grant = p
                .get("refresh_token")
                .and_then(|t| shared.tokens().refresh.get(&("naver", t.clone())).cloned());
            let Some(grant) = grant else {
                return token_error("invalid_request", "invalid refresh_token");
            };
            let (access, _) = issue(&shared, "naver", &grant, false);
            reply(
                200,
                &json!({"access_token": access, "token_type": "bearer", "expires_in": "3600"}),
            )
        }
        // Legacy deletion (removed from Naver's spec 2026-05-20): "success" whatever the token.
        Some("delete") => {
            let token = p.get("access_token").cloned().unwrap_or_default();
            revoke(&shared, "naver", &token);
            reply(200, &json!({"access_token": token, "result": "success"}))
        }
        _ => token_error("unsupported_grant_type", "grant_type is not supported"),
    }
}

/// `POST /oauth2.0/revoke`: 200 with no body, also for a token already dead.
#[handler]
pub(super) async fn revoke_token(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let app = &shared.config.naver;
    if p.get("client_id") != Some(&app.client_id) || !secret_is(&app.client_secret, p.get("client_secret")) {
        return reply(
            401,
            &json!({"error": "unauthorized_client", "error_description": "Client authentication failed."}),
        );
    }
    let Some(token) = p.get("token").filter(|t| !t.is_empty()) else {
        return reply(
            400,
            &json!({"error": "invalid_request", "error_description": "token is required"}),
        );
    };
    // Revoking one token of a pair revokes the other: the emulator forgets every token of the user.
    let user = {
        let tokens = shared.tokens();
        let key = ("naver", token.clone());
        tokens
            .access
            .get(&key)
            .or(tokens.refresh.get(&key))
            .map(|g| g.user["id"].clone())
    };
    if let Some(id) = user {
        let mut tokens = shared.tokens();
        tokens.access.retain(|(p, _), g| *p != "naver" || g.user["id"] != id);
        tokens.refresh.retain(|(p, _), g| *p != "naver" || g.user["id"] != id);
    }
    revoke(&shared, "naver", token);
    Response::builder().status(poem::http::StatusCode::OK).finish()
}

/// `POST /emulator/naver/tokens {"id"?, "email"?, "nickname"?}`: a login's tokens, no browser.
#[handler]
pub(super) async fn mint(body: Body, shared: Data<&Arc<Social>>) -> Response {
    let request = json_body(body).await;
    let profile: Value = json!({
        "id": request["id"].as_str().unwrap_or("emulator-naver-user-1"),
        "email": request["email"].as_str().unwrap_or("naver.user@naver.com"),
        "nickname": request["nickname"].as_str().unwrap_or("네이버사용자"),
        "name": request["name"].as_str().unwrap_or("김네이버"),
    });
    let grant = Grant {
        user: profile,
        client_id: shared.config.naver.client_id.clone(),
    };
    let (access, refresh) = issue(&shared, "naver", &grant, true);
    reply(
        200,
        &json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": "3600"}),
    )
}
