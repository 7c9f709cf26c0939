//! Refresh, rotation, reuse detection, logout and key rotation (api.md 4).

use std::collections::HashSet;

use entity::refresh_token;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with};

on_every_backend!(
    a_refresh_rotates_and_the_new_token_works,
    replaying_a_spent_token_after_the_grace_interval_revokes_the_family,
    twenty_concurrent_refreshes_of_one_token_make_one_successor,
    a_refresh_row_that_cannot_be_stored_fails_alone,
    with_rotation_off_the_same_refresh_token_keeps_working,
    logout_blacklists_the_refresh_token,
    logout_all_revokes_every_session_of_the_user,
    a_rotated_key_keeps_old_tokens_valid_and_other_instances_learn_the_new_one,
    expired_refresh_rows_are_purged,
);

async fn json_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "status");
    response.json().await.unwrap()
}

async fn family_size(app: &TestApp, refresh: &str) -> u64 {
    let jti = crate::jwt::payload(refresh)["jti"].as_str().unwrap().to_owned();
    let row = refresh_token::Entity::find()
        .filter(refresh_token::Column::Jti.eq(jti))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    refresh_token::Entity::find()
        .filter(refresh_token::Column::Family.eq(row.family))
        .count(&app.db)
        .await
        .unwrap()
}

async fn a_refresh_rotates_and_the_new_token_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let login = app.login_new_kakao_user(1).await;
    let r1 = login["refresh"].as_str().unwrap();

    let body = json_of(app.refresh(r1).await).await;

    let r2 = body["refresh"].as_str().expect("rotation returns a new refresh token");
    assert_ne!(r1, r2);
    assert!(body["access_expiration"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get_user("Bearer", body["access"].as_str().unwrap()).await.status(),
        200
    );
    assert_error(app.verify_token(r1).await, 401, "token_not_valid").await;
    let again = json_of(app.refresh(r1).await).await;
    assert_eq!(
        again["refresh"], r2,
        "a retry within the grace interval gets the same successor"
    );
    let r3 = json_of(app.refresh(r2).await).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(family_size(&app, &r3).await, 3);
}

async fn replaying_a_spent_token_after_the_grace_interval_revokes_the_family(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.jwt.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let r1 = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_login = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let r2 = json_of(app.refresh(&r1).await).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    // Not a cache wait: `rotated_at` may be kept in whole seconds (a DATETIME column rounds), so
    // the replay comes a second later to be past it even with a zero grace interval.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let body = assert_error(app.refresh(&r1).await, 401, "token_not_valid").await;
    assert_eq!(body["detail"], "Token is blacklisted");

    assert_error(app.refresh(&r2).await, 401, "token_not_valid").await;
    assert_eq!(
        app.refresh(&other_login).await.status(),
        200,
        "another login's family is untouched"
    );
}

async fn twenty_concurrent_refreshes_of_one_token_make_one_successor(backend: Backend) {
    let app = spawn_app(backend).await;
    let r1 = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();

    let responses = futures::future::join_all((0..20).map(|_| app.refresh(&r1))).await;

    let mut successors = HashSet::new();
    for response in responses {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(
            status == 200 || (status == 503 && body["code"] == "service_unavailable"),
            "{status} {body}"
        );
        if status == 200 {
            successors.insert(body["refresh"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(successors.len(), 1, "every winner and retry got the same successor");
    assert_eq!(family_size(&app, &r1).await, 2, "one new family member");
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(app.refresh(&successor).await.status(), 200);
}

async fn with_rotation_off_the_same_refresh_token_keeps_working(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.jwt.rotate_refresh_tokens = false).await;
    let r1 = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();

    for _ in 0..3 {
        let body = json_of(app.refresh(&r1).await).await;
        assert!(body.get("refresh").is_none(), "no new refresh token: {body}");
        assert!(body["access"].is_string());
    }
    assert_eq!(app.verify_token(&r1).await.status(), 200);
}

async fn logout_blacklists_the_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let r1 = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = json_of(app.logout(&r1).await).await;

    assert_eq!(body["detail"], "Successfully logged out.");
    assert_error(app.refresh(&r1).await, 401, "token_not_valid").await;
    assert_error(app.verify_token(&r1).await, 401, "token_not_valid").await;
    assert_eq!(app.logout(&r1).await.status(), 200, "logging out twice is fine");
    let nothing = app.post_empty("/rest-auth/logout/").await;
    assert_error(nothing, 401, "not_authenticated").await;
}

async fn logout_all_revokes_every_session_of_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let phone = app.login_new_kakao_user(1).await;
    let tablet = app.login_new_kakao_user(1).await;
    let stranger = app.login_new_kakao_user(2).await;

    let response = app.logout_all(phone["access"].as_str().unwrap()).await;

    assert_eq!(json_of(response).await["detail"], "Successfully logged out.");
    for login in [&phone, &tablet] {
        assert_error(
            app.refresh(login["refresh"].as_str().unwrap()).await,
            401,
            "token_not_valid",
        )
        .await;
    }
    assert_eq!(app.refresh(stranger["refresh"].as_str().unwrap()).await.status(), 200);
}

async fn a_rotated_key_keeps_old_tokens_valid_and_other_instances_learn_the_new_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.login_new_kakao_user(1).await;
    let old_kid = crate::jwt::header(before["access"].as_str().unwrap())["kid"].clone();

    let new_kid = authbridge::tokens::rotate_signing_key(&app.db).await.unwrap();
    let second = authbridge::app::App::build(app.settings.clone()).await.unwrap();
    let second_address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped(std::future::pending()));
    let after: Value = app
        .client
        .post(format!("{second_address}/rest-auth/token/refresh/"))
        .json(&json!({"refresh": before["refresh"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(
        crate::jwt::header(after["access"].as_str().unwrap())["kid"],
        new_kid.as_str()
    );
    assert_eq!(
        app.get_user("Bearer", after["access"].as_str().unwrap()).await.status(),
        200,
        "the first instance reloads on the unknown kid"
    );
    assert_eq!(
        app.get_user("Bearer", before["access"].as_str().unwrap())
            .await
            .status(),
        200,
        "old tokens stay valid"
    );
    let jwks: Value = app
        .client
        .get(format!("{second_address}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&Value> = jwks["keys"].as_array().unwrap().iter().map(|k| &k["kid"]).collect();
    assert!(
        kids.contains(&&old_kid) && kids.contains(&&json!(new_kid)),
        "both keys published: {jwks}"
    );
}

async fn expired_refresh_rows_are_purged(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_id = crate::jwt::payload(&live)["user_id"].as_i64().unwrap() as i32;
    let long_ago = chrono::Utc::now() - chrono::Duration::days(3);
    authbridge::store::tokens::insert_refresh(
        &app.db,
        authbridge::store::tokens::NewRefresh {
            jti: "expired-one",
            user_id,
            family: "f",
            issued_at: long_ago,
            expires_at: long_ago + chrono::Duration::days(1),
        },
    )
    .await
    .unwrap();

    let purged = authbridge::store::tokens::purge_expired(&app.db, chrono::Utc::now())
        .await
        .unwrap();

    assert_eq!(purged, 1);
    assert_eq!(refresh_token::Entity::find().count(&app.db).await.unwrap(), 1);
    assert_eq!(app.refresh(&live).await.status(), 200);
}

async fn a_refresh_row_that_cannot_be_stored_fails_alone(backend: Backend) {
    use authbridge::{store::tokens::NewRefresh, write_queue::WriteQueue};
    let app = spawn_app(backend).await;
    let user_id = app.login_new_kakao_user(5).await["user"]["pk"].as_i64().unwrap() as i32;
    let writer = WriteQueue::start(
        app.db.clone(),
        app.write_turn.clone(),
        authbridge::metrics::Metrics::default(),
    );
    let now = chrono::Utc::now();
    let row = |jti: &'static str, user_id: i32| NewRefresh {
        jti,
        user_id,
        family: "f",
        issued_at: now,
        expires_at: now + chrono::Duration::hours(1),
    };

    // Queued together, written as one batch; the row of a user that does not exist (deleted
    // meanwhile) breaks the foreign key.
    let (first, orphan, last) = tokio::join!(
        writer.insert(row("row-a", user_id)),
        writer.insert(row("row-b", 999_999)),
        writer.insert(row("row-c", user_id)),
    );

    assert!(first.is_ok() && last.is_ok(), "{first:?} {last:?}");
    assert!(orphan.is_err());
    let stored = refresh_token::Entity::find()
        .filter(refresh_token::Column::Family.eq("f"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 2);
}
