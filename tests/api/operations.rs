//! Probes, docs, and the committed OpenAPI spec.

use serde_json::Value;

use crate::helpers::{Backend, on_every_backend, spawn_app};

on_every_backend!(healthz_and_readyz_answer_ok);

async fn healthz_and_readyz_answer_ok(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app(Backend::Sqlite).await;
    let other = authbridge::app::App::build(app.settings.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", other.port());
    let pool = other.state().db.clone();
    tokio::spawn(other.run_until_stopped(std::future::pending()));
    pool.close_by_ref().await.unwrap();

    let response = app.client.get(format!("{address}/readyz")).send().await.unwrap();
    crate::helpers::assert_error(response, 503, "service_unavailable").await;
}

#[tokio::test]
async fn docs_and_the_served_spec_are_there() {
    let app = spawn_app(Backend::Sqlite).await;
    let docs = app.get("/docs").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("SwaggerUIBundle"));
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(
        spec["paths"]["/accounts/rest-auth/{provider}/"]["post"].is_object(),
        "Django paths keep their slash"
    );
    assert!(spec["components"]["securitySchemes"]["Bearer"].is_object());
}

#[test]
fn the_committed_spec_matches_the_code() {
    let committed = include_str!("../../openapi/openapi.json");
    let generated = authbridge::api::spec::spec_json();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json` and commit it"
    );
}

/// The container's HEALTHCHECK: the binary asks `/healthz` on its `listen` address.
#[tokio::test]
async fn the_healthcheck_command_passes_against_a_live_server_and_fails_without_one() {
    let app = spawn_app(Backend::Sqlite).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    // The server runs on this test's runtime: the child is waited for off it.
    let healthcheck = |listen: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_authbridge"))
                .arg("healthcheck")
                .env("AUTHBRIDGE_LISTEN", listen)
                .env("AUTHBRIDGE_DATABASE_URL", "sqlite::memory:")
                .output()
                .unwrap()
        })
    };
    let up = healthcheck(format!("0.0.0.0:{port}")).await.unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = healthcheck(format!("127.0.0.1:{closed_port}")).await.unwrap();
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("/healthz"));
}
