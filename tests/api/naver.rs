//! Naver Login (issue 22, docs/providers.md 1): SDK access tokens and codes (+ `state`) against
//! the emulator, the Kakao failure contract, email linking only by the operator's opt-in, and the
//! Naver token revoked at `/oauth2.0/revoke` on disconnect and deletion.

use entity::social_account;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, assert_error, on_every_backend, spawn_app, spawn_app_with},
    kakao::full_user,
    providers::{dropping_server, naver_profile},
};

on_every_backend!(
    naver_login_with_an_sdk_token_makes_one_user_and_keeps_the_token,
    naver_email_joins_an_existing_user_only_when_the_app_opts_in,
);

async fn naver_login_with_an_sdk_token_makes_one_user_and_keeps_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_naver_app(false).await;
    app.social
        .naver_accepts_token("nv-tok", naver_profile("AbCdEf123456", "openapi@naver.com"));

    let first = app.post_login("naver", &json!({"access_token": "nv-tok"})).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["user"]["email"], "openapi@naver.com");
    let again: Value = app
        .post_login("naver", &json!({"access_token": "nv-tok"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["user"]["pk"], first["user"]["pk"],
        "the same Naver id is the same user"
    );

    let accounts = social_account::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        (accounts[0].provider.as_str(), accounts[0].uid.as_str()),
        ("naver", "AbCdEf123456")
    );
    assert_eq!(accounts[0].extra_data["nickname"], "OpenAPI");
    assert_eq!(
        app.kept_tokens().await,
        [("access_token".to_owned(), "nv-tok".to_owned())],
        "the SDK token is kept to revoke later"
    );
    // Never in an answer: the list of accounts shows no token.
    let list = app
        .get_as(first["access"].as_str().unwrap(), "/rest-auth/socialaccounts/")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains("nv-tok"));
}

async fn naver_email_joins_an_existing_user_only_when_the_app_opts_in(backend: Backend) {
    // The app's setting changes mid-test: no cached copy of it.
    let app = spawn_app_with(backend, |s| s.database.cache_ttl = std::time::Duration::ZERO).await;
    app.kakao
        .accepts_token("k-1", full_user(61, "shared@naver.com", true, true));
    let kakao: Value = app
        .post_kakao_login(&json!({"access_token": "k-1"}))
        .await
        .json()
        .await
        .unwrap();
    app.social
        .naver_accepts_token("nv-61", naver_profile("naver-61", "shared@naver.com"));

    app.add_naver_app(false).await;
    let refused = app.post_login("naver", &json!({"access_token": "nv-61"})).await;
    assert_error(refused, 400, "email_in_use").await;
    assert_eq!(app.count_accounts().await, 1, "nothing written");

    app.add_naver_app(true).await;
    let linked: Value = app
        .post_login("naver", &json!({"access_token": "nv-61"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(linked["user"]["pk"], kakao["user"]["pk"], "joined the verified owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naver_code_is_exchanged_once_with_its_state() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_naver_app(false).await;
    app.social
        .naver_issues_code("nv-code", Some("st-1"), naver_profile("naver-code-user", "c@naver.com"));

    let wrong_state = app
        .post_login("naver", &json!({"code": "nv-code", "state": "forged"}))
        .await;
    assert_error(wrong_state, 400, "invalid_provider_code").await;
    assert_eq!(app.count_users().await, 0);

    app.social
        .naver_issues_code("nv-code", Some("st-1"), naver_profile("naver-code-user", "c@naver.com"));
    let ok = app
        .post_login("naver", &json!({"code": "nv-code", "state": "st-1"}))
        .await;
    assert_eq!(ok.status(), 200);
    let kept = app.kept_tokens().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, "refresh_token", "a code login keeps the refresh token");

    let reused = app
        .post_login("naver", &json!({"code": "nv-code", "state": "st-1"}))
        .await;
    assert_error(reused, 400, "invalid_provider_code").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naver_refusals_and_outages_follow_the_kakao_contract() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_naver_app(false).await;
    app.social
        .naver_accepts_token("nv-ok", naver_profile("n-1", "n1@naver.com"));
    app.social
        .naver_accepts_token("nv-old", naver_profile("n-2", "n2@naver.com"));
    app.social.expire_token("naver", "nv-old");

    let unknown = app.post_login("naver", &json!({"access_token": "nv-unknown"})).await;
    let body = assert_error(unknown, 400, "invalid_provider_token").await;
    assert_eq!(body["non_field_errors"], json!(["Incorrect value"]));
    let expired = app.post_login("naver", &json!({"access_token": "nv-old"})).await;
    assert_error(expired, 400, "invalid_provider_token").await;

    app.social.fails("/v1/nid/me", kakao_emulator::Fault::Status(403));
    let forbidden = app.post_login("naver", &json!({"access_token": "nv-ok"})).await;
    assert_error(forbidden, 502, "provider_misconfigured").await;
    app.social.is_up();
    app.social.is_down();
    let down = app.post_login("naver", &json!({"access_token": "nv-ok"})).await;
    assert_error(down, 502, "provider_unavailable").await;
    app.social.is_up();
    app.social.is_slow(std::time::Duration::from_secs(3));
    let slow = app.post_login("naver", &json!({"access_token": "nv-ok"})).await;
    assert_error(slow, 504, "provider_timeout").await;
    app.social.is_up();
    assert_eq!(app.count_users().await, 0, "nothing written on any failure");
    assert!(app.kept_tokens().await.is_empty());

    let fine = app.post_login("naver", &json!({"access_token": "nv-ok"})).await;
    assert_eq!(fine.status(), 200, "back once Naver is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naver_dropping_the_connection_is_a_502() {
    let dropping = dropping_server().await;
    let app = spawn_app_with(Backend::Sqlite, |s| s.naver.api_base = dropping).await;
    app.add_naver_app(false).await;
    let dropped = app.post_login("naver", &json!({"access_token": "nv-any"})).await;
    assert_error(dropped, 502, "provider_unavailable").await;
    assert_eq!(app.count_users().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naver_token_is_revoked_on_deletion_and_a_naver_outage_deletes_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_naver_app(false).await;
    app.social
        .naver_accepts_token("nv-del", naver_profile("n-del", "del@naver.com"));
    let login: Value = app
        .post_login("naver", &json!({"access_token": "nv-del"}))
        .await
        .json()
        .await
        .unwrap();
    let access = login["access"].as_str().unwrap();

    app.social.fails("/oauth2.0/revoke", kakao_emulator::Fault::Status(503));
    assert_error(app.delete_user(access, None).await, 502, "provider_unavailable").await;
    assert_eq!(app.count_users().await, 1, "nothing deleted");
    app.social.is_up();
    assert_eq!(app.delete_user(access, None).await.status(), 204);
    let revoked = app.social.revocations();
    assert_eq!(revoked.len(), 1);
    assert_eq!((revoked[0].provider, revoked[0].token.as_str()), ("naver", "nv-del"));
    assert_eq!(app.count_users().await, 0);
    let me = app.post_login("naver", &json!({"access_token": "nv-del"})).await;
    assert_error(me, 400, "invalid_provider_token").await;
}
