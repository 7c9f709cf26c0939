//! The admin API for staff users, and the audit trail it reads (issue 23).

use std::time::Duration;

use entity::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with},
    kakao::full_user,
};

on_every_backend!(
    staff_manage_users_and_every_action_lands_on_the_audit_trail,
    a_burst_of_audit_events_lands_whole_in_a_few_statement_sizes
);

/// A staff user signed in; returns its access token and pk.
pub async fn staff_session(app: &TestApp) -> (String, i32) {
    let admin = app.create_local_user("root", "", "a-long-horse-battery").await;
    let mut row: user::ActiveModel = admin.clone().into();
    row.is_staff = Set(true);
    row.update(&app.db).await.unwrap();
    let pair = app.signed_in_pair("root", "a-long-horse-battery").await;
    (pair["access"].as_str().unwrap().to_owned(), admin.id)
}

/// The audit events matching `query`, once `wanted` of them are there (events are written in
/// batches a moment after they happen).
pub async fn audit_events(app: &TestApp, token: &str, query: &str, wanted: usize) -> Vec<Value> {
    let mut events = Vec::new();
    for _ in 0..50 {
        let page: Value = app
            .get_as(token, &format!("/admin/api/audit/?{query}"))
            .await
            .json()
            .await
            .unwrap();
        events = page["results"].as_array().cloned().unwrap_or_default();
        if events.len() >= wanted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    events
}

async fn staff_manage_users_and_every_action_lands_on_the_audit_trail(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id) = staff_session(&app).await;
    app.kakao
        .accepts_token("kim-token", full_user(9001, "kim@example.com", true, true));
    let login = app
        .post_kakao_login_with_headers(
            &[("x-request-id", "req-kim-1"), ("user-agent", "KakaoTalk-app/1.0")],
            &json!({"access_token": "kim-token"}),
        )
        .await;
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let kim = login["user"]["pk"].as_i64().unwrap();

    // Not staff, not signed in.
    let access = login["access"].as_str().unwrap();
    assert_error(app.get_as(access, "/admin/api/users/").await, 403, "permission_denied").await;
    assert_error(app.get("/admin/api/users/").await, 401, "not_authenticated").await;

    let all: Value = app
        .get_as(&admin, "/admin/api/users/?page_size=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["count"], 2);
    assert_eq!(all["results"].as_array().unwrap().len(), 1);
    for search in ["KIM@EXAMPLE", "9001"] {
        let found: Value = app
            .get_as(&admin, &format!("/admin/api/users/?search={search}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(found["count"], 1, "search {search}: {found}");
        assert_eq!(found["results"][0]["pk"], kim);
    }
    let detail: Value = app
        .get_as(&admin, &format!("/admin/api/users/{kim}/"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["social_accounts"][0]["uid"], "9001");
    assert!(!detail.to_string().contains("password\":\""), "no hash: {detail}");

    let disabled = app
        .post_json_as(&admin, &format!("/admin/api/users/{kim}/disable/"), &json!({}))
        .await;
    assert_eq!(disabled.status(), 200);
    assert_eq!(app.get_user("Bearer", access).await.status(), 401);
    assert_error(
        app.refresh(login["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    let enabled = app
        .post_json_as(&admin, &format!("/admin/api/users/{kim}/enable/"), &json!({}))
        .await;
    assert_eq!(enabled.status(), 200);
    let again = app.post_kakao_login(&json!({"access_token": "kim-token"})).await;
    assert_eq!(again.status(), 200, "signs in again once enabled");
    let again: Value = again.json().await.unwrap();
    let revoked = app
        .post_json_as(&admin, &format!("/admin/api/users/{kim}/revoke-sessions/"), &json!({}))
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        app.get_user("Bearer", again["access"].as_str().unwrap()).await.status(),
        401
    );

    let deleted = app.delete_as(&admin, &format!("/admin/api/users/{kim}/")).await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(crate::kakao::unlinked(&app.kakao), [9001], "unlinked at Kakao first");
    assert!(
        user::Entity::find_by_id(kim as i32)
            .one(&app.db)
            .await
            .unwrap()
            .is_none()
    );

    let trail = audit_events(&app, &admin, &format!("user={kim}"), 6).await;
    let names: Vec<&str> = trail.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for wanted in [
        "login.succeeded",
        "user.disabled",
        "user.enabled",
        "sessions.revoked",
        "account.deleted",
    ] {
        assert!(names.contains(&wanted), "{wanted} in {names:?}");
    }
    let first_login = trail.iter().rfind(|e| e["event"] == "login.succeeded").unwrap();
    assert_eq!(first_login["provider"], "kakao");
    assert_eq!(first_login["method"], "access_token");
    assert_eq!(first_login["request_id"], "req-kim-1");
    assert_eq!(first_login["user_agent"], "KakaoTalk-app/1.0");
    assert_eq!(first_login["client_ip"], "127.0.0.1");
    let disabling = trail.iter().find(|e| e["event"] == "user.disabled").unwrap();
    assert_eq!(disabling["actor_id"], admin_id);
    assert_eq!(disabling["method"], "admin_api");
    let page: Value = app
        .get_as(&admin, &format!("/admin/api/audit/?user={kim}&event=user.enabled"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["count"], 1);
}

#[tokio::test]
async fn security_events_are_on_the_trail_without_secrets() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = staff_session(&app).await;
    let ann = app.create_local_user("ann", "", "ann-secret-phrase-1").await;
    assert_eq!(app.obtain_pair("ann", "a-wrong-guess-here", None).await.status(), 401);
    let pair = app.signed_in_pair("ann", "ann-secret-phrase-1").await;
    let access = pair["access"].as_str().unwrap();
    assert_eq!(
        app.change_password(access, Some("ann-secret-phrase-1"), "ann-new-phrase-22")
            .await
            .status(),
        200
    );
    let pair = app.signed_in_pair("ann", "ann-new-phrase-22").await;
    assert_eq!(app.logout(pair["refresh"].as_str().unwrap()).await.status(), 200);

    let trail = audit_events(&app, &admin, &format!("user={}", ann.id), 5).await;
    let names: Vec<&str> = trail.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "logout",
            "login.succeeded",
            "password.changed",
            "login.succeeded",
            "login.failed"
        ],
        "newest first"
    );
    let failed = &trail[4];
    assert_eq!(failed["outcome"], "invalid_credentials");
    assert_eq!(failed["method"], "password");
    let text = serde_json::to_string(&trail).unwrap();
    for secret in ["ann-secret-phrase-1", "a-wrong-guess-here", "ann-new-phrase-22", access] {
        assert!(!text.contains(secret), "no secret on the trail");
    }
}

#[tokio::test]
async fn sites_social_apps_and_signing_keys_through_the_admin_api() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = staff_session(&app).await;

    let site: Value = app
        .post_json_as(
            &admin,
            "/admin/api/sites/",
            &json!({"domain": "Shop.Example.org", "name": "Shop"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(site["domain"], "shop.example.org");
    let taken = app
        .post_json_as(
            &admin,
            "/admin/api/sites/",
            &json!({"domain": "shop.example.org", "name": "x"}),
        )
        .await;
    assert_error(taken, 400, "invalid").await;
    let default_site = app.delete_as(&admin, "/admin/api/sites/1/").await;
    assert_error(default_site, 400, "invalid").await;

    let saved = app
        .post_json_as(
            &admin,
            "/admin/api/socialapps/",
            &json!({"provider": "kakao", "name": "Shop app", "client_id": "shop-rest-key", "secret": "TOP-SECRET-VALUE",
               "admin_key": "ADMIN-SECRET-VALUE", "app_ids": ["777"], "sites": [site["id"]]}),
        )
        .await;
    assert_eq!(saved.status(), 200);
    let listed = app.get_as(&admin, "/admin/api/socialapps/").await.text().await.unwrap();
    assert!(
        listed.contains("shop-rest-key") && listed.contains("\"has_secret\":true"),
        "{listed}"
    );
    assert!(!listed.contains("SECRET-VALUE"), "secrets are write-only: {listed}");
    let apple = app
        .post_json_as(
            &admin,
            "/admin/api/socialapps/",
            &json!({"provider": "apple", "name": "Apple", "client_id": "com.shop.app", "secret": "-----BEGIN PRIVATE KEY-----",
               "settings": {"team_id": "TEAM123456", "key_id": "KEY1234567"}, "sites": [site["id"]]}),
        )
        .await;
    assert_eq!(apple.status(), 200);
    let apple: Value = apple.json().await.unwrap();
    assert_eq!(
        apple["settings"],
        json!({"link_by_email": false, "team_id": "TEAM123456", "key_id": "KEY1234567"})
    );
    let stored = authbridge::store::social::list_apps(&app.db).await.unwrap();
    let stored = stored.iter().find(|a| a.provider == "apple").unwrap();
    assert_eq!(
        stored.settings.team_id.as_deref(),
        Some("TEAM123456"),
        "the settings reach the provider"
    );

    let old = app.login_new_kakao_user(9101).await;
    let rotated: Value = app
        .post_json_as(&admin, "/admin/api/keys/rotate/", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new = app.login_new_kakao_user(9102).await;
    let header = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(
        header(new["access"].as_str().unwrap()),
        rotated["signing_kid"].as_str().unwrap()
    );
    let old_kid = header(old["access"].as_str().unwrap());
    assert_eq!(
        app.get_user("Bearer", old["access"].as_str().unwrap()).await.status(),
        200,
        "retired keys verify"
    );

    let revoked = app
        .post_json_as(&admin, &format!("/admin/api/keys/{old_kid}/revoke/"), &json!({}))
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        app.get_user("Bearer", old["access"].as_str().unwrap()).await.status(),
        401,
        "at once here"
    );
    assert_eq!(
        app.get_user("Bearer", new["access"].as_str().unwrap()).await.status(),
        200
    );
    // The staff session was signed by the revoked key too: sign in again.
    assert_eq!(app.get_as(&admin, "/admin/api/keys/").await.status(), 401);
    let pair = app.signed_in_pair("root", "a-long-horse-battery").await;
    let admin = pair["access"].as_str().unwrap().to_owned();
    let keys: Value = app.get_as(&admin, "/admin/api/keys/").await.json().await.unwrap();
    let state_of = |kid: &str| keys.as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap()["state"].clone();
    assert_eq!(state_of(&old_kid), "revoked");
    assert_eq!(state_of(rotated["signing_kid"].as_str().unwrap()), "signing");
    let unknown = app
        .post_json_as(&admin, "/admin/api/keys/nope/revoke/", &json!({}))
        .await;
    assert_error(unknown, 404, "not_found").await;
}

#[tokio::test]
async fn audit_events_older_than_the_retention_are_purged() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.audit.retention = Duration::from_secs(3600);
        s.database.maintenance_interval = Duration::from_millis(200);
    })
    .await;
    let (admin, _) = staff_session(&app).await;
    let old = entity::audit_event::ActiveModel {
        at: Set(chrono::Utc::now() - chrono::Duration::days(2)),
        event: Set("login.succeeded".into()),
        ..Default::default()
    };
    old.insert(&app.db).await.unwrap();
    let mut remaining = 1;
    for _ in 0..50 {
        let until =
            (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let page: Value = app
            .get_as(&admin, &format!("/admin/api/audit/?until={until}"))
            .await
            .json()
            .await
            .unwrap();
        remaining = page["count"].as_u64().unwrap();
        if remaining == 0 {
            break;
        }
        // Not a cache wait: the purge is the maintenance task's, on its own interval.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(remaining, 0, "the two-day-old event is purged");
}

/// 300 events at once (more than one batch, and no power of two: statements of 64, 32 and 8
/// rows) all land, through the same writer the server runs, sharing its write turn; stopping
/// the writer right after they were queued (as the server does when it stops) loses none.
async fn a_burst_of_audit_events_lands_whole_in_a_few_statement_sizes(backend: Backend) {
    let app = spawn_app(backend).await;
    let trail = authbridge::audit::Audit::start(app.db.clone(), app.write_turn.clone());
    let origin = authbridge::audit::Origin::default();
    for i in 0..300 {
        trail.record(&origin, authbridge::audit::Entry::new("burst.test").user(i));
    }

    trail.finish().await;

    let burst = entity::audit_event::Column::Event.eq("burst.test");
    let written = entity::audit_event::Entity::find()
        .filter(burst)
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(written, 300);
}
