//! Revocation that holds at every token check, step-up that means it, and simplejwt 5.5 tokens
//! (issue 19): the user's revocation point, sessions (`sid`) and `auth_time`.

use std::process::Command;

use entity::user;
use sea_orm::EntityTrait;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with};

on_every_backend!(
    every_revocation_of_a_user_kills_its_access_tokens_everywhere,
    a_session_ended_by_logout_or_reuse_stops_its_access_tokens_at_drf_jwt_refresh,
    a_refresh_racing_a_revocation_leaves_no_live_successor,
    a_django_refresh_token_is_not_adopted_after_the_users_revocation,
    a_revocation_made_elsewhere_reaches_a_caching_instance_within_cache_ttl,
    a_refresh_token_without_a_row_dies_with_its_deleted_user,
    a_refresh_token_without_a_row_is_refused_at_once_after_a_revocation_made_elsewhere,
);

/// An access token the server must refuse everywhere it checks one: requests, both verify
/// endpoints, and djangorestframework-jwt's refresh (which mints a new token from it).
pub async fn assert_access_token_dead(app: &TestApp, access: &str) {
    assert_eq!(
        app.get_user("Bearer", access).await.status(),
        401,
        "GET /rest-auth/user/"
    );
    assert_error(app.verify_token(access).await, 401, "token_not_valid").await;
    let renewed = app.post_json("/api-jwt-auth/refresh/", &json!({"token": access})).await;
    assert_error(renewed, 400, "token_not_valid").await;
    let verified = app.post_json("/api-jwt-auth/verify/", &json!({"token": access})).await;
    assert_error(verified, 400, "token_not_valid").await;
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> Value {
    let response = app
        .post_json(
            "/rest-auth/login/",
            &json!({"username": username, "password": password}),
        )
        .await;
    assert_eq!(response.status(), 200, "login of {username}");
    response.json().await.unwrap()
}

/// Runs the real binary against the app's database, as an operator would.
async fn run_cli(app: &TestApp, args: &[&str]) -> String {
    let db = app.settings.database.url.expose_secret().to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
            .args(&args)
            .env("AUTHBRIDGE_DATABASE_URL", db)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run authbridge");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "authbridge {args:?}: {text}");
        text
    })
    .await
    .unwrap()
}

async fn every_revocation_of_a_user_kills_its_access_tokens_everywhere(backend: Backend) {
    let app = spawn_app(backend.clone()).await;
    // The CLI is another process: this server sees its change within `cache_ttl`, here at once.
    let uncached = spawn_app_with(backend, |s| s.database.cache_ttl = std::time::Duration::ZERO).await;
    for (app, how) in [
        (&app, "logout/all"),
        (&app, "password change"),
        (&uncached, "user disable"),
    ] {
        let name = format!("u{}", how.len());
        app.create_local_user(&name, "", "a-long-horse-battery").await;
        let session = sign_in(app, &name, "a-long-horse-battery").await;
        let access = session["access"].as_str().unwrap();
        let drf_jwt: Value = app
            .post_json(
                "/api-jwt-auth/",
                &json!({"username": name, "password": "a-long-horse-battery"}),
            )
            .await
            .json()
            .await
            .unwrap();
        let renewed = app.post_json("/api-jwt-auth/refresh/", &json!({"token": access})).await;
        assert_eq!(renewed.status(), 200, "{how}: before, drf-jwt refresh works");

        let response = match how {
            "logout/all" => app.logout_all(access).await,
            "password change" => {
                app.change_password(access, Some("a-long-horse-battery"), "another-long-phrase")
                    .await
            }
            _ => {
                run_cli(app, &["user", "disable", &name]).await;
                app.get("/healthz").await
            }
        };
        assert_eq!(response.status(), 200, "{how}");

        // The same second, the next: a revocation point counts whole seconds.
        assert_access_token_dead(app, access).await;
        assert_access_token_dead(app, drf_jwt["token"].as_str().unwrap()).await;
        assert_error(
            app.refresh(session["refresh"].as_str().unwrap()).await,
            401,
            "token_not_valid",
        )
        .await;
    }
    // Signing in again right after a revocation gives tokens that work at once.
    app.create_local_user("back", "", "a-long-horse-battery").await;
    let before = sign_in(&app, "back", "a-long-horse-battery").await;
    let logout = app.logout_all(before["access"].as_str().unwrap()).await;
    assert_eq!(logout.status(), 200);
    let after = sign_in(&app, "back", "a-long-horse-battery").await;
    assert_eq!(
        app.get_user("Bearer", after["access"].as_str().unwrap()).await.status(),
        200
    );
    assert_eq!(app.refresh(after["refresh"].as_str().unwrap()).await.status(), 200);
}

async fn a_session_ended_by_logout_or_reuse_stops_its_access_tokens_at_drf_jwt_refresh(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.jwt.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let kept = app.login_new_kakao_user(501).await;
    let ended = app.login_new_kakao_user(501).await;
    let drf_refresh = |token: String| {
        let app = &app;
        async move { app.post_json("/api-jwt-auth/refresh/", &json!({"token": token})).await }
    };

    assert_eq!(app.logout(ended["refresh"].as_str().unwrap()).await.status(), 200);
    assert_error(
        drf_refresh(ended["access"].as_str().unwrap().into()).await,
        400,
        "token_not_valid",
    )
    .await;
    assert_eq!(
        drf_refresh(kept["access"].as_str().unwrap().into()).await.status(),
        200,
        "the user's other session goes on"
    );

    // Reuse of a spent refresh token revokes its session: its access tokens too.
    let rotated: Value = app
        .refresh(kept["refresh"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_error(
        app.refresh(kept["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    for access in [&kept["access"], &rotated["access"]] {
        assert_error(
            drf_refresh(access.as_str().unwrap().into()).await,
            400,
            "token_not_valid",
        )
        .await;
    }
    assert_error(
        app.refresh(rotated["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
}

/// Defect 7 of issue 19: on PostgreSQL (READ COMMITTED) a revocation sweeping the rows of a user
/// or session could miss the successor a concurrent rotation was inserting. The successor must be
/// dead however the two interleave.
async fn a_refresh_racing_a_revocation_leaves_no_live_successor(backend: Backend) {
    let app = spawn_app(backend).await;
    for round in 0..60_i64 {
        let login = app.login_new_kakao_user(7000 + round).await;
        let (access, refresh) = (login["access"].as_str().unwrap(), login["refresh"].as_str().unwrap());
        let revoke_user = round % 2 == 0;
        let revoke = async {
            if revoke_user {
                app.logout_all(access).await
            } else {
                app.logout(refresh).await
            }
        };
        let (refreshed, revoked) = tokio::join!(app.refresh(refresh), revoke);
        assert_eq!(revoked.status(), 200, "round {round}: the revocation");
        if refreshed.status() != 200 {
            continue;
        }
        let successor: Value = refreshed.json().await.unwrap();
        assert_error(
            app.refresh(successor["refresh"].as_str().unwrap()).await,
            401,
            "token_not_valid",
        )
        .await;
        let renewed = app
            .post_json("/api-jwt-auth/refresh/", &json!({"token": successor["access"]}))
            .await;
        assert_error(renewed, 400, "token_not_valid").await;
    }
}

async fn a_django_refresh_token_is_not_adopted_after_the_users_revocation(backend: Backend) {
    let vectors = simplejwt_vectors();
    let app = spawn_app_with(backend, |s| {
        s.jwt.algorithm = authbridge::config::JwtAlgorithm::HS256;
        s.jwt.signing_key = Some(vectors["secret"].as_str().unwrap().to_owned().into());
    })
    .await;
    let alice = app.create_local_user("alice", "", "a-long-horse-battery").await;
    assert_eq!(alice.id, 1, "the vectors were made for pk 1");
    let session = sign_in(&app, "alice", "a-long-horse-battery").await;
    let logout = app.logout_all(session["access"].as_str().unwrap()).await;
    assert_eq!(logout.status(), 200);

    assert_error(
        app.refresh(vectors["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    assert_access_token_dead(&app, vectors["access"].as_str().unwrap()).await;
    let rows = entity::refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert!(
        rows.is_empty(),
        "nothing adopted (and a sign-in writes no row): {rows:?}"
    );
}

/// The status `POST /rest-auth/token/verify/` of `server` gives `access`, and when: polled every
/// 50 ms for `within`, until it is `status`.
async fn verify_until(
    app: &TestApp,
    server: &str,
    access: &str,
    status: u16,
    within: std::time::Duration,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let response = app
            .client
            .post(format!("{server}/rest-auth/token/verify/"))
            .json(&json!({"token": access}))
            .send()
            .await
            .unwrap();
        if response.status() == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "verify still answers {} after {within:?}",
            response.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn a_revocation_made_elsewhere_reaches_a_caching_instance_within_cache_ttl(backend: Backend) {
    // Standings are kept for a minute; the feed of changes must make a second instance, and the
    // CLI's changes, count within `cache_ttl` (1 s) all the same. 3 s leaves room for a slow CI.
    let ttl = std::time::Duration::from_secs(1);
    let app = spawn_app_with(backend, |s| s.database.cache_ttl = ttl).await;
    let other = authbridge::app::App::build(app.settings.clone()).await.unwrap();
    let second = format!("http://127.0.0.1:{}", other.port());
    tokio::spawn(other.run_until_stopped(std::future::pending()));
    let within = 3 * ttl;
    for (name, how) in [("lena", "logout/all on the first instance"), ("mira", "user disable")] {
        app.create_local_user(name, "", "a-long-horse-battery").await;
        let session = sign_in(&app, name, "a-long-horse-battery").await;
        let access = session["access"].as_str().unwrap();
        // The second instance checks the token, and keeps its user's standing.
        verify_until(&app, &second, access, 200, within).await;
        match how {
            "user disable" => {
                run_cli(&app, &["user", "disable", name]).await;
            }
            _ => {
                let logout = app.client.post(app.url("/rest-auth/logout/all/")).bearer_auth(access);
                assert_eq!(logout.send().await.unwrap().status(), 200);
            }
        }
        let took = verify_until(&app, &second, access, 401, within).await;
        eprintln!("{how}: the second instance refused the token after {took:?}");
    }
}

fn simplejwt_vectors() -> Value {
    serde_json::from_str(include_str!("../vectors/simplejwt_5_5.json")).unwrap()
}

#[tokio::test]
async fn tokens_made_by_simplejwt_5_5_with_a_string_user_id_are_accepted() {
    let vectors = simplejwt_vectors();
    assert_eq!(vectors["simplejwt_version"], "5.5.1");
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.jwt.algorithm = authbridge::config::JwtAlgorithm::HS256;
        s.jwt.signing_key = Some(vectors["secret"].as_str().unwrap().to_owned().into());
    })
    .await;
    app.create_local_user("alice", "alice@x.io", "a-long-horse-battery")
        .await;

    let me = app.get_user("Bearer", vectors["access"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["username"], "alice");
    assert_eq!(
        app.verify_token(vectors["refresh"].as_str().unwrap()).await.status(),
        200
    );
    let refreshed = app.refresh(vectors["refresh"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let claims = crate::jwt::payload(refreshed["access"].as_str().unwrap());
    assert_eq!(claims["user_id"], 1, "ours stay numbers");
    assert!(claims["sid"].is_string(), "the adopted token got a session: {claims}");
}

#[tokio::test]
async fn our_tokens_name_their_session_and_keep_the_sign_in_time_through_refreshes() {
    let app = spawn_app(Backend::Sqlite).await;
    let login = app.login_new_kakao_user(601).await;
    let access = crate::jwt::payload(login["access"].as_str().unwrap());
    let refresh = crate::jwt::payload(login["refresh"].as_str().unwrap());
    assert!(
        access["sid"].is_string() && access["sid"] == refresh["sid"],
        "{access} {refresh}"
    );
    assert_eq!(access["auth_time"], access["iat"]);

    // Not a cache wait: a new second, so the refreshed tokens' `iat` differs from `auth_time`.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let next: Value = app
        .refresh(login["refresh"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    for token in [&next["access"], &next["refresh"]] {
        let claims = crate::jwt::payload(token.as_str().unwrap());
        assert_eq!(claims["sid"], access["sid"]);
        assert_eq!(
            claims["auth_time"], access["auth_time"],
            "the sign-in time is carried over"
        );
        assert!(claims["iat"].as_i64() > access["iat"].as_i64());
    }
}

#[tokio::test]
async fn a_refreshed_or_stolen_token_is_not_a_recent_sign_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let login = app.login_new_kakao_user(611).await;
    let pk = login["user"]["pk"].clone();
    let stale = app.access_signed_in_long_ago(&pk).await;
    // djangorestframework-jwt's refresh mints a token with `iat` now: still not a sign-in.
    let renewed: Value = app
        .post_json("/api-jwt-auth/refresh/", &json!({"token": stale}))
        .await
        .json()
        .await
        .unwrap();
    for token in [stale.as_str(), renewed["token"].as_str().unwrap()] {
        let set_password = app.change_password(token, None, "a-stolen-long-phrase").await;
        assert_error(set_password, 403, "reauthentication_required").await;
        let delete = app.delete_user(token, None).await;
        assert_error(delete, 403, "reauthentication_required").await;
        app.kakao
            .accepts_token("second-account", crate::kakao::minimal_user(612));
        let connect = app.connect_kakao(token, "second-account").await;
        assert_error(connect, 403, "reauthentication_required").await;
    }
    let row = user::Entity::find_by_id(pk.as_i64().unwrap() as i32)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.password.starts_with('!'), "no password was set");

    // The owner, signed in a moment ago, may.
    let fresh = login["access"].as_str().unwrap();
    let set_password = app.change_password(fresh, None, "the-owners-long-phrase").await;
    assert_eq!(set_password.status(), 200);
}

#[tokio::test]
async fn disconnecting_needs_the_password_or_a_recent_sign_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let owner = app.create_local_user("owner", "", "a-long-horse-battery").await;
    let session = sign_in(&app, "owner", "a-long-horse-battery").await;
    app.kakao.accepts_token("linked", crate::kakao::minimal_user(621));
    let connect = app.connect_kakao(session["access"].as_str().unwrap(), "linked").await;
    assert_eq!(connect.status(), 200);
    let id = entity::social_account::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .id;
    let stale = app.access_signed_in_long_ago(&json!(owner.id)).await;

    assert_error(
        app.disconnect_social_account(&stale, id, Some(&json!({}))).await,
        403,
        "reauthentication_required",
    )
    .await;
    assert_error(
        app.disconnect_social_account(&stale, id, Some(&json!({"password": "wrong"})))
            .await,
        400,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.disconnect_social_account(&stale, id, Some(&json!({"password": "a-long-horse-battery"})))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_database_fault_is_503_never_token_not_valid() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.database.cache_ttl = std::time::Duration::ZERO).await;
    app.create_local_user("dina", "", "a-long-horse-battery").await;
    let session = sign_in(&app, "dina", "a-long-horse-battery").await;
    let key: Value = app
        .post_json(
            "/api-token-auth/",
            &json!({"username": "dina", "password": "a-long-horse-battery"}),
        )
        .await
        .json()
        .await
        .unwrap();
    // A second server on the same database whose pool is then closed: its database is "down".
    let other = authbridge::app::App::build(app.settings.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", other.port());
    let pool = other.state().db.clone();
    tokio::spawn(other.run_until_stopped(std::future::pending()));
    pool.close_by_ref().await.unwrap();

    let refresh = app
        .client
        .post(format!("{address}/rest-auth/token/refresh/"))
        .json(&json!({"refresh": session["refresh"]}))
        .send()
        .await
        .unwrap();
    assert_error(refresh, 503, "service_unavailable").await;
    let by_key = app
        .client
        .get(format!("{address}/rest-auth/user/"))
        .header("authorization", format!("Token {}", key["token"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_error(by_key, 503, "service_unavailable").await;
    let by_jwt = app
        .client
        .get(format!("{address}/rest-auth/user/"))
        .bearer_auth(session["access"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_error(by_jwt, 503, "service_unavailable").await;
}

#[tokio::test]
async fn a_revoked_signing_key_stops_verifying_and_keys_list_says_so() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.jwt.key_reload_interval = std::time::Duration::from_millis(200)
    })
    .await;
    let login = app.login_new_kakao_user(631).await;
    let access = login["access"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_user("Bearer", &access).await.status(),
        200,
        "verified once: remembered"
    );
    let kid = entity::signing_key::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .kid;

    let out = run_cli(&app, &["keys", "revoke", &kid]).await;
    assert!(out.contains("revoked") && out.contains("new signing key"), "{out}");
    let mut refused = false;
    for _ in 0..50 {
        if app.get_user("Bearer", &access).await.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "a token of the revoked key is refused within the reload interval"
    );
    assert_error(
        app.refresh(login["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != kid.as_str()),
        "{jwks}"
    );

    let again = app.login_new_kakao_user(632).await;
    assert_eq!(
        app.get_user("Bearer", again["access"].as_str().unwrap()).await.status(),
        200
    );
    let listed = run_cli(&app, &["keys", "list"]).await;
    assert!(
        listed.contains(&format!("{kid}  created")) && listed.contains("revoked") && listed.contains("signing"),
        "{listed}"
    );
}

/// A login stores nothing for its refresh token; deleting the user must kill it all the same,
/// and its refresh must not adopt it back as a row.
async fn a_refresh_token_without_a_row_dies_with_its_deleted_user(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_local_user("gone", "", "a-long-horse-battery").await;
    let session = sign_in(&app, "gone", "a-long-horse-battery").await;
    let refresh = session["refresh"].as_str().unwrap();
    assert_eq!(app.verify_token(refresh).await.status(), 200, "live before");

    let deleted = app
        .delete_user(
            session["access"].as_str().unwrap(),
            Some(&json!({"password": "a-long-horse-battery"})),
        )
        .await;
    assert_eq!(deleted.status(), 204);

    assert_error(app.refresh(refresh).await, 401, "token_not_valid").await;
    assert_error(app.verify_token(refresh).await, 401, "token_not_valid").await;
    let blacklisted = app
        .post_json("/api/token/blacklist/", &json!({"refresh": refresh}))
        .await;
    assert_error(blacklisted, 401, "token_not_valid").await;
    let rows = entity::refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert!(rows.is_empty(), "{rows:?}");
}

/// The cached standing of a user may be `cache_ttl` behind a revocation made by another
/// instance or the CLI; a refresh token without a row must not live on through it.
async fn a_refresh_token_without_a_row_is_refused_at_once_after_a_revocation_made_elsewhere(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database.cache_ttl = std::time::Duration::from_secs(60)).await;
    app.create_local_user("far", "", "a-long-horse-battery").await;
    let session = sign_in(&app, "far", "a-long-horse-battery").await;
    let (access, refresh) = (
        session["access"].as_str().unwrap(),
        session["refresh"].as_str().unwrap(),
    );
    assert_eq!(
        app.get_user("Bearer", access).await.status(),
        200,
        "the standing is cached"
    );

    run_cli(&app, &["user", "disable", "far"]).await;

    assert_error(app.verify_token(refresh).await, 401, "token_not_valid").await;
    assert_error(app.refresh(refresh).await, 401, "token_not_valid").await;
    let rows = entity::refresh_token::Entity::find().all(&app.db).await.unwrap();
    assert!(rows.is_empty(), "nothing claimed: {rows:?}");
}
