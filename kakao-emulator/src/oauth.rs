//! The `kauth` host: `/oauth/authorize` (a user picker, or `login_hint` for scripts) and
//! `/oauth/token` (codes with PKCE, refresh with Kakao's rotation rule). kakao-api.md section 4.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use poem::{
    Body, IntoResponse, Request, Response, handler,
    http::StatusCode,
    web::{Data, Html},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use crate::{
    KeyKind, Shared,
    config::secret_eq,
    grants::{Code, Grant, TokenSet},
    json_response,
    kauth_error::KauthError,
    oidc, params, read_body,
};

type Params = HashMap<String, String>;

fn param<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

/// `GET /oauth/authorize`: checks the client and redirect URI, then shows the users to pick
/// from, or with `login_hint=<id or email>` (emulator extension) redirects with a code at once.
#[handler]
pub(super) fn authorize(req: &Request, shared: Data<&Arc<Shared>>) -> Response {
    let p = params(req, &[]);
    authorize_flow(&shared, &p).unwrap_or_else(|e| error_page(e.0, e.1))
}

/// What Kakao's error page shows: a KOE code and a message.
struct PageError(&'static str, &'static str);

fn authorize_flow(shared: &Shared, p: &Params) -> Result<Response, PageError> {
    let client_id = param(p, "client_id").ok_or(PageError("KOE101", "client_id is required"))?;
    let (app, kind) = shared
        .app_by_key(client_id)
        .ok_or(PageError("KOE101", "Not exist client_id: no key of this app"))?;
    let redirect_uri = param(p, "redirect_uri").ok_or(PageError("KOE006", "redirect_uri is required"))?;
    let redirect = Url::parse(redirect_uri)
        .ok()
        .filter(|_| app.allows_redirect(kind, redirect_uri))
        .ok_or(PageError("KOE006", "redirect_uri is not registered for this app key"))?;
    if param(p, "response_type") != Some("code") {
        return Err(PageError("KOE202", "response_type must be code"));
    }
    let state = param(p, "state");
    if param(p, "emulator_cancel").is_some() {
        return Ok(redirect_error(redirect, state, "access_denied", "User denied access"));
    }
    let challenge = param(p, "code_challenge");
    if challenge.is_some() && param(p, "code_challenge_method") != Some("S256") {
        return Ok(redirect_error(
            redirect,
            state,
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    let user = match param(p, "login_hint") {
        Some(hint) => shared
            .users()
            .by_hint(hint)
            .cloned()
            .ok_or(PageError("login_hint", "login_hint names no emulated user"))?,
        None if param(p, "prompt").is_some_and(|v| v.split(',').any(|x| x == "none")) => {
            return Ok(redirect_error(
                redirect,
                state,
                "login_required",
                "user authentication required.",
            ));
        }
        None => return Ok(picker_page(shared, app.app_id, p)),
    };
    let now = Utc::now();
    let mut scopes = user.scopes();
    // Kakao documents comma-separated scopes; its SDK sends them space-separated (kakao-api.md 4.1).
    if param(p, "scope").is_some_and(|s| s.split([',', ' ']).any(|x| x == "openid")) {
        scopes.push("openid".into());
    }
    let code = shared.grants().insert_code(Code {
        grant: Grant {
            user_id: user.id(),
            app_id: app.app_id,
            client_id: client_id.to_owned(),
            kind,
            scopes,
            auth_time: now,
        },
        redirect_uri: redirect_uri.to_owned(),
        code_challenge: challenge.map(str::to_owned),
        nonce: param(p, "nonce").map(str::to_owned),
        expires_at: now + shared.config.lifetimes.code,
    });
    Ok(redirect_with(redirect, &[("code", Some(&code)), ("state", state)]))
}

fn redirect_with(mut url: Url, pairs: &[(&str, Option<&str>)]) -> Response {
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in pairs {
            if let Some(v) = v {
                query.append_pair(k, v);
            }
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", url.as_str())
        .finish()
}

fn redirect_error(url: Url, state: Option<&str>, error: &str, description: &str) -> Response {
    redirect_with(
        url,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", state),
        ],
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Kakao shows its own error page (not a redirect) when the client or redirect URI is wrong.
fn error_page(code: &str, message: &str) -> Response {
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Kakao emulator: error</title>\
         <h1>{}</h1><p>{}</p>",
        escape(code),
        escape(message)
    );
    Html(html).with_status(StatusCode::BAD_REQUEST).into_response()
}

/// The login page: one link per user; each repeats the request with `login_hint`.
fn picker_page(shared: &Shared, app_id: i64, p: &Params) -> Response {
    let link = |extra: (&str, &str)| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in p.iter().filter(|(k, _)| *k != "login_hint" && *k != "emulator_cancel") {
            query.append_pair(k, v);
        }
        query.append_pair(extra.0, extra.1);
        escape(&format!("/oauth/authorize?{}", query.finish()))
    };
    let items: String = shared
        .users()
        .all()
        .iter()
        .map(|u| {
            let id = u.id().to_string();
            format!(
                "<li><a href=\"{}\">{}</a> <small>id {id}</small></li>",
                link(("login_hint", &id)),
                escape(&u.label())
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html lang=\"ko\"><meta charset=\"utf-8\"><title>Kakao emulator: log in</title>\
         <h1>Kakao emulator</h1><p>Log in to app {} as:</p><ul>{items}</ul><p><a href=\"{}\">Cancel</a></p></html>",
        app_id,
        link(("emulator_cancel", "1")),
    ))
    .into_response()
}

/// `POST /oauth/token` (form body): `authorization_code` or `refresh_token` (kakao-api.md 4.2, 4.3).
#[handler]
pub(super) async fn token(shared: Data<&Arc<Shared>>, body: Body) -> Result<Response, KauthError> {
    let bytes = read_body(body)
        .await
        .ok_or_else(|| KauthError::invalid_request("unreadable or too large body"))?;
    let p: Params = form_urlencoded::parse(&bytes).into_owned().collect();
    let grant_type = param(&p, "grant_type").ok_or_else(|| KauthError::invalid_request("grant_type is required"))?;
    let client_id = param(&p, "client_id").ok_or_else(|| KauthError::invalid_request("client_id is required"))?;
    authenticate_client(&shared, client_id, param(&p, "client_secret"))?;
    let now = Utc::now();
    let body = match grant_type {
        "authorization_code" => {
            let (set, nonce) = exchange_code(&shared, &p, client_id, now)?;
            token_response(&shared, set, nonce, true, now)?
        }
        "refresh_token" => {
            let token =
                param(&p, "refresh_token").ok_or_else(|| KauthError::invalid_request("refresh_token is required"))?;
            let set = shared
                .grants()
                .refresh(token, &shared.config.lifetimes, now)
                .ok_or_else(|| {
                    KauthError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "expired_or_invalid_refresh_token",
                        Some("KOE322"),
                    )
                })?;
            token_response(&shared, set, None, false, now)?
        }
        _ => {
            return Err(KauthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
                None,
            ));
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The client secret is a REST-API-key setting; SDK logins with the native or JS key send none.
fn authenticate_client(shared: &Shared, client_id: &str, secret: Option<&str>) -> Result<KeyKind, KauthError> {
    let (app, kind) = shared.app_by_key(client_id).ok_or_else(|| {
        KauthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("Not exist client_id [{client_id}]"),
            Some("KOE101"),
        )
    })?;
    if let (KeyKind::Rest, Some(expected)) = (kind, &app.client_secret)
        && !secret.is_some_and(|s| secret_eq(expected, s))
    {
        return Err(KauthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Bad client credentials",
            Some("KOE010"),
        ));
    }
    Ok(kind)
}

fn exchange_code(
    shared: &Shared,
    p: &Params,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<(TokenSet, Option<String>), KauthError> {
    let code = param(p, "code").ok_or_else(|| KauthError::invalid_request("code is required"))?;
    let not_found = || {
        KauthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            &format!("authorization code not found for code={code}"),
            Some("KOE320"),
        )
    };
    let taken = shared.grants().take_code(code, now);
    let found = taken.filter(|c| c.grant.client_id == client_id).ok_or_else(not_found)?;
    if param(p, "redirect_uri") != Some(found.redirect_uri.as_str()) {
        return Err(KauthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "Redirect URI mismatch.",
            Some("KOE303"),
        ));
    }
    if let Some(challenge) = &found.code_challenge {
        let verifier = param(p, "code_verifier").unwrap_or_default();
        let computed = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            Sha256::digest(verifier.as_bytes()),
        );
        if !bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
            return Err(KauthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "code_verifier does not match the code_challenge",
                None,
            ));
        }
    }
    let set = shared.grants().issue(found.grant, &shared.config.lifetimes, now);
    Ok((set, found.nonce))
}

/// The token endpoint's body; also what `/emulator/tokens` answers. `scope` only on code
/// exchange, `refresh_token` only when one was issued, `id_token` only for `openid` grants.
pub(super) fn token_response(
    shared: &Shared,
    set: TokenSet,
    nonce: Option<String>,
    with_scope: bool,
    now: DateTime<Utc>,
) -> Result<Value, KauthError> {
    let user = shared.user(set.grant.user_id).ok_or_else(KauthError::server_error)?;
    // Kakao reports one second less than the lifetime (21599, 5183999: kakao-api.md 4.2).
    let secs = |d: std::time::Duration| d.as_secs().saturating_sub(1);
    let mut body = json!({
        "token_type": "bearer",
        "access_token": set.access_token,
        "expires_in": secs(set.expires_in),
    });
    if let Some((refresh, lifetime)) = &set.refresh {
        body["refresh_token"] = json!(refresh);
        body["refresh_token_expires_in"] = json!(secs(*lifetime));
    }
    if set.grant.has_openid() {
        body["id_token"] = json!(oidc::id_token(shared, &set.grant, &user, nonce, now)?);
    }
    if with_scope && !set.grant.scopes.is_empty() {
        body["scope"] = json!(set.grant.scopes.join(" "));
    }
    Ok(body)
}
