//! The tests' Kakao: the emulator crate (kakao-emulator/) in process on a random port, set up as
//! the Kakao apps `helpers` registers, plus the Kakao users and ID-token claims scenarios script.
//! Tests drive it through `kakao_emulator::Handle` (`accepts_token`, `is_down`, `calls`…).

use std::sync::LazyLock;

use kakao_emulator::{EmulatedUser, Emulator, EmulatorConfig, Handle, KakaoApp, SigningKey};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const OUR_APP_ID: i64 = 1234;
pub const FOREIGN_APP_ID: i64 = 9999;
/// A second Kakao app of the same deployment (multi_app.rs).
pub const OTHER_APP_ID: i64 = 5678;
pub const REST_KEY: &str = "rest-api-key";
/// The native app key the mobile SDK logs in with: an id_token audience our app accepts.
pub const NATIVE_KEY: &str = "native-app-key";
pub const JS_KEY: &str = "js-key";
pub const CLIENT_SECRET: &str = "kakao-client-secret";
pub const ADMIN_KEY: &str = "kakao-admin-key";
/// The admin key of the second app.
pub const OTHER_ADMIN_KEY: &str = "other-app-admin-key";
pub const ISSUER: &str = kakao_emulator::DEFAULT_ISSUER;
/// The nonce `id_claims` echo, as if the client had sent it to Kakao's authorize endpoint.
pub const NONCE: &str = "nonce-from-the-app";

/// One RSA key for the whole test binary: generating it is the slow part of an emulator's start.
static SIGNING_KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate().expect("an RSA key"));
/// The key Kakao rotates to in the key-rotation scenarios.
pub static NEXT_SIGNING_KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate().expect("an RSA key"));

fn app(app_id: i64, keys: [&str; 3], secret: &str, admin_key: &str) -> KakaoApp {
    KakaoApp {
        app_id,
        rest_api_key: keys[0].into(),
        native_app_key: keys[1].into(),
        javascript_key: keys[2].into(),
        client_secret: Some(SecretString::from(secret)),
        admin_key: SecretString::from(admin_key),
        redirect_uris: Vec::new(),
    }
}

/// The emulator on port 0, serving our app and the second one; runs until the test ends.
pub async fn start() -> Handle {
    let signing_key = tokio::task::spawn_blocking(|| SIGNING_KEY.clone())
        .await
        .expect("the key thread");
    let config = EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        app: app(OUR_APP_ID, [REST_KEY, NATIVE_KEY, JS_KEY], CLIENT_SECRET, ADMIN_KEY),
        other_apps: vec![app(
            OTHER_APP_ID,
            ["rest-api-key-b", "native-app-key-b", "js-key-b"],
            "secret-b",
            OTHER_ADMIN_KEY,
        )],
        signing_key: Some(signing_key),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::build(config).await.expect("the Kakao emulator starts");
    let handle = emulator.handle();
    tokio::spawn(emulator.run_until_stopped(std::future::pending()));
    handle
}

/// A Kakao user from its `/v2/user/me` body.
pub fn kakao_user(me: Value) -> EmulatedUser {
    EmulatedUser::from_me(me).expect("a /v2/user/me-shaped user")
}

/// Kakao's minimal user: only the nickname consent (kakao-api.md 1.4).
pub fn minimal_me(id: i64) -> Value {
    json!({"id": id, "connected_at": "2022-04-11T01:45:28Z",
           "kakao_account": {"profile_nickname_needs_agreement": false, "profile": {"nickname": "홍길동"}},
           "properties": {"CUSTOM_PROPERTY_KEY": "CUSTOM_PROPERTY_VALUE"}})
}

pub fn minimal_user(id: i64) -> EmulatedUser {
    kakao_user(minimal_me(id))
}

/// Kakao's "all fields" user (kakao-api.md 1.4) with the given email flags. Image URLs are
/// `http`, as Kakao answers a client that does not ask for `secure_resource`.
pub fn full_me(id: i64, email: &str, valid: bool, verified: bool) -> Value {
    json!({
      "id": id, "connected_at": "2022-04-11T01:45:28Z",
      "kakao_account": {
        "profile_nickname_needs_agreement": false, "profile_image_needs_agreement": false,
        "profile": {"nickname": "홍길동", "thumbnail_image_url": "http://k.kakaocdn.net/dn/x/img_110x110.jpg",
                    "profile_image_url": "http://k.kakaocdn.net/dn/x/img_640x640.jpg",
                    "is_default_image": false, "is_default_nickname": false},
        "name_needs_agreement": false, "name": "홍길동",
        "email_needs_agreement": false, "is_email_valid": valid, "is_email_verified": verified, "email": email,
        "age_range_needs_agreement": false, "age_range": "20~29", "birthday_needs_agreement": false,
        "birthday": "1130", "birthday_type": "SOLAR", "gender_needs_agreement": false, "gender": "female"
      },
      "properties": {"CUSTOM_PROPERTY_KEY": "CUSTOM_PROPERTY_VALUE"},
      "for_partner": {"uuid": "YVNjU2pZbkJ6T3xLfVFjVm9aaloO"}
    })
}

pub fn full_user(id: i64, email: &str, valid: bool, verified: bool) -> EmulatedUser {
    kakao_user(full_me(id, email, valid, verified))
}

/// Standard claims of a Kakao id_token for `sub`, issued for `aud`, echoing `NONCE`.
pub fn id_claims(sub: i64, aud: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": aud, "sub": sub.to_string(), "iat": now, "exp": now + 21600, "auth_time": now,
           "nonce": NONCE})
}

/// `claims` signed with the emulator's published key.
pub fn id_token(kakao: &Handle, claims: &Value) -> String {
    kakao.sign_id_token(claims).expect("signed")
}

/// Ids unlinked through `/v1/user/unlink`, oldest first.
pub fn unlinked(kakao: &Handle) -> Vec<i64> {
    kakao.unlinks().iter().map(|u| u.user_id).collect()
}
