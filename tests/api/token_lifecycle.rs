//! Refresh, rotation, reuse detection, logout and key rotation (api.md 4).

use std::collections::HashSet;

use entity::refresh_token;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with};

on_every_backend!(
    a_refresh_rotates_and_the_new_token_works,
    a_login_writes_no_refresh_row_and_a_rotation_writes_only_the_spent_one,
    blacklisting_a_never_rotated_token_stores_a_row_that_blocks_it,
    a_live_row_stored_before_logins_stopped_writing_rows_still_rotates_once,
    a_spent_row_outlives_its_token_when_the_lifetime_is_shortened,
    replaying_a_spent_token_after_the_grace_interval_revokes_the_family,
    twenty_concurrent_refreshes_of_one_token_make_one_successor,
    a_rotation_for_a_deleted_user_claims_nothing_and_spares_its_batch,
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

/// The stored rows of the session (`sid`) of `refresh`: its spent and blacklisted tokens.
async fn session_rows(app: &TestApp, refresh: &str) -> Vec<refresh_token::Model> {
    let sid = crate::jwt::payload(refresh)["sid"].as_str().unwrap().to_owned();
    refresh_token::Entity::find()
        .filter(refresh_token::Column::Family.eq(sid))
        .all(&app.db)
        .await
        .unwrap()
}

async fn row_of(app: &TestApp, refresh: &str) -> Option<refresh_token::Model> {
    let jti = crate::jwt::payload(refresh)["jti"].as_str().unwrap().to_owned();
    refresh_token::Entity::find()
        .filter(refresh_token::Column::Jti.eq(jti))
        .one(&app.db)
        .await
        .unwrap()
}

fn jti_of(token: &str) -> String {
    crate::jwt::payload(token)["jti"].as_str().unwrap().to_owned()
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
    assert_eq!(
        crate::jwt::payload(&r3)["sid"],
        crate::jwt::payload(r1)["sid"],
        "one session"
    );
    let spent: HashSet<String> = session_rows(&app, &r3).await.into_iter().map(|r| r.jti).collect();
    assert_eq!(spent, HashSet::from([jti_of(r1), jti_of(r2)]), "the two spent tokens");
    assert_eq!(app.refresh(&r3).await.status(), 200);
}

async fn a_login_writes_no_refresh_row_and_a_rotation_writes_only_the_spent_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let login = app.login_new_kakao_user(1).await;
    let r1 = login["refresh"].as_str().unwrap();
    let again = app.post_kakao_login(&json!({"access_token": "token-1"})).await;
    let r1b = json_of(again).await["refresh"].as_str().unwrap().to_owned();

    assert_eq!(
        refresh_token::Entity::find().count(&app.db).await.unwrap(),
        0,
        "no row at login"
    );
    assert_eq!(
        app.verify_token(r1).await.status(),
        200,
        "a token without a row is live"
    );
    let r2 = json_of(app.refresh(r1).await).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();

    let rows = refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let spent = &rows[0];
    assert_eq!(spent.jti, jti_of(r1));
    assert_eq!(spent.replaced_by.as_deref(), Some(jti_of(&r2).as_str()));
    assert!(spent.rotated_at.is_some() && spent.revoked_at.is_none());
    assert_eq!(spent.family, crate::jwt::payload(r1)["sid"].as_str().unwrap());
    assert_eq!(
        spent.expires_at.timestamp(),
        crate::jwt::payload(r1)["exp"].as_i64().unwrap()
    );
    assert!(
        row_of(&app, &r2).await.is_none(),
        "the successor has no row until it is spent"
    );
    assert_eq!(
        app.refresh(&r1b).await.status(),
        200,
        "the other login's token is untouched"
    );
}

async fn blacklisting_a_never_rotated_token_stores_a_row_that_blocks_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let simplejwt = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let dj_rest_auth = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();

    let blacklisted = app
        .post_json("/api/token/blacklist/", &json!({"refresh": simplejwt}))
        .await;
    assert_eq!(json_of(blacklisted).await, json!({}));
    assert_eq!(
        json_of(app.logout(&dj_rest_auth).await).await["detail"],
        "Successfully logged out."
    );

    for token in [&simplejwt, &dj_rest_auth] {
        let row = row_of(&app, token).await.expect("a row for the blacklisted token");
        assert!(row.revoked_at.is_some() && row.rotated_at.is_none(), "{row:?}");
        assert_error(app.refresh(token).await, 401, "token_not_valid").await;
        assert_error(app.verify_token(token).await, 401, "token_not_valid").await;
        let compat = app.post_json("/api/token/refresh/", &json!({"refresh": token})).await;
        assert_error(compat, 401, "token_not_valid").await;
    }
    assert_eq!(
        refresh_token::Entity::find().count(&app.db).await.unwrap(),
        2,
        "nothing else"
    );
}

async fn a_live_row_stored_before_logins_stopped_writing_rows_still_rotates_once(backend: Backend) {
    let grace = std::time::Duration::from_secs(2);
    let app = spawn_app_with(backend, |s| s.jwt.refresh_reuse_grace = grace).await;
    let r1 = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = crate::jwt::payload(&r1);
    let at = |secs: &Value| chrono::DateTime::from_timestamp(secs.as_i64().unwrap(), 0).unwrap();
    // The row every login wrote until now: live, in the token's session.
    authbridge::store::tokens::insert_refresh(
        &app.db,
        authbridge::store::tokens::NewRefresh {
            jti: claims["jti"].as_str().unwrap(),
            user_id: claims["user_id"].as_i64().unwrap() as i32,
            family: claims["sid"].as_str().unwrap(),
            issued_at: at(&claims["iat"]),
            expires_at: at(&claims["exp"]),
        },
    )
    .await
    .unwrap();

    let responses = futures::future::join_all((0..5).map(|_| app.refresh(&r1))).await;
    let mut successors = HashSet::new();
    for response in responses {
        successors.insert(json_of(response).await["refresh"].as_str().unwrap().to_owned());
    }

    assert_eq!(successors.len(), 1, "one successor for the stored token");
    let row = row_of(&app, &r1).await.unwrap();
    assert_eq!(row.replaced_by, Some(jti_of(successors.iter().next().unwrap())));
    // Past the grace interval (and a second more: `rotated_at` may be kept in whole seconds).
    tokio::time::sleep(grace + std::time::Duration::from_millis(1100)).await;
    assert_error(app.refresh(&r1).await, 401, "token_not_valid").await;
    let successor = successors.into_iter().next().unwrap();
    assert_error(app.refresh(&successor).await, 401, "token_not_valid").await;
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
    let successor = successors.into_iter().next().unwrap();
    let rows = session_rows(&app, &r1).await;
    assert_eq!(rows.len(), 1, "one spent row: {rows:?}");
    assert_eq!(rows[0].replaced_by, Some(jti_of(&successor)));
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
    let spent = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let live = json_of(app.refresh(&spent).await).await["refresh"]
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
    assert_eq!(
        refresh_token::Entity::find().count(&app.db).await.unwrap(),
        1,
        "the spent token's row stays while the token could be replayed"
    );
    assert_eq!(app.refresh(&live).await.status(), 200);
}

async fn a_rotation_for_a_deleted_user_claims_nothing_and_spares_its_batch(backend: Backend) {
    use authbridge::write_queue::{Spent, Successor, WriteQueue};
    let app = spawn_app(backend).await;
    let user_id = app.login_new_kakao_user(5).await["user"]["pk"].as_i64().unwrap() as i32;
    let writer = WriteQueue::start(
        app.db.clone(),
        app.write_turn.clone(),
        authbridge::metrics::Metrics::default(),
    );
    let now = chrono::Utc::now();
    let rotation = |jti: &str, user_id: i32| {
        let spent = Spent {
            jti: jti.to_owned(),
            user_id,
            family: Some("f".to_owned()),
            issued_at: now,
            expires_at: now + chrono::Duration::hours(1),
        };
        let successor = Successor {
            jti: format!("{jti}-next"),
            issued_at: now,
        };
        writer.rotate(spent, successor)
    };

    // Queued together, written as one batch; the token of a user that does not exist (deleted
    // meanwhile, unseen by a cached standing) is not claimed, and its row would break the
    // foreign key.
    let (first, orphan, last) = tokio::join!(
        rotation("row-a", user_id),
        rotation("row-b", 999_999),
        rotation("row-c", user_id),
    );

    assert!(
        matches!((&first, &last), (Ok(Some(_)), Ok(Some(_)))),
        "{first:?} {last:?}"
    );
    assert!(matches!(orphan, Ok(None)), "{orphan:?}");
    let stored = refresh_token::Entity::find()
        .filter(refresh_token::Column::Family.eq("f"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 2);
}

/// A spent token whose row were purged before the token expired could be claimed again (a
/// second successor, no reuse detection): the row keeps the token's `exp` whatever the lifetime
/// is configured to when it is spent.
async fn a_spent_row_outlives_its_token_when_the_lifetime_is_shortened(backend: Backend) {
    let app = spawn_app(backend).await;
    let r1 = app.login_new_kakao_user(1).await["refresh"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut shorter = app.settings.clone();
    shorter.jwt.refresh_token_lifetime = std::time::Duration::from_secs(3600);
    let second = authbridge::app::App::build(shorter).await.unwrap();
    let second_address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped(std::future::pending()));

    let refreshed = app
        .client
        .post(format!("{second_address}/rest-auth/token/refresh/"))
        .json(&json!({"refresh": r1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    let in_two_hours = chrono::Utc::now() + chrono::Duration::hours(2);
    authbridge::store::tokens::purge_expired(&app.db, in_two_hours)
        .await
        .unwrap();

    let row = row_of(&app, &r1).await.expect("the spent row is kept");
    assert_eq!(
        row.expires_at.timestamp(),
        crate::jwt::payload(&r1)["exp"].as_i64().unwrap()
    );
}
