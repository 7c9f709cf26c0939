//! `Handle`: scripted users, tokens and codes, faults, call counts, unlink records and key
//! rotation, seen from the HTTP side as a client of the emulator sees them.

use std::time::{Duration, Instant};

use kakao_emulator::{EmulatedUser, Fault, KakaoApp, SigningKey, Unlink};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{ADMIN, REST_KEY, SECRET, assert_kapi_error, start, start_with};

fn user(id: i64, nickname: &str) -> EmulatedUser {
    EmulatedUser::from_me(json!({"id": id, "kakao_account": {"profile": {"nickname": nickname}}})).unwrap()
}

#[tokio::test]
async fn a_scripted_token_answers_for_its_user_until_expired_and_a_new_profile_replaces_the_old() {
    let emu = start().await;
    emu.handle.accepts_token("scripted", user(77, "before"));
    emu.handle.accepts_token_of_app("foreign", 9999, user(77, "after"));

    let me: Value = emu.me("scripted").await.json().await.unwrap();
    let info: Value = emu
        .get("/v1/user/access_token_info", Some("Bearer foreign"))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        me,
        json!({"id": 77, "kakao_account": {"profile": {"nickname": "after"}}})
    );
    assert_eq!((info["id"].as_i64(), info["app_id"].as_i64()), (Some(77), Some(9999)));
    assert!(emu.handle.expire_token("scripted"));
    assert!(!emu.handle.expire_token("never-issued"));
    assert_kapi_error(
        emu.me("scripted").await,
        401,
        -401,
        "this access token is already expired",
    )
    .await;
}

#[tokio::test]
async fn a_scripted_code_is_exchanged_once_with_its_pkce_verifier() {
    let emu = start().await;
    let redirect = "https://app.example/cb";
    emu.handle
        .issues_code("c-1", user(5, "code"), redirect, Some("verifier"));
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", REST_KEY),
        ("client_secret", SECRET),
        ("code", "c-1"),
        ("redirect_uri", redirect),
        ("code_verifier", "verifier"),
    ];

    let first = emu.token(&form).await;
    let again = emu.token(&form).await;

    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    let me: Value = emu
        .me(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], 5);
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn faults_fail_kakao_paths_only_are_counted_and_end_with_is_up() {
    let emu = start().await;
    let token = emu.access_token(super::FULL).await;
    emu.handle.is_down();

    let down = emu.me(&token).await;
    let control = emu.client.get(emu.url("/emulator/users")).send().await.unwrap();

    assert_eq!((down.status().as_u16(), control.status().as_u16()), (500, 200));
    emu.handle.is_up();
    emu.handle.fails("/oauth/token", Fault::Redirect("/elsewhere".into()));
    let redirected = emu.token(&[("grant_type", "refresh_token")]).await;
    assert_eq!(redirected.status(), 307);
    assert_eq!(redirected.headers()["location"], "/elsewhere");
    assert_eq!(emu.me(&token).await.status(), 200, "only the named path fails");
    assert_eq!(emu.handle.calls("/v2/user/me"), 2);
    assert_eq!(emu.handle.calls("/emulator/users"), 1);

    emu.handle.is_slow(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(emu.me(&token).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn unlinks_are_recorded_with_the_app_whose_admin_key_was_shown() {
    let other = KakaoApp {
        app_id: 5678,
        rest_api_key: "rest-b".into(),
        native_app_key: "native-b".into(),
        javascript_key: "js-b".into(),
        client_secret: None,
        admin_key: SecretString::from("admin-b"),
        redirect_uris: Vec::new(),
    };
    let emu = start_with(|c| c.other_apps = vec![other]).await;
    emu.handle.accepts_token("t-1", user(1, "one"));
    emu.handle.accepts_token("t-2", user(2, "two"));
    let unlink = async |auth: &str, id: &str| {
        let form = [("target_id_type", "user_id"), ("target_id", id)];
        emu.post_form("/v1/user/unlink", Some(auth), &form).await.status()
    };

    assert_eq!(unlink(ADMIN, "1").await, 200);
    assert_eq!(unlink("KakaoAK admin-b", "2").await, 200);
    assert_eq!(unlink("KakaoAK not-a-key", "2").await, 401);

    assert_eq!(
        emu.handle.unlinks(),
        [
            Unlink {
                user_id: 1,
                app_id: 1234
            },
            Unlink {
                user_id: 2,
                app_id: 5678
            }
        ]
    );
}

#[tokio::test]
async fn a_rotated_key_replaces_the_published_one_and_signs_from_then_on() {
    let emu = start().await;
    let jwks_kid = async || {
        let jwks: Value = emu.get("/.well-known/jwks.json", None).await.json().await.unwrap();
        jwks["keys"][0]["kid"].as_str().unwrap().to_owned()
    };
    let before = jwks_kid().await;
    let next = tokio::task::spawn_blocking(SigningKey::generate)
        .await
        .unwrap()
        .unwrap();

    emu.handle.rotate_signing_key(next.clone());
    let token = emu.handle.sign_id_token(&json!({"sub": "1"})).unwrap();

    assert_eq!(jwks_kid().await, next.kid());
    assert_ne!(before, next.kid());
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(next.kid()));
    let forged = emu
        .handle
        .sign_id_token_with_kid(&json!({"sub": "1"}), "elsewhere")
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&forged).unwrap().kid.as_deref(),
        Some("elsewhere")
    );
}
