//! An address claimed without proof never locks out the one who can prove it (issue 20): a
//! verified Kakao login takes the address from an unverified claim, and registrations nobody
//! confirmed expire.

use std::time::Duration;

use entity::{email_address, social_account, user};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, on_every_backend, spawn_app, spawn_app_with},
    kakao::full_user,
    smtp_sink::SmtpSink,
};

on_every_backend!(
    a_registration_with_someone_elses_address_does_not_lock_out_its_verified_owner,
    an_unverified_kakao_claim_gives_way_to_the_verified_owner,
    unconfirmed_registrations_expire_with_their_confirmation_key,
);

async fn a_registration_with_someone_elses_address_does_not_lock_out_its_verified_owner(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with(backend, |s| s.mail.smtp_url = Some(url.into())).await;
    assert_eq!(app.register("victim@x.io").await.status(), 201, "the squatter");
    app.kakao
        .accepts_token("victim", full_user(7, "victim@x.io", true, true));

    let response = app.post_kakao_login(&json!({"access_token": "victim"})).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let owner = body["user"]["pk"].as_i64().unwrap() as i32;
    let rows = email_address::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].user_id, rows[0].verified), (owner, true));
    assert_eq!(
        user::Entity::find().count(&app.db).await.unwrap(),
        1,
        "the unconfirmed registration, left without an address, is gone"
    );
}

async fn an_unverified_kakao_claim_gives_way_to_the_verified_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    // Kakao has not verified this account's address (is_email_verified=false).
    app.kakao
        .accepts_token("claimer", full_user(1, "owner@x.io", true, false));
    app.kakao.accepts_token("owner", full_user(2, "owner@x.io", true, true));
    let claimer: Value = app
        .post_kakao_login(&json!({"access_token": "claimer"}))
        .await
        .json()
        .await
        .unwrap();

    let response = app.post_kakao_login(&json!({"access_token": "owner"})).await;

    assert_eq!(response.status(), 200, "no email_in_use forever");
    let owner: Value = response.json().await.unwrap();
    assert_ne!(owner["user"]["pk"], claimer["user"]["pk"]);
    let rows = email_address::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].user_id as i64, owner["user"]["pk"].as_i64().unwrap());
    let claimer_row = user::Entity::find_by_id(claimer["user"]["pk"].as_i64().unwrap() as i32)
        .one(&app.db)
        .await
        .unwrap()
        .expect("the claimer keeps its account");
    assert_eq!(claimer_row.email, "");
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 2);
    assert_eq!(
        app.post_kakao_login(&json!({"access_token": "claimer"})).await.status(),
        200,
        "and still signs in"
    );
}

async fn unconfirmed_registrations_expire_with_their_confirmation_key(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with(backend, |s| {
        s.mail.smtp_url = Some(url.into());
        s.accounts.email_confirmation_lifetime = Duration::ZERO;
        s.database.maintenance_interval = Duration::from_millis(200);
    })
    .await;
    app.login_new_kakao_user(1).await;
    app.create_local_user("admin", "admin@x.io", "a-long-horse-battery")
        .await;
    assert_eq!(app.register("late@x.io").await.status(), 201);
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 3);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while user::Entity::find().count(&app.db).await.unwrap() == 3 && tokio::time::Instant::now() < deadline {
        // Not a cache wait: expiry is the maintenance task's, every maintenance_interval.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let left: Vec<String> = user::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.contains(&"late".to_owned()), "{left:?}");
    assert!(
        email_address::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .iter()
            .all(|r| r.email != "late@x.io")
    );
}
