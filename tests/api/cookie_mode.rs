//! dj-rest-auth's JWT cookie mode: HttpOnly cookies beside the body, CSRF on unsafe methods,
//! refresh from the cookie, logout clears them; mobile clients are unaffected.

use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, spawn_app_with},
    kakao::minimal_user,
};

async fn cookie_app() -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.cookies.access_name = Some("jwt-auth".into());
        s.cookies.secure = false;
    })
    .await
}

/// name → (value, the whole Set-Cookie line)
fn set_cookies(response: &reqwest::Response) -> std::collections::HashMap<String, (String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), (value.to_owned(), line.to_owned())))
        })
        .collect()
}

#[tokio::test]
async fn a_browser_session_lives_in_httponly_cookies_with_csrf_on_unsafe_methods() {
    let app = cookie_app().await;
    app.kakao.accepts_token("t", minimal_user(1));

    let login = app.post_kakao_login(&json!({"access_token": "t"})).await;
    let cookies = set_cookies(&login);
    let body: Value = login.json().await.unwrap();
    assert!(
        body["access"].is_string(),
        "the body still carries the tokens for mobile clients"
    );
    let (access, access_line) = &cookies["jwt-auth"];
    let (refresh, refresh_line) = &cookies["jwt-refresh-token"];
    let (csrf, csrf_line) = &cookies["csrftoken"];
    assert!(
        access_line.contains("HttpOnly") && access_line.contains("SameSite=Lax"),
        "{access_line}"
    );
    assert!(refresh_line.contains("HttpOnly"));
    assert!(
        !csrf_line.contains("HttpOnly"),
        "the page's script must read the CSRF token"
    );
    let jar = format!("jwt-auth={access}; jwt-refresh-token={refresh}; csrftoken={csrf}");

    let me = app.get_user_with("cookie", &jar).await;
    assert_eq!(me.status(), 200, "GET needs no CSRF header");

    let no_csrf = app.post_with_cookies("/rest-auth/token/refresh/", &jar, None).await;
    assert_error(no_csrf, 403, "csrf_failed").await;
    let refreshed = app
        .post_with_cookies("/rest-auth/token/refresh/", &jar, Some(csrf.as_str()))
        .await;
    assert_eq!(refreshed.status(), 200);
    let renewed = set_cookies(&refreshed);
    assert!(
        renewed.contains_key("jwt-auth") && renewed.contains_key("jwt-refresh-token"),
        "both cookies renewed"
    );
    assert_ne!(renewed["jwt-refresh-token"].0, *refresh, "rotated");

    let jar = format!(
        "jwt-auth={}; jwt-refresh-token={}; csrftoken={csrf}",
        renewed["jwt-auth"].0, renewed["jwt-refresh-token"].0
    );
    let logout = app
        .post_with_cookies("/rest-auth/logout/", &jar, Some(csrf.as_str()))
        .await;
    assert_eq!(logout.status(), 200);
    let cleared = set_cookies(&logout);
    assert!(
        cleared["jwt-auth"].0.is_empty() && cleared["jwt-auth"].1.contains("Max-Age=0"),
        "{:?}",
        cleared["jwt-auth"]
    );
    assert_error(
        app.refresh(&renewed["jwt-refresh-token"].0).await,
        401,
        "token_not_valid",
    )
    .await;
}

#[tokio::test]
async fn mobile_clients_without_cookies_work_the_same_in_cookie_mode() {
    let app = cookie_app().await;
    let body = app.login_new_kakao_user(2).await;
    assert_eq!(
        app.get_user("Bearer", body["access"].as_str().unwrap()).await.status(),
        200
    );
    let refreshed = app.refresh(body["refresh"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200, "a body token needs no CSRF header");
}
