//! Google's `oauth2.googleapis.com` (`/token`, `/tokeninfo`, `/revoke`) and `www.googleapis.com`
//! (`/oauth2/v3/certs`, `/oauth2/v3/userinfo`), docs/providers.md section 2.

use std::sync::Arc;

use poem::{Body, Request, Response, handler, web::Data};
use serde_json::{Value, json};

use super::{
    GOOGLE_ISSUER, Grant, Social, bearer, issue, json_body, jwks, now, params, pkce_challenge, reply, revoke,
    secret_is, take_code,
};
use crate::lock;

/// `GET|POST /tokeninfo?access_token=…`: every value a string, as Google answers.
#[handler]
pub(super) async fn tokeninfo(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let grant = p
        .get("access_token")
        .and_then(|t| shared.tokens().live("google", t).cloned());
    let Some(grant) = grant else {
        return reply(
            400,
            &json!({"error": "invalid_token", "error_description": "Invalid Value"}),
        );
    };
    let exp = now() + 3599;
    reply(
        200,
        &json!({
            "azp": grant.client_id, "aud": grant.client_id, "sub": grant.user["sub"],
            "scope": "https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile openid",
            "exp": exp.to_string(), "expires_in": "3599", "email": grant.user["email"],
            "email_verified": if grant.user["email_verified"] == Value::Bool(true) { "true" } else { "false" },
            "access_type": "online"
        }),
    )
}

/// `GET /oauth2/v3/userinfo` (Bearer): the OIDC claims.
#[handler]
pub(super) fn userinfo(req: &Request, shared: Data<&Arc<Social>>) -> Response {
    let grant = bearer(req).and_then(|t| shared.tokens().live("google", &t).cloned());
    match grant {
        Some(grant) => reply(200, &grant.user),
        None => reply(
            401,
            &json!({"error": "invalid_request", "error_description": "Invalid Credentials"}),
        ),
    }
}

fn grant_error(description: &str) -> Response {
    reply(
        400,
        &json!({"error": "invalid_grant", "error_description": description}),
    )
}

/// `POST /token` (`authorization_code`, + PKCE when the code was issued with a challenge).
#[handler]
pub(super) async fn token_endpoint(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let app = &shared.config.google;
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    if !app.client_ids.contains(&client_id) || !secret_is(&app.client_secret, p.get("client_secret")) {
        return reply(
            401,
            &json!({"error": "invalid_client", "error_description": "Unauthorized"}),
        );
    }
    if p.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return reply(400, &json!({"error": "unsupported_grant_type"}));
    }
    let Some(code) = p.get("code").and_then(|c| take_code(&shared, "google", c)) else {
        return grant_error("Malformed auth code.");
    };
    if let Some(challenge) = &code.challenge
        && p.get("code_verifier").map(|v| pkce_challenge(v)).as_ref() != Some(challenge)
    {
        return grant_error("Invalid code verifier.");
    }
    let (access, refresh) = issue(&shared, "google", &code.grant, code.refresh);
    let mut claims = code.grant.user.clone();
    let issued = now();
    claims["iss"] = json!(GOOGLE_ISSUER);
    claims["aud"] = json!(code.grant.client_id);
    claims["azp"] = json!(code.grant.client_id);
    claims["iat"] = json!(issued);
    claims["exp"] = json!(issued + 3600);
    if let Some(nonce) = &code.nonce {
        claims["nonce"] = json!(nonce);
    }
    let id_token = lock(&shared.google_signer).sign(&claims, None).unwrap_or_default();
    let mut answer = json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer",
                            "scope": "openid email profile", "id_token": id_token});
    if let Some(refresh) = refresh {
        answer["refresh_token"] = json!(refresh);
    }
    reply(200, &answer)
}

/// `POST /revoke` (form `token`): 200 empty, 400 `invalid_token` for one it does not know.
#[handler]
pub(super) async fn revoke_token(req: &Request, body: Body, shared: Data<&Arc<Social>>) -> Response {
    let p = params(req, body).await;
    let token = p.get("token").cloned().unwrap_or_default();
    let known = {
        let tokens = shared.tokens();
        let key = ("google", token.clone());
        tokens.access.contains_key(&key) || tokens.refresh.contains_key(&key)
    };
    if !known {
        return reply(
            400,
            &json!({"error": "invalid_token", "error_description": "Token expired or revoked"}),
        );
    }
    revoke(&shared, "google", &token);
    reply(200, &json!({}))
}

/// `GET /oauth2/v3/certs`: Google's JWKS.
#[handler]
pub(super) fn certs(shared: Data<&Arc<Social>>) -> Response {
    jwks(&shared.google_signer)
}

/// `POST /emulator/google/tokens {"sub"?, "email"?, "name"?, "client_id"?, "nonce"?}`: an access
/// token and an id_token, as the Google SDK hands them to an app.
#[handler]
pub(super) async fn mint(body: Body, shared: Data<&Arc<Social>>) -> Response {
    let request = json_body(body).await;
    let client_id = request["client_id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| shared.config.google.client_ids.first().cloned())
        .unwrap_or_default();
    let user = json!({
        "sub": request["sub"].as_str().unwrap_or("108204268033311374519"),
        "email": request["email"].as_str().unwrap_or("google.user@gmail.com"),
        "email_verified": true,
        "name": request["name"].as_str().unwrap_or("Google User"),
    });
    let grant = Grant {
        user: user.clone(),
        client_id: client_id.clone(),
    };
    let (access, _) = issue(&shared, "google", &grant, false);
    let issued = now();
    let mut claims = user;
    claims["iss"] = json!(GOOGLE_ISSUER);
    claims["aud"] = json!(client_id);
    claims["azp"] = json!(client_id);
    claims["iat"] = json!(issued);
    claims["exp"] = json!(issued + 3600);
    if let Some(nonce) = request["nonce"].as_str() {
        claims["nonce"] = json!(nonce);
    }
    let id_token = lock(&shared.google_signer).sign(&claims, None).unwrap_or_default();
    reply(
        200,
        &json!({"access_token": access, "id_token": id_token, "expires_in": 3599}),
    )
}
