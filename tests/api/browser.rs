//! Browser-facing headers: CORS only for configured origins (preflights answered, credentials
//! only with explicit origins), security headers on every answer, `no-store` on token answers
//! (RFC 6749 5.1), HSTS when configured, and Swagger UI still served whole.

use std::{process::Command, time::Duration};

use reqwest::{Method, Response};

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with};

const APP_ORIGIN: &str = "https://app.example.com";

fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Every value of a header that may come as several lines (`Vary`), split at commas.
fn values(response: &Response, name: &str) -> Vec<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect()
}

async fn preflight(app: &TestApp, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url("/rest-auth/token/refresh/"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization")
        .send()
        .await
        .unwrap()
}

async fn post_with_origin(app: &TestApp, origin: &str) -> Response {
    app.client
        .post(app.url("/rest-auth/token/verify/"))
        .header("origin", origin)
        .json(&serde_json::json!({"token": "not-a-token"}))
        .send()
        .await
        .unwrap()
}

fn assert_security_headers(response: &Response, what: &str) {
    assert_eq!(header(response, "x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(header(response, "referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(header(response, "x-frame-options"), Some("DENY"), "{what}");
}

#[tokio::test]
async fn every_answer_has_the_security_headers_and_token_answers_are_never_stored() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = "token-77";
    app.kakao.accepts_token(token, crate::kakao::minimal_user(77));

    let login = app.post_kakao_login(&serde_json::json!({"access_token": token})).await;
    assert_eq!(login.status(), 200);
    assert_security_headers(&login, "login");
    assert_eq!(header(&login, "cache-control"), Some("no-store"), "RFC 6749 5.1");
    assert_eq!(header(&login, "pragma"), Some("no-cache"), "RFC 6749 5.1");
    assert_eq!(
        header(&login, "strict-transport-security"),
        None,
        "no HSTS unless configured"
    );
    let refresh_token = login.json::<serde_json::Value>().await.unwrap()["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let refreshed = app.refresh(&refresh_token).await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(header(&refreshed, "cache-control"), Some("no-store"), "refresh");

    for (what, response) in [
        ("healthz", app.get("/healthz").await),
        ("unknown path", app.get("/nowhere/").await),
        ("401", app.get("/rest-auth/user/").await),
        ("405", app.get("/rest-auth/token/refresh/").await),
        ("spec", app.get("/openapi.json").await),
    ] {
        assert_security_headers(&response, what);
        assert_eq!(header(&response, "cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{what}: no CORS by default"
        );
    }
}

#[tokio::test]
async fn hsts_is_sent_when_configured() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.browser.hsts_max_age = Some(Duration::from_secs(365 * 86_400))
    })
    .await;
    for path in ["/healthz", "/nowhere/"] {
        let response = app.get(path).await;
        assert_eq!(
            header(&response, "strict-transport-security"),
            Some("max-age=31536000"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors_at_all() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = preflight(&app, APP_ORIGIN).await;
    assert_eq!(response.status(), 405, "no preflight handling");
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    assert_eq!(header(&response, "access-control-allow-methods"), None);
    let response = post_with_origin(&app, APP_ORIGIN).await;
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_listed_origin_gets_its_preflight_answered_and_may_read_answers() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.browser.cors_allowed_origins = vec![APP_ORIGIN.into()]
    })
    .await;

    let response = preflight(&app, APP_ORIGIN).await;
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(APP_ORIGIN));
    let methods = values(&response, "access-control-allow-methods");
    assert!(methods.contains(&"post".to_owned()), "{methods:?}");
    let headers = values(&response, "access-control-allow-headers");
    for wanted in ["content-type", "authorization", "x-csrftoken"] {
        assert!(headers.contains(&wanted.to_owned()), "{wanted} in {headers:?}");
    }
    assert_eq!(header(&response, "access-control-max-age"), Some("3600"));
    assert_eq!(
        header(&response, "access-control-allow-credentials"),
        None,
        "credentials are off"
    );
    assert!(values(&response, "vary").contains(&"origin".to_owned()));
    assert_security_headers(&response, "preflight");

    let response = post_with_origin(&app, APP_ORIGIN).await;
    assert_eq!(response.status(), 401, "the request itself is answered as always");
    assert_eq!(header(&response, "access-control-allow-origin"), Some(APP_ORIGIN));
    assert!(values(&response, "access-control-expose-headers").contains(&"x-request-id".to_owned()));
    assert!(values(&response, "vary").contains(&"origin".to_owned()));
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_cors_headers_but_the_same_answer() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.browser.cors_allowed_origins = vec![APP_ORIGIN.into()]
    })
    .await;

    let response = preflight(&app, "https://evil.example").await;
    assert_eq!(response.status(), 204);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        None,
        "the browser stops here"
    );

    let response = post_with_origin(&app, "https://evil.example").await;
    assert_eq!(
        response.status(),
        401,
        "not refused outright: same-origin pages send Origin too"
    );
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    assert!(
        values(&response, "vary").contains(&"origin".to_owned()),
        "caches keep origins apart"
    );
}

#[tokio::test]
async fn credentials_go_only_with_an_explicit_origin() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.browser.cors_allowed_origins = vec![APP_ORIGIN.into()];
        s.browser.cors_allow_credentials = true;
    })
    .await;
    for response in [
        preflight(&app, APP_ORIGIN).await,
        post_with_origin(&app, APP_ORIGIN).await,
    ] {
        assert_eq!(header(&response, "access-control-allow-origin"), Some(APP_ORIGIN));
        assert_eq!(header(&response, "access-control-allow-credentials"), Some("true"));
    }
    let other = post_with_origin(&app, "https://evil.example").await;
    assert_eq!(header(&other, "access-control-allow-credentials"), None);

    let any = spawn_app_with(Backend::Sqlite, |s| s.browser.cors_allowed_origins = vec!["*".into()]).await;
    let response = post_with_origin(&any, "https://anyone.example").await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
}

#[test]
fn the_server_refuses_to_start_with_any_origin_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(["migrate"])
        .env(
            "AUTHBRIDGE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("cors.db").display()),
        )
        .env("AUTHBRIDGE_CORS_ALLOWED_ORIGINS", "*")
        .env("AUTHBRIDGE_CORS_ALLOW_CREDENTIALS", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("AUTHBRIDGE_CORS_ALLOW_CREDENTIALS"), "{stderr}");

    let bad_origin = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(["migrate"])
        .env(
            "AUTHBRIDGE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("cors.db").display()),
        )
        .env("AUTHBRIDGE_CORS_ALLOWED_ORIGINS", "https://app.example.com/login")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad_origin.stderr);
    assert!(!bad_origin.status.success());
    assert!(
        stderr.contains("CORS_ALLOWED_ORIGINS") && stderr.contains("not an origin"),
        "{stderr}"
    );
}

#[tokio::test]
async fn swagger_ui_is_served_whole_with_cors_and_the_headers_on() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.browser.cors_allowed_origins = vec![APP_ORIGIN.into()];
        s.browser.hsts_max_age = Some(Duration::from_secs(60));
    })
    .await;
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(header(&docs, "content-type").unwrap().starts_with("text/html"));
    assert_eq!(
        header(&docs, "content-security-policy"),
        None,
        "its inline script must run"
    );
    let html = docs.text().await.unwrap();
    // Its script and styles are inline: nothing else to load, from us or elsewhere.
    assert!(
        html.contains("SwaggerUIBundle") && html.contains("<style"),
        "inline assets"
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no outside assets"
    );
    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status(), 200);
    assert!(spec.json::<serde_json::Value>().await.unwrap()["paths"].is_object());
    // "Try it out" posts from the page's own origin, which need not be listed.
    let same_origin = post_with_origin(&app, &app.address).await;
    assert_eq!(same_origin.status(), 401);
}
