//! Two Kakao apps in one deployment (one per site): Kakao ids are per app, so the unlink webhook
//! and account deletion act only with the app an account came through (issue 20).

use authbridge::store;
use entity::social_account;
use kakao_emulator::Unlink;
use sea_orm::EntityTrait;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, on_every_backend, spawn_app},
    kakao::{ADMIN_KEY, OTHER_ADMIN_KEY, OTHER_APP_ID, OUR_APP_ID, minimal_user},
};

on_every_backend!(
    the_unlink_webhook_unlinks_only_accounts_of_the_app_whose_key_was_shown,
    deleting_an_account_unlinks_each_kakao_account_with_its_own_apps_key,
);

const OTHER_HOST: &str = "b.example";

/// A second Kakao app (app id 5678, its own admin key) serving the site `b.example`.
async fn add_second_app(app: &TestApp) {
    let site = store::sites::insert(&app.db, OTHER_HOST, "B").await.unwrap();
    store::social::upsert_app(
        &app.db,
        &app.write_turn,
        store::social::NewSocialApp {
            provider: "kakao".into(),
            name: "Kakao B".into(),
            client_id: "rest-api-key-b".into(),
            secret: SecretString::from("secret-b"),
            admin_key: SecretString::from(OTHER_ADMIN_KEY),
            app_ids: vec![OTHER_APP_ID.to_string()],
            client_keys: vec![],
            sites: vec![site.id],
        },
    )
    .await
    .unwrap();
}

/// Signs in Kakao user `id` through the second app (its site's Host).
async fn login_through_second_app(app: &TestApp, id: i64) -> Value {
    let token = format!("b-{id}");
    app.kakao.accepts_token_of_app(&token, OTHER_APP_ID, minimal_user(id));
    let response = app
        .post_kakao_login_with_headers(&[("host", OTHER_HOST)], &json!({ "access_token": token }))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn unlink_webhook(app: &TestApp, app_id: i64, admin_key: &str, user_id: i64) -> u16 {
    app.client
        .post(app.url("/accounts/kakao/unlink/"))
        .header("authorization", format!("KakaoAK {admin_key}"))
        .form(&[("app_id", app_id.to_string()), ("user_id", user_id.to_string())])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn has_account(app: &TestApp, uid: i64) -> bool {
    social_account::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .any(|a| a.uid == uid.to_string())
}

async fn the_unlink_webhook_unlinks_only_accounts_of_the_app_whose_key_was_shown(backend: Backend) {
    let app = spawn_app(backend).await;
    add_second_app(&app).await;
    app.login_new_kakao_user(42).await;
    login_through_second_app(&app, 43).await;

    assert_eq!(unlink_webhook(&app, OTHER_APP_ID, OTHER_ADMIN_KEY, 42).await, 200);
    assert!(
        has_account(&app, 42).await,
        "42 came through the first app: app B may not unlink it"
    );

    assert_eq!(unlink_webhook(&app, OTHER_APP_ID, OTHER_ADMIN_KEY, 43).await, 200);
    assert!(!has_account(&app, 43).await);
    assert_eq!(unlink_webhook(&app, OUR_APP_ID, ADMIN_KEY, 42).await, 200);
    assert!(!has_account(&app, 42).await);
}

async fn deleting_an_account_unlinks_each_kakao_account_with_its_own_apps_key(backend: Backend) {
    let app = spawn_app(backend).await;
    add_second_app(&app).await;
    let session = app.login_new_kakao_user(61).await;
    let access = session["access"].as_str().unwrap();
    app.kakao.accepts_token_of_app("b-62", OTHER_APP_ID, minimal_user(62));
    let connect = app
        .client
        .post(app.url("/accounts/rest-auth/kakao/connect/"))
        .header("host", OTHER_HOST)
        .bearer_auth(access)
        .json(&json!({"access_token": "b-62"}))
        .send()
        .await
        .unwrap();
    assert!(connect.status().is_success(), "{}", connect.status());

    let deleted = app.delete_user(access, None).await;

    assert_eq!(deleted.status(), 204);
    // The emulator knows each app by its admin key: the app id says which key was shown.
    let mut unlinked = app.kakao.unlinks();
    unlinked.sort();
    assert_eq!(
        unlinked,
        [
            Unlink {
                user_id: 61,
                app_id: OUR_APP_ID
            },
            Unlink {
                user_id: 62,
                app_id: OTHER_APP_ID
            }
        ]
    );
}
