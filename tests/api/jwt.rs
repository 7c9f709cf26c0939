//! Our JWTs (api.md 4): claims, and every way a forged or misused token must fail.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use entity::signing_key;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with};

on_every_backend!(keys_survive_a_restart_and_a_second_instance_accepts_the_tokens);

pub fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn assert_rejected(app: &TestApp, token: &str, what: &str) {
    let body = assert_error(app.get_user("Bearer", token).await, 401, "token_not_valid").await;
    assert_eq!(body["detail"], "Token is invalid or expired", "{what}");
    assert_error(app.verify_token(token).await, 401, "token_not_valid").await;
}

#[tokio::test]
async fn issued_tokens_carry_simplejwt_claims_and_a_kid() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = app.login_new_kakao_user(1).await;

    let access = payload(body["access"].as_str().unwrap());
    let refresh = payload(body["refresh"].as_str().unwrap());

    assert_eq!(access["token_type"], "access");
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(access["user_id"], body["user"]["pk"]);
    assert_eq!(access["sub"], body["user"]["pk"].to_string());
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        300,
        "5 minutes"
    );
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        86_400,
        "1 day"
    );
    assert_ne!(access["jti"], refresh["jti"]);
    let h = header(body["access"].as_str().unwrap());
    assert_eq!(h["alg"], "EdDSA");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kid"], h["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(jwks["keys"][0].get("d").is_none(), "no private part is published");
}

#[tokio::test]
async fn a_token_signed_by_us_with_our_claims_is_accepted() {
    let app = spawn_app(Backend::Sqlite).await;
    let pk = app.login_new_kakao_user(1).await["user"]["pk"].clone();
    let token = app
        .sign_with_app_key(&json!({"token_type": "access", "exp": now() + 60, "iat": now(), "jti": "x", "user_id": pk}))
        .await;
    assert_eq!(
        app.get_user("Bearer", &token).await.status(),
        200,
        "the control case of the forgeries below"
    );
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let app = spawn_app(Backend::Sqlite).await;
    let pk = app.login_new_kakao_user(1).await["user"]["pk"].clone();
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"token_type": "access", "exp": now() + 60, "iat": now(), "jti": "x", "user_id": pk}).to_string(),
    );
    assert_rejected(&app, &format!("{head}.{claims}."), "alg none").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let app = spawn_app(Backend::Sqlite).await;
    let pk = app.login_new_kakao_user(1).await["user"]["pk"].clone();
    let key = signing_key::Entity::find().one(&app.db).await.unwrap().unwrap();
    let claims = json!({"token_type": "access", "exp": now() + 60, "iat": now(), "jti": "x", "user_id": pk});
    for secret in [
        key.public_key.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(&key.public_key).unwrap(),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_rejected(&app, &token, "HS256 with the public key").await;
    }
}

#[tokio::test]
async fn a_bad_signature_an_unknown_kid_and_an_expired_token_are_rejected() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = app.login_new_kakao_user(1).await;
    let access = body["access"].as_str().unwrap();
    let pk = body["user"]["pk"].clone();

    let (rest, signature) = access.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;
    assert_rejected(
        &app,
        &format!("{rest}.{}", URL_SAFE_NO_PAD.encode(sig)),
        "bad signature",
    )
    .await;

    let stranger = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = stranger.to_pkcs8_der().unwrap();
    let claims = json!({"token_type": "access", "exp": now() + 60, "iat": now(), "jti": "x", "user_id": pk});
    for kid in [
        Some("unknown-kid".to_owned()),
        header(access)["kid"].as_str().map(str::to_owned),
        None,
    ] {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = kid.clone();
        let token = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap();
        assert_rejected(&app, &token, &format!("foreign key with kid {kid:?}")).await;
    }

    let expired = app
        .sign_with_app_key(
            &json!({"token_type": "access", "exp": now() - 5, "iat": now() - 305, "jti": "x", "user_id": pk}),
        )
        .await;
    assert_rejected(&app, &expired, "expired").await;
    let no_exp = app
        .sign_with_app_key(&json!({"token_type": "access", "iat": now(), "jti": "x", "user_id": pk}))
        .await;
    assert_rejected(&app, &no_exp, "without exp").await;
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = app.login_new_kakao_user(1).await;
    let refresh = body["refresh"].as_str().unwrap();

    assert_error(app.get_user("Bearer", refresh).await, 401, "token_not_valid").await;
    assert_eq!(
        app.verify_token(refresh).await.status(),
        200,
        "verify accepts either type, as simplejwt"
    );
}

#[tokio::test]
async fn jwt_scheme_works_and_missing_or_unknown_credentials_get_401_with_a_challenge() {
    let app = spawn_app(Backend::Sqlite).await;
    let access = app.login_new_kakao_user(1).await["access"].as_str().unwrap().to_owned();

    assert_eq!(app.get_user("JWT", &access).await.status(), 200);
    let missing = app.get("/rest-auth/user/").await;
    assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="api""#);
    assert_error(missing, 401, "not_authenticated").await;
    assert_error(app.get_user("Basic", &access).await, 401, "not_authenticated").await;
}

#[tokio::test]
async fn a_custom_header_may_carry_the_bare_token() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.auth.header_name = "jwt-auth".into()).await;
    let access = app.login_new_kakao_user(1).await["access"].as_str().unwrap().to_owned();

    let response = app.get_user_with("jwt-auth", &access).await;
    assert_eq!(response.status(), 200);
    let response = app.get_user_with("jwt-auth", &format!("Bearer {access}")).await;
    assert_eq!(response.status(), 200);
    assert_error(app.get_user("Bearer", &access).await, 401, "not_authenticated").await;
}

#[tokio::test]
async fn hs256_mode_interoperates_with_simplejwt_tokens() {
    let secret = "django-insecure-0123456789abcdefghijklmnopqrstuvwxyz";
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.jwt.algorithm = authbridge::config::JwtAlgorithm::HS256;
        s.jwt.signing_key = Some(secret.to_owned().into());
    })
    .await;
    let body = app.login_new_kakao_user(1).await;
    assert_eq!(header(body["access"].as_str().unwrap())["alg"], "HS256");
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks, json!({"keys": []}), "a shared secret is never published");

    // What simplejwt issues: no sub, no kid.
    let simplejwt =
        json!({"token_type": "access", "exp": now() + 60, "iat": now(), "jti": "abc", "user_id": body["user"]["pk"]});
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &simplejwt,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(app.get_user("Bearer", &token).await.status(), 200);
    let wrong = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &simplejwt,
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    )
    .unwrap();
    assert_rejected(&app, &wrong, "HS256 with another secret").await;
}

async fn keys_survive_a_restart_and_a_second_instance_accepts_the_tokens(backend: Backend) {
    let first = spawn_app(backend).await;
    let body = first.login_new_kakao_user(1).await;
    let jwks_before: Value = first.get("/.well-known/jwks.json").await.json().await.unwrap();

    let second = authbridge::app::App::build(first.settings.clone())
        .await
        .expect("a second instance on the same database");
    let address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped(std::future::pending()));

    let response = first
        .client
        .get(format!("{address}/rest-auth/user/"))
        .bearer_auth(body["access"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let jwks_after: Value = first
        .client
        .get(format!("{address}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_after, jwks_before, "no new key on restart");
}
