//! `authbridge emulate kakao` (the CLI over the kakao-emulator crate) and authbridge logging in
//! against an emulator with its default app, as a developer runs them. The emulator's own
//! behaviour is tested in kakao-emulator/tests/.

use kakao_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

use crate::helpers::{Backend, assert_error, spawn_app_with};

/// The built-in user with every field.
const FULL: i64 = 3_095_134_389;

/// `POST /emulator/tokens`: what a login at the emulator would have returned.
async fn mint(base: &url::Url, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(base.join("/emulator/tokens").unwrap())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "mint {body}");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authbridge_logs_in_with_an_emulator_token_and_refuses_a_foreign_apps_token() {
    let emulator = Emulator::build(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator builds");
    let base = emulator.base_url().clone();
    tokio::spawn(emulator.run_until_stopped(std::future::pending()));
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.kakao.api_base = base.clone();
        s.kakao.auth_base = base.clone();
    })
    .await;
    let token = mint(&base, json!({"user_id": FULL})).await["access_token"].clone();
    let foreign = mint(&base, json!({"user_id": FULL, "app_id": 9999})).await;

    let response = app.post_kakao_login(&json!({"access_token": token})).await;
    let refused = app
        .post_kakao_login(&json!({"access_token": foreign["access_token"]}))
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["access"].is_string() && body["refresh"].is_string(), "{body}");
    assert_eq!(body["user"]["email"], "sample@sample.com");
    assert_eq!(
        app.kakao.calls("/v2/user/me"),
        0,
        "the test app's own emulator is not used"
    );
    assert_error(refused, 400, "provider_app_mismatch").await;
}

#[test]
fn emulate_kakao_runs_without_a_database_and_prints_its_app_and_users() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(["emulate", "kakao", "--port", "0"])
        .env("AUTHBRIDGE_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run authbridge");
    let stdout = child.stdout.take().unwrap();
    let banner: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .take_while(|line| !line.contains("mint a token"))
        .collect();
    child.kill().ok();
    child.wait().ok();

    let banner = banner.join("\n");
    assert!(
        banner.contains("app id 1234") && banner.contains("emulator-rest-key"),
        "{banner}"
    );
    assert!(
        banner.contains("3095134389") && banner.contains("1376016924426814086"),
        "{banner}"
    );
}
