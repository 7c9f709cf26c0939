//! The Django stack's other token endpoints, and HS256 interoperability with PyJWT/simplejwt.

use entity::{auth_token, user};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with};

on_every_backend!(
    simplejwt_obtain_refresh_verify_and_blacklist_work,
    drf_obtain_auth_token_keys_are_stored_hashed_and_authenticate,
    a_django_pbkdf2_user_logs_in_and_the_hash_is_upgraded,
);

async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn simplejwt_obtain_refresh_verify_and_blacklist_work(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_local_user("alice", "alice@example.com", "s3cret-pass").await;

    let pair = ok_json(
        app.post_json("/api/token/", &json!({"username": "alice", "password": "s3cret-pass"}))
            .await,
    )
    .await;
    assert!(pair["access"].is_string() && pair["refresh"].is_string(), "{pair}");
    assert!(pair.get("user").is_none(), "simplejwt's shape: {pair}");
    let by_email = app
        .post_json(
            "/api/token/",
            &json!({"username": "ALICE@example.com", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(by_email.status(), 200, "email works as the login name");

    for bad in [
        json!({"username": "alice", "password": "wrong"}),
        json!({"username": "nobody", "password": "wrong"}),
    ] {
        let body = assert_error(app.post_json("/api/token/", &bad).await, 401, "no_active_account").await;
        assert_eq!(body["detail"], "No active account found with the given credentials");
    }

    let refreshed = ok_json(
        app.post_json("/api/token/refresh/", &json!({"refresh": pair["refresh"]}))
            .await,
    )
    .await;
    assert!(refreshed["access"].is_string() && refreshed["refresh"].is_string());
    assert!(
        refreshed.get("access_expiration").is_none(),
        "simplejwt's shape: {refreshed}"
    );
    assert_eq!(
        ok_json(
            app.post_json("/api/token/verify/", &json!({"token": refreshed["access"]}))
                .await
        )
        .await,
        json!({})
    );
    assert_eq!(
        ok_json(
            app.post_json("/api/token/blacklist/", &json!({"refresh": refreshed["refresh"]}))
                .await
        )
        .await,
        json!({})
    );
    assert_error(
        app.post_json("/api/token/refresh/", &json!({"refresh": refreshed["refresh"]}))
            .await,
        401,
        "token_not_valid",
    )
    .await;
}

#[tokio::test]
async fn drf_jwt_obtain_verify_and_refresh_keep_their_shapes() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.create_local_user("alice", "", "s3cret-pass").await;

    let token = ok_json(
        app.post_json(
            "/api-jwt-auth/",
            &json!({"username": "alice", "password": "s3cret-pass"}),
        )
        .await,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.get_user("JWT", &token).await.status(), 200);
    let echoed = ok_json(app.post_json("/api-jwt-auth/verify/", &json!({"token": token})).await).await;
    assert_eq!(echoed["token"], token);
    let renewed = ok_json(app.post_json("/api-jwt-auth/refresh/", &json!({"token": token})).await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        crate::jwt::payload(&renewed)["orig_iat"],
        crate::jwt::payload(&token)["iat"],
        "the refresh window is kept"
    );

    let bad = assert_error(
        app.post_json("/api-jwt-auth/", &json!({"username": "alice", "password": "x"}))
            .await,
        400,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        bad["non_field_errors"],
        json!(["Unable to log in with provided credentials."])
    );
    let now = chrono::Utc::now().timestamp();
    let expired = app
        .sign_with_app_key(
            &json!({"token_type": "access", "exp": now - 5, "iat": now - 300, "jti": "x", "user_id": alice.id}),
        )
        .await;
    for path in ["/api-jwt-auth/verify/", "/api-jwt-auth/refresh/"] {
        let body = assert_error(
            app.post_json(path, &json!({"token": expired})).await,
            400,
            "token_not_valid",
        )
        .await;
        assert_eq!(body["non_field_errors"], json!(["Signature has expired."]), "{path}");
        assert_eq!(body["detail"], "Signature has expired.");
    }
    let stale = app
        .sign_with_app_key(&json!({"token_type": "access", "exp": now + 60, "iat": now, "orig_iat": now - 2 * 86_400, "jti": "y", "user_id": alice.id}))
        .await;
    let body = assert_error(
        app.post_json("/api-jwt-auth/refresh/", &json!({"token": stale})).await,
        400,
        "token_not_valid",
    )
    .await;
    assert_eq!(body["non_field_errors"], json!(["Refresh has expired."]));
}

async fn drf_obtain_auth_token_keys_are_stored_hashed_and_authenticate(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_local_user("bob", "", "s3cret-pass").await;
    let first = ok_json(app.obtain_token_key("bob", "s3cret-pass").await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = ok_json(app.obtain_token_key("bob", "s3cret-pass").await).await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    for key in [&first, &second] {
        assert!(key.len() == 40 && key.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
        assert_eq!(app.get_user("Token", key).await.status(), 200);
    }
    let rows = auth_token::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .any(|r| r.key_hash == hex::encode(Sha256::digest(first.as_bytes())))
    );
    assert!(
        rows.iter().all(|r| r.key_hash != first && r.key_hash != second),
        "keys are never stored"
    );
    assert_error(
        app.get_user("Token", "0000000000000000000000000000000000000000").await,
        401,
        "authentication_failed",
    )
    .await;

    let logout = app.logout_token_key(&first).await;
    assert_eq!(logout.status(), 200);
    assert_error(app.get_user("Token", &first).await, 401, "authentication_failed").await;
    assert_eq!(
        app.get_user("Token", &second).await.status(),
        200,
        "only the key logged out is gone"
    );

    let bad = app.obtain_token_key("bob", "nope").await;
    let body = assert_error(bad, 400, "invalid_credentials").await;
    assert_eq!(
        body["non_field_errors"],
        json!(["Unable to log in with provided credentials."])
    );
}

async fn a_django_pbkdf2_user_logs_in_and_the_hash_is_upgraded(backend: Backend) {
    let app = spawn_app(backend).await;
    // Django's PBKDF2PasswordHasher for "lètmein" with salt "seasalt" (see src/password.rs).
    let django_hash = "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=".to_owned();
    let carol = app.insert_user_with_hash("carol", "", django_hash.clone()).await;

    let response = app
        .post_json("/api/token/", &json!({"username": "carol", "password": "lètmein"}))
        .await;

    assert_eq!(response.status(), 200);
    let stored = user::Entity::find_by_id(carol.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .password;
    assert!(stored.starts_with("argon2$argon2id$"), "upgraded: {stored}");
    assert_eq!(
        app.post_json("/api/token/", &json!({"username": "carol", "password": "lètmein"}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_token_type_list_and_unknown_types_are_honoured() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.auth.header_types = vec!["Bearer".into()]).await;
    let access = app.login_new_kakao_user(1).await["access"].as_str().unwrap().to_owned();
    assert_eq!(app.get_user("Bearer", &access).await.status(), 200);
    assert_error(app.get_user("JWT", &access).await, 401, "not_authenticated").await;
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/pyjwt_hs256.json")).unwrap()
}

async fn hs256_app() -> TestApp {
    let secret = vectors()["secret"].as_str().unwrap().to_owned();
    spawn_app_with(Backend::Sqlite, |s| {
        s.jwt.algorithm = authbridge::config::JwtAlgorithm::HS256;
        s.jwt.signing_key = Some(secret.into());
    })
    .await
}

#[tokio::test]
async fn simplejwt_tokens_made_by_pyjwt_are_accepted_in_hs256_mode() {
    let app = hs256_app().await;
    let v = vectors();
    let user = app.create_local_user("django-user", "", "pw-pw-pw-pw").await;
    assert_eq!(
        i64::from(user.id),
        v["user_id"].as_i64().unwrap(),
        "the vectors name user 1"
    );

    assert_eq!(
        app.get_user("Bearer", v["access"].as_str().unwrap()).await.status(),
        200
    );
    let refreshed = app.refresh(v["refresh"].as_str().unwrap()).await;
    assert_eq!(
        refreshed.status(),
        200,
        "a simplejwt refresh token is adopted and rotated"
    );
    assert_error(
        app.get_user("Bearer", v["expired_access"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    assert_error(
        app.get_user("Bearer", v["other_secret_access"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 1);
}

#[tokio::test]
async fn our_hs256_tokens_verify_with_pyjwt() {
    let has_pyjwt = std::process::Command::new("python3")
        .args(["-c", "import jwt"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pyjwt {
        eprintln!("python3 with PyJWT is not available: skipping the PyJWT side (pip install pyjwt)");
        return;
    }
    let app = hs256_app().await;
    let access = app.login_new_kakao_user(1).await["access"].as_str().unwrap().to_owned();

    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/verify_with_pyjwt.py"
        ))
        .args([vectors()["secret"].as_str().unwrap(), &access])
        .output()
        .unwrap();

    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["token_type"], "access");
    assert_eq!(claims, crate::jwt::payload(&access));
}
