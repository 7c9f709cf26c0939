//! Sign in with Apple (issue 22, docs/providers.md 3): id_tokens against Apple's keys (nonce raw
//! or SHA-256 hex), codes exchanged with the ES256 client secret we sign, the name of the first
//! authorization stored then, the refresh token revoked on deletion, and Apple's notifications.

use entity::{social_account, user};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with},
    kakao::NEXT_SIGNING_KEY,
    providers::{APPLE_BUNDLE_ID, APPLE_ISSUER, APPLE_SERVICES_ID, apple_claims, apple_id_token, sha256_hex},
};

on_every_backend!(
    apple_code_login_stores_the_first_name_once_and_keeps_the_refresh_token,
    apples_consent_revoked_notification_unlinks_and_revokes,
);

async fn apple_code_login_stores_the_first_name_once_and_keeps_the_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_apple_app().await;
    app.social.apple_issues_code(
        "c-1",
        apple_claims("000100.abc.0001"),
        APPLE_BUNDLE_ID,
        Some(&sha256_hex("raw-1")),
    );
    let user_json = json!({"name": {"firstName": "John", "lastName": "Appleseed"}}).to_string();
    let first = app
        .post_login("apple", &json!({"code": "c-1", "nonce": "raw-1", "user": user_json}))
        .await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["user"]["first_name"], "John");
    assert_eq!(first["user"]["last_name"], "Appleseed");
    assert!(
        first["user"]["email"]
            .as_str()
            .unwrap()
            .ends_with("@privaterelay.appleid.com")
    );
    let kept = app.kept_tokens().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, "refresh_token");
    assert!(kept[0].1.starts_with("apple-refresh-"));

    // Later logins carry no name (Apple gives it once); one sent anyway does not overwrite.
    app.social
        .apple_issues_code("c-2", apple_claims("000100.abc.0001"), APPLE_BUNDLE_ID, None);
    let later: Value = app
        .post_login(
            "apple",
            &json!({"code": "c-2", "user": {"name": {"firstName": "Mallory"}}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["user"]["pk"], first["user"]["pk"]);
    let row = user::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!((row.first_name.as_str(), row.last_name.as_str()), ("John", "Appleseed"));
    let account = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(account.uid, "000100.abc.0001");
}

async fn notify(app: &TestApp, claims: &Value) -> reqwest::Response {
    let payload = app.social.sign_apple(claims);
    app.post_json("/accounts/apple/notifications/", &json!({"payload": payload}))
        .await
}

fn event(kind: &str, sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    let events = json!({"type": kind, "sub": sub, "event_time": now * 1000,
                        "email": "relay@privaterelay.appleid.com", "is_private_email": "true"});
    json!({"iss": APPLE_ISSUER, "aud": APPLE_BUNDLE_ID, "iat": now, "jti": "j-1", "events": events.to_string()})
}

async fn apples_consent_revoked_notification_unlinks_and_revokes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_apple_app().await;
    app.social
        .apple_issues_code("c-9", apple_claims("000200.def.0002"), APPLE_BUNDLE_ID, None);
    let login: Value = app
        .post_login("apple", &json!({"code": "c-9"}))
        .await
        .json()
        .await
        .unwrap();

    let disabled = notify(&app, &event("email-disabled", "000200.def.0002")).await;
    assert_eq!(disabled.status(), 200);
    let account = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(account.extra_data["email_forwarding_disabled"], true);

    let mut forged_claims = event("consent-revoked", "000200.def.0002");
    forged_claims["aud"] = json!("com.someone.else");
    assert_error(notify(&app, &forged_claims).await, 401, "not_authenticated").await;
    let forged = app
        .kakao
        .sign_id_token(&event("consent-revoked", "000200.def.0002"))
        .unwrap();
    let forged = app
        .post_json("/accounts/apple/notifications/", &json!({"payload": forged}))
        .await;
    assert_error(forged, 401, "not_authenticated").await;
    let garbage = app
        .post_json("/accounts/apple/notifications/", &json!({"payload": ""}))
        .await;
    assert_error(garbage, 401, "not_authenticated").await;
    assert_eq!(app.count_accounts().await, 1, "nothing changed by forged notifications");

    assert_eq!(
        notify(&app, &event("consent-revoked", "000200.def.0002"))
            .await
            .status(),
        200
    );
    assert_eq!(
        notify(&app, &event("consent-revoked", "000200.def.0002"))
            .await
            .status(),
        200,
        "idempotent"
    );
    assert_eq!(app.count_accounts().await, 0);
    assert_eq!(app.social.revocations().len(), 1, "the kept refresh token was revoked");
    assert_error(
        app.refresh(login["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apple_id_tokens_are_checked_for_nonce_audience_expiry_and_keys() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_apple_app().await;
    let login = |body: Value| {
        let app = &app;
        async move { app.post_login("apple", &body).await }
    };
    let hashed = apple_id_token(&app.social, "000300.a.1", APPLE_BUNDLE_ID, Some(&sha256_hex("raw")));
    assert_eq!(
        login(json!({"id_token": hashed, "nonce": "raw"})).await.status(),
        200,
        "hashed nonce"
    );
    let raw = apple_id_token(&app.social, "000300.a.1", APPLE_SERVICES_ID, Some("raw"));
    assert_eq!(
        login(json!({"id_token": raw, "nonce": "raw"})).await.status(),
        200,
        "raw nonce, Services id"
    );
    let with_access = apple_id_token(&app.social, "000300.a.1", APPLE_BUNDLE_ID, Some("raw"));
    let dj_rest_auth =
        login(json!({"access_token": "apple-access-unused", "id_token": with_access, "nonce": "raw"})).await;
    assert_eq!(dj_rest_auth.status(), 200, "dj-rest-auth's access_token + id_token");
    assert_error(
        login(json!({"access_token": "alone"})).await,
        400,
        "invalid_provider_token",
    )
    .await;

    // Apple rotates its key: a token under the new kid is verified after one refetch.
    app.social.rotate_key("apple", NEXT_SIGNING_KEY.clone());
    let rotated = apple_id_token(&app.social, "000300.a.1", APPLE_BUNDLE_ID, Some("raw"));
    assert_eq!(
        login(json!({"id_token": rotated, "nonce": "raw"})).await.status(),
        200,
        "rotated key"
    );

    let now = chrono::Utc::now().timestamp();
    let mut expired = apple_claims("000300.a.1");
    expired["iss"] = json!(APPLE_ISSUER);
    expired["aud"] = json!(APPLE_BUNDLE_ID);
    expired["iat"] = json!(now - 1200);
    expired["exp"] = json!(now - 600);
    expired["nonce"] = json!("raw");
    let mut foreign = expired.clone();
    foreign["aud"] = json!("com.other.app");
    foreign["exp"] = json!(now + 600);
    let mut no_nonce = foreign.clone();
    no_nonce["aud"] = json!(APPLE_BUNDLE_ID);
    no_nonce.as_object_mut().unwrap().remove("nonce");
    for (why, token) in [
        (
            "wrong nonce",
            apple_id_token(&app.social, "000300.a.1", APPLE_BUNDLE_ID, Some("other")),
        ),
        ("expired", app.social.sign_apple(&expired)),
        ("another app's audience", app.social.sign_apple(&foreign)),
        ("nonce missing", app.social.sign_apple(&no_nonce)),
        ("unknown kid", app.social.sign_with_kid("apple", &foreign, "unknown")),
    ] {
        let refused = login(json!({"id_token": token, "nonce": "raw"})).await;
        assert_eq!(refused.status(), 400, "{why}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "invalid_provider_token", "{why}");
    }
    assert_eq!(app.count_users().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apple_code_failures_follow_the_kakao_contract() {
    // The app's key changes mid-test: no cached copy of it.
    let app = spawn_app_with(Backend::Sqlite, |s| s.database.cache_ttl = std::time::Duration::ZERO).await;
    app.add_apple_app().await;
    let code = |c: &str| json!({"code": c});
    assert_error(
        app.post_login("apple", &code("unknown")).await,
        400,
        "invalid_provider_code",
    )
    .await;
    app.social
        .apple_issues_code("c-x", apple_claims("000400.b.1"), APPLE_BUNDLE_ID, None);
    app.social.is_down();
    assert_error(app.post_login("apple", &code("c-x")).await, 502, "provider_unavailable").await;
    app.social.is_up();
    app.social.is_slow(std::time::Duration::from_secs(3));
    assert_error(app.post_login("apple", &code("c-x")).await, 504, "provider_timeout").await;
    app.social.is_up();
    assert_eq!(app.count_users().await, 0, "nothing written");

    // Our client secret signed with a key Apple does not know: an operator must act.
    let stranger = kakao_emulator::social::AppleKey::generate(crate::providers::APPLE_KEY_ID).unwrap();
    let p8 = secrecy::ExposeSecret::expose_secret(stranger.p8_pem()).to_owned();
    let app_row = authbridge::store::social::list_apps(&app.db).await.unwrap();
    let apple = app_row.iter().find(|a| a.provider == "apple").unwrap();
    authbridge::store::social::upsert_app(
        &app.db,
        &app.write_turn,
        authbridge::store::social::NewSocialApp {
            provider: "apple".into(),
            name: "apple".into(),
            client_id: apple.client_id.clone(),
            secret: secrecy::SecretString::from(p8),
            admin_key: secrecy::SecretString::from(""),
            app_ids: vec![],
            client_keys: apple.client_keys.clone(),
            sites: vec![1],
        },
    )
    .await
    .unwrap();
    app.social
        .apple_issues_code("c-y", apple_claims("000400.b.1"), APPLE_BUNDLE_ID, None);
    assert_error(
        app.post_login("apple", &code("c-y")).await,
        502,
        "provider_misconfigured",
    )
    .await;
    assert_eq!(app.count_users().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socialapp_add_registers_an_apple_app_whose_client_secret_apple_accepts() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let p8 = dir.path().join("AuthKey_KEY1234567.p8");
    std::fs::write(
        &p8,
        secrecy::ExposeSecret::expose_secret(crate::providers::TEAM_KEY.p8_pem()),
    )
    .unwrap();
    let db = secrecy::ExposeSecret::expose_secret(&app.settings.database.url).to_owned();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args([
            "socialapp",
            "add",
            "--provider",
            "apple",
            "--client-id",
            APPLE_BUNDLE_ID,
        ])
        .args([
            "--client-key",
            APPLE_SERVICES_ID,
            "--team-id",
            crate::providers::APPLE_TEAM_ID,
        ])
        .args(["--key-id", crate::providers::APPLE_KEY_ID, "--secret-file"])
        .arg(&p8)
        .env("AUTHBRIDGE_DATABASE_URL", &db)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "the key is never printed: {text}");

    app.social
        .apple_issues_code("c-cli", apple_claims("000500.c.1"), APPLE_BUNDLE_ID, None);
    let login = app.post_login("apple", &json!({"code": "c-cli"})).await;
    assert_eq!(
        login.status(),
        200,
        "Apple accepted the client secret signed with the registered key"
    );
}
