//! Linking, listing and unlinking provider accounts; Kakao's unlink webhook; account deletion and
//! export (api.md 3, issue 6).

use entity::{social_account, user};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app},
    kakao::{ADMIN_KEY, OUR_APP_ID, full_user, minimal_user},
};

on_every_backend!(
    kakaos_unlink_webhook_removes_the_link_and_revokes_tokens,
    connect_links_a_second_account_and_refuses_one_taken_by_another_user,
    deleting_an_account_unlinks_it_at_kakao_first_and_refuses_when_kakao_is_down,
);

async fn unlink_webhook(app: &TestApp, admin_key: &str, user_id: &str, post: bool) -> reqwest::Response {
    let fields = [
        ("app_id", OUR_APP_ID.to_string()),
        ("user_id", user_id.to_owned()),
        ("referrer_type", "UNLINK_FROM_APPS".into()),
    ];
    let request = if post {
        app.client.post(app.url("/accounts/kakao/unlink/")).form(&fields)
    } else {
        app.client.get(app.url("/accounts/kakao/unlink/")).query(&fields)
    };
    request
        .header("authorization", format!("KakaoAK {admin_key}"))
        .send()
        .await
        .unwrap()
}

async fn kakaos_unlink_webhook_removes_the_link_and_revokes_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.login_new_kakao_user(31).await;
    let second = app.login_new_kakao_user(32).await;
    app.login_new_kakao_user(31).await; // a returning login: the server now holds a copy of the link

    assert_error(
        unlink_webhook(&app, "wrong-key", "31", true).await,
        401,
        "not_authenticated",
    )
    .await;
    assert_eq!(
        social_account::Entity::find().count(&app.db).await.unwrap(),
        2,
        "a wrong key changes nothing"
    );

    let started = std::time::Instant::now();
    assert_eq!(unlink_webhook(&app, ADMIN_KEY, "31", true).await.status(), 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "well within Kakao's 3 s"
    );
    assert_eq!(
        unlink_webhook(&app, ADMIN_KEY, "32", false).await.status(),
        200,
        "GET works too"
    );
    assert_eq!(
        unlink_webhook(&app, ADMIN_KEY, "31", false).await.status(),
        200,
        "idempotent"
    );
    assert_eq!(
        unlink_webhook(&app, ADMIN_KEY, "999999", true).await.status(),
        200,
        "unknown user"
    );

    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 0);
    for login in [&first, &second] {
        assert_error(
            app.refresh(login["refresh"].as_str().unwrap()).await,
            401,
            "token_not_valid",
        )
        .await;
        crate::revocation::assert_access_token_dead(&app, login["access"].as_str().unwrap()).await;
    }
    // The server forgot its copy of the link with it: the same Kakao user signing in again
    // (a new Kakao token) starts over as a new user.
    let again = app.login_new_kakao_user(31).await;
    assert_ne!(again["user"]["pk"], first["user"]["pk"]);
}

async fn connect_links_a_second_account_and_refuses_one_taken_by_another_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.login_new_kakao_user(41).await;
    let other = app.login_new_kakao_user(42).await;
    app.kakao.accepts_token("second-account", minimal_user(43));
    let access = owner["access"].as_str().unwrap();
    let linked = app.connect_kakao(access, "second-account").await;
    assert_eq!(linked.status(), 200);
    let taken = app.connect_kakao(access, "token-42").await;
    assert_error(taken, 409, "social_account_taken").await;

    let list: Value = app
        .get_as(access, "/rest-auth/socialaccounts/")
        .await
        .json()
        .await
        .unwrap();
    let uids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["41", "43"]);

    assert_eq!(
        app.disconnect_social_account(access, &list[1]["id"], None)
            .await
            .status(),
        200
    );
    let last = app.disconnect_social_account(access, &list[0]["id"], None).await;
    assert_error(last, 400, "last_login_method").await;
    let foreign = app
        .disconnect_social_account(other["access"].as_str().unwrap(), &list[0]["id"], None)
        .await;
    assert_error(foreign, 404, "not_found").await;
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 2);
}

async fn deleting_an_account_unlinks_it_at_kakao_first_and_refuses_when_kakao_is_down(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao
        .accepts_token("t-51", full_user(51, "five-one@x.io", true, true));
    let login: Value = app
        .post_kakao_login(&json!({"access_token": "t-51"}))
        .await
        .json()
        .await
        .unwrap();
    let access = login["access"].as_str().unwrap().to_owned();
    let export: Value = app
        .get_as(&access, "/rest-auth/user/export/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["social_accounts"][0]["uid"], "51");
    assert_eq!(
        export["social_accounts"][0]["extra_data"]["kakao_account"]["email"],
        "five-one@x.io"
    );
    assert_eq!(export["email_addresses"][0]["email"], "five-one@x.io");
    assert_eq!(
        export["sessions"].as_array().unwrap().len(),
        0,
        "an unused refresh token is not stored"
    );
    assert_eq!(export["user"]["has_password"], false);
    assert!(export.to_string().find("password\":\"").is_none(), "no hash exported");

    app.kakao.is_down();
    assert_error(app.delete_user(&access, None).await, 502, "provider_unavailable").await;
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 1, "nothing deleted");

    app.kakao.is_up();
    assert_eq!(app.delete_user(&access, None).await.status(), 204);
    assert_eq!(crate::kakao::unlinked(&app.kakao), [51]);
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 0);
    assert_error(
        app.refresh(login["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_password_account_needs_the_password_or_a_recent_sign_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let dora = app.create_local_user("dora", "", "pw-pw-pw-pw").await;
    let stale = app.access_signed_in_long_ago(&json!(dora.id)).await;
    assert_error(app.delete_user(&stale, None).await, 403, "reauthentication_required").await;
    assert_error(
        app.delete_user(&stale, Some(&json!({"password": "wrong"}))).await,
        400,
        "invalid_credentials",
    )
    .await;
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 1);
    assert_eq!(
        app.delete_user(&stale, Some(&json!({"password": "pw-pw-pw-pw"})))
            .await
            .status(),
        204
    );
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 0);

    // A sign-in of a minute ago is proof enough without the password.
    app.create_local_user("erin", "", "pw-pw-pw-pw").await;
    let pair = app.signed_in_pair("erin", "pw-pw-pw-pw").await;
    let fresh = pair["access"].as_str().unwrap();
    assert_eq!(app.delete_user(fresh, None).await.status(), 204);
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 0);
}

#[tokio::test]
async fn a_stale_sign_in_cannot_delete_a_password_less_account() {
    let app = spawn_app(Backend::Sqlite).await;
    let pk = app.login_new_kakao_user(61).await["user"]["pk"].clone();
    let now = chrono::Utc::now().timestamp();
    let stale = app
        .sign_with_app_key(
            &json!({"token_type": "access", "exp": now + 60, "iat": now - 3600, "jti": "s", "user_id": pk}),
        )
        .await;
    let response = app.delete_user(&stale, None).await;
    assert_error(response, 403, "reauthentication_required").await;
    assert!(crate::kakao::unlinked(&app.kakao).is_empty());
}
