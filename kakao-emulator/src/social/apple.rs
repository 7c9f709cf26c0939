//! Sign in with Apple's `appleid.apple.com` (`/auth/token`, `/auth/revoke`, `/auth/keys`) and its
//! server-to-server notifications, docs/providers.md section 3.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, Validation};
use poem::{Body, Request, Response, handler, web::Data};
use serde_json::{Value, json};

use super::{APPLE_ISSUER, Grant, Social, issue, json_body, jwks, now, params, reply, revoke, take_code};
use crate::lock;

/// The client secret is the ES256 JWT of the team's key: `kid`, `iss` team, `sub` the client id,
/// `aud` Apple, not expired (docs/providers.md 3.4).
fn client_is_valid(shared: &Social, client_id: &str, secret: Option<&String>) -> bool {
    let app = &shared.config.apple;
    let Some(secret) = secret else { return false };
    if !app.client_ids.iter().any(|c| c == client_id) {
        return false;
    }
    let Ok(header) = jsonwebtoken::decode_header(secret) else {
        return false;
    };
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(app.key.key_id.as_str()) {
        return false;
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&app.team_id]);
    validation.set_audience(&[APPLE_ISSUER]);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(secret, &app.key.public, &validation).is_ok()
}

fn error(name: &str) -> Response {
    reply(400, &json!({"error": name}))
}

/// The id_token Apple signs for `grant`: its claims, `iss`, `aud`, 10 minutes of life.
fn id_token(shared: &Social, grant: &Grant, nonce: Option<&str>) -> String {
    let mut claims = grant.user.clone();
    let issued = now();
    claims["iss"] = json!(APPLE_ISSUER);
    claims["aud"] = json!(grant.client_id);
    claims["iat"] = json!(issued);
    claims["exp"] = json!(issued + 600);
    claims["auth_time"] = json!(issued);
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
        claims["nonce_supported"] = json!(true);
    }
    lock(&shared.apple_signer).sign(&claims, None).unwrap_or_default()
}

/// `POST /auth/token`: `authorization_code` (single use) or `refresh_token`.
#[handler]
pub(super) async fn token_endpoint(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    if !client_is_valid(&shared, &client_id, p.get("client_secret")) {
        return error("invalid_client");
    }
    match p.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = p.get("code").and_then(|c| take_code(&shared, "apple", c)) else {
                return reply(
                    400,
                    &json!({"error": "invalid_grant", "error_description": "The code has expired or has been revoked."}),
                );
            };
            // A native code must be exchanged with the bundle id it was issued for.
            if code.grant.client_id != client_id {
                return reply(
                    400,
                    &json!({"error": "invalid_grant", "error_description": "client_id mismatch."}),
                );
            }
            let (access, refresh) = issue(&shared, "apple", &code.grant, true);
            let id_token = id_token(&shared, &code.grant, code.nonce.as_deref());
            reply(
                200,
                &json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                        "refresh_token": refresh, "id_token": id_token}),
            )
        }
        Some("refresh_token") => {
            let grant = p
                .get("refresh_token")
                .and_then(|t| shared.tokens().refresh.get(&("apple", t.clone())).cloned());
            let Some(grant) = grant else {
                return error("invalid_grant");
            };
            let (access, _) = issue(&shared, "apple", &grant, false);
            reply(
                200,
                &json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                        "id_token": id_token(&shared, &grant, None)}),
            )
        }
        _ => error("unsupported_grant_type"),
    }
}

/// `POST /auth/revoke`: 200 for any token (as observed), `invalid_client` for bad client auth.
#[handler]
pub(super) async fn revoke_token(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    if !client_is_valid(&shared, &client_id, p.get("client_secret")) {
        return error("invalid_client");
    }
    let Some(token) = p.get("token").filter(|t| !t.is_empty()) else {
        return error("invalid_request");
    };
    revoke(&shared, "apple", token);
    Response::builder().status(poem::http::StatusCode::OK).finish()
}

/// `GET /auth/keys`: Apple's JWKS.
#[handler]
pub(super) fn keys(shared: Data<&Arc<Social>>) -> Response {
    jwks(&shared.apple_signer)
}

/// The user claims of a minted login.
fn user_claims(request: &Value) -> Value {
    json!({
        "sub": request["sub"].as_str().unwrap_or("001472.dab04f9ba9d34f03ad641fa82d1c598b.0945"),
        "email": request["email"].as_str().unwrap_or("yf7a3ps8hm91@privaterelay.appleid.com"),
        "email_verified": "true",
        "is_private_email": "true",
    })
}

/// `POST /emulator/apple/tokens {"sub"?, "email"?, "client_id"?, "nonce"?}`: what the iOS SDK
/// hands the app (`identityToken`, `authorizationCode`); the code is exchangeable once.
#[handler]
pub(super) async fn mint(body: Body, shared: Data<&Arc<Social>>) -> Response {
    let request = json_body(body).await;
    let client_id = request["client_id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| shared.config.apple.client_ids.first().cloned())
        .unwrap_or_default();
    let grant = Grant {
        user: user_claims(&request),
        client_id,
    };
    let nonce = request["nonce"].as_str();
    let code = shared.tokens().next("apple-code");
    let row = super::Code {
        grant: grant.clone(),
        state: None,
        challenge: None,
        nonce: nonce.map(str::to_owned),
        refresh: true,
    };
    shared.tokens().codes.insert(("apple", code.clone()), row);
    reply(
        200,
        &json!({"id_token": id_token(&shared, &grant, nonce), "code": code,
                "user": {"name": {"firstName": "Emul", "lastName": "Ator"}}}),
    )
}

/// `POST /emulator/apple/notify {"type", "sub", "email"?}`: Apple's server-to-server
/// notification, signed with Apple's key, posted to the configured URL as `{"payload": JWS}`.
#[handler]
pub(super) async fn notify(body: Body, shared: Data<&Arc<Social>>) -> Response {
    let request = json_body(body).await;
    let Some(url) = shared.config.apple_notifications.clone() else {
        return reply(
            400,
            &json!({"error": "no notification URL configured (--apple-notifications)"}),
        );
    };
    let mut event = json!({
        "type": request["type"].as_str().unwrap_or("consent-revoked"),
        "sub": request["sub"].as_str().unwrap_or_default(),
        "event_time": now() * 1000,
    });
    if let Some(email) = request["email"].as_str() {
        event["email"] = json!(email);
        event["is_private_email"] = json!("true");
    }
    let claims = json!({
        "iss": APPLE_ISSUER, "aud": shared.config.apple.client_ids.first(), "iat": now(),
        "jti": shared.tokens().next("jti"), "events": event.to_string(),
    });
    let payload = lock(&shared.apple_signer).sign(&claims, None).unwrap_or_default();
    match shared.http.post(url).json(&json!({"payload": payload})).send().await {
        Ok(response) => reply(200, &json!({"status": response.status().as_u16()})),
        Err(e) => reply(502, &json!({"error": e.without_url().to_string()})),
    }
}
