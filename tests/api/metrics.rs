//! `/metrics`: Prometheus series for requests, logins, refreshes and refusals, with route
//! templates (never raw paths) as labels; on its own listener or off when configured so.

use std::time::Duration;

use authbridge::config::Rate;
use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_app_with};

async fn scrape(app: &TestApp, address: &str) -> String {
    let response = app.client.get(format!("{address}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

fn assert_series(text: &str, series: &str) {
    assert!(
        text.lines().any(|line| line == series),
        "no line `{series}` in:\n{text}"
    );
}

#[tokio::test]
async fn a_login_a_refresh_and_a_throttled_login_show_up_with_their_labels() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.login_per_account = Rate::new(1, Duration::from_secs(3600));
    })
    .await;
    let login = app.login_new_kakao_user(4242).await;
    let refresh = login["refresh"].as_str().unwrap();
    assert_eq!(app.refresh(refresh).await.status(), 200);
    assert_eq!(
        app.refresh(refresh).await.status(),
        200,
        "a retry within the grace interval"
    );
    app.create_local_user("alice", "alice@example.com", "correct horse")
        .await;
    let wrong_password = json!({"username": "alice", "password": "nope"});
    assert_eq!(app.post_json("/rest-auth/login/", &wrong_password).await.status(), 400);
    assert_eq!(app.post_json("/rest-auth/login/", &wrong_password).await.status(), 429);
    let secret_path = "/rest-auth/socialaccounts/98765/disconnect/";
    assert_eq!(app.post_empty(secret_path).await.status(), 401);
    assert_eq!(app.get("/no/such/path-with-a-token-abc123").await.status(), 404);

    let text = scrape(&app, &app.address).await;

    for series in [
        r#"authbridge_http_request_duration_seconds_count{route="/accounts/rest-auth/{provider}/",method="POST",status="2xx"} 1"#,
        r#"authbridge_http_request_duration_seconds_count{route="/rest-auth/token/refresh/",method="POST",status="2xx"} 2"#,
        r#"authbridge_http_request_duration_seconds_count{route="/rest-auth/login/",method="POST",status="4xx"} 2"#,
        r#"authbridge_http_request_duration_seconds_count{route="/rest-auth/socialaccounts/{id}/disconnect/",method="POST",status="4xx"} 1"#,
        r#"authbridge_http_request_duration_seconds_count{route="unmatched",method="GET",status="4xx"} 1"#,
        r#"authbridge_provider_call_duration_seconds_count{provider="kakao",endpoint="access_token",outcome="ok"} 1"#,
        r#"authbridge_logins_total{provider="kakao",result="ok"} 1"#,
        r#"authbridge_logins_total{provider="password",result="invalid_credentials"} 1"#,
        r#"authbridge_logins_total{provider="password",result="throttled"} 1"#,
        r#"authbridge_refreshes_total{result="rotated"} 1"#,
        r#"authbridge_refreshes_total{result="grace_replay"} 1"#,
        r#"authbridge_rate_limit_refusals_total{action="login",scope="account"} 1"#,
    ] {
        assert_series(&text, series);
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with(r#"authbridge_db_pool_connections{state="idle"} "#)),
        "{text}"
    );
    assert!(text.contains("authbridge_token_writer_batch_size_count "), "{text}");
    assert!(text.contains("authbridge_token_writer_queue_depth "), "{text}");
    assert!(
        !text.contains("98765") && !text.contains("abc123"),
        "raw paths never become labels"
    );
}

#[tokio::test]
async fn a_failed_provider_call_is_counted_by_outcome() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    app.kakao.is_down();
    let response = app.post_kakao_login(&json!({"access_token": "tok"})).await;
    assert_eq!(response.status(), 502);

    let text = scrape(&app, &app.address).await;
    assert_series(
        &text,
        r#"authbridge_provider_call_duration_seconds_count{provider="kakao",endpoint="access_token",outcome="unavailable"} 1"#,
    );
    assert_series(
        &text,
        r#"authbridge_logins_total{provider="kakao",result="provider_unavailable"} 1"#,
    );
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_public_port() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.metrics.listen = Some("127.0.0.1:0".parse().unwrap())
    })
    .await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/metrics").await.status(), 404, "not on the public port");

    let metrics = app.metrics_address.clone().expect("a metrics listener");
    let text = scrape(&app, &metrics).await;
    assert_series(
        &text,
        r#"authbridge_http_request_duration_seconds_count{route="/healthz",method="GET",status="2xx"} 1"#,
    );
    let other = app.client.get(format!("{metrics}/healthz")).send().await.unwrap();
    assert_eq!(other.status(), 404, "only /metrics there");
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.metrics.enabled = false).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    crate::helpers::assert_error(app.get("/metrics").await, 404, "not_found").await;
}
