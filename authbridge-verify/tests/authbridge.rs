//! Against a running authbridge: its access tokens verify from its published key set, its
//! refresh tokens do not, and the poem extractor answers as authbridge does.

use std::time::Duration;

use authbridge::{app::App, config::Settings, store};
use authbridge_verify::{Authenticated, Verifier, VerifierConfig, VerifyError};
use poem::{EndpointExt, Route, get, handler, test::TestClient};
use secrecy::SecretString;
use serde_json::{Value, json};

struct Authbridge {
    base: String,
    _dir: tempfile::TempDir,
}

async fn start_authbridge() -> Authbridge {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("authbridge.db").display());
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.url = SecretString::from(database_url.clone());
    let app = App::build(settings.clone()).await.expect("authbridge builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let db = store::connect(&settings.database.url, 1, store::Checkpoints::OnCommit)
        .await
        .unwrap();
    let password_hash = authbridge::password::hash(&SecretString::from("correct horse battery".to_owned()))
        .await
        .unwrap();
    store::users::insert_local(
        &db,
        store::users::NewLocalUser {
            username: "alice",
            email: "alice@example.com",
            password_hash,
            is_staff: false,
            is_superuser: false,
        },
    )
    .await
    .unwrap();
    Authbridge { base, _dir: dir }
}

async fn token_pair(base: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/token/"))
        .json(&json!({"username": "alice", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[handler]
fn whoami(Authenticated(claims): Authenticated) -> String {
    claims.user_id.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authbridges_access_tokens_verify_and_its_refresh_tokens_do_not() {
    let authbridge = start_authbridge().await;
    let pair = token_pair(&authbridge.base).await;
    let verifier = Verifier::new(VerifierConfig {
        http_timeout: Duration::from_secs(5),
        ..VerifierConfig::new(&authbridge.base)
    });

    let claims = verifier.verify(pair["access"].as_str().unwrap()).await.unwrap();
    assert_eq!(claims.token_type, "access");
    assert_eq!(claims.sub.as_deref(), Some(claims.user_id.to_string().as_str()));
    assert!(matches!(
        verifier.verify(pair["refresh"].as_str().unwrap()).await,
        Err(VerifyError::WrongType)
    ));

    let api = TestClient::new(Route::new().at("/whoami", get(whoami)).data(verifier));
    let ok = api
        .get("/whoami")
        .header("authorization", format!("Bearer {}", pair["access"].as_str().unwrap()))
        .send()
        .await;
    ok.assert_status_is_ok();
    ok.assert_text(claims.user_id.to_string()).await;
    let refused = api
        .get("/whoami")
        .header("authorization", format!("Bearer {}", pair["refresh"].as_str().unwrap()))
        .send()
        .await;
    refused.assert_status(poem::http::StatusCode::UNAUTHORIZED);
    refused.assert_header("www-authenticate", r#"Bearer realm="api""#);
    refused
        .assert_json(json!({"detail": "Token is invalid or expired", "code": "token_not_valid"}))
        .await;
    let anonymous = api.get("/whoami").send().await;
    anonymous.assert_status(poem::http::StatusCode::UNAUTHORIZED);
}
