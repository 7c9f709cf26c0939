//! Rate limits of password logins (api.md 6): per client IP and per account, 429 with
//! `Retry-After`, forwarded headers only from trusted proxies, shared through Redis.

use std::time::Duration;

use authbridge::config::{Rate, Settings};
use entity::user;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, spawn_app, spawn_app_with, test_redis_url};

const PASSWORD: &str = "s3cret-pass";

fn per_hour(count: u32) -> Rate {
    Rate::new(count, Duration::from_secs(3600))
}

/// Low limits that no test outlives: `account` per account, `ip` per client IP.
fn limits(account: u32, ip: u32) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.rate_limits.login_per_account = per_hour(account);
        s.rate_limits.login_per_ip = per_hour(ip);
    }
}

/// Asserts a 429 with DRF's body and a `Retry-After` in whole seconds; returns the seconds.
async fn assert_throttled(response: reqwest::Response) -> u64 {
    let retry_after = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse::<u64>()
        .expect("Retry-After in seconds");
    let body = assert_error(response, 429, "throttled").await;
    assert_eq!(
        body["detail"],
        format!("Request was throttled. Expected available in {retry_after} seconds.")
    );
    assert!(retry_after >= 1, "{retry_after}");
    retry_after
}

async fn status(response: reqwest::Response) -> u16 {
    response.status().as_u16()
}

async fn last_login(app: &TestApp, id: i32) -> Option<chrono::DateTime<chrono::Utc>> {
    user::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .last_login
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_eleventh_bad_login_in_a_minute_is_throttled_with_retry_after() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = app.create_local_user("alice", "alice@example.com", PASSWORD).await;

    for n in 1..=10 {
        assert_eq!(
            status(app.obtain_pair("alice", "wrong", None).await).await,
            401,
            "attempt {n}"
        );
    }
    let retry_after = assert_throttled(app.obtain_pair("alice", "wrong", None).await).await;

    // 10/min: one attempt comes back every 6 s. The right password is refused too, unchecked.
    assert!(retry_after <= 6, "{retry_after}");
    assert_throttled(app.obtain_pair("alice", PASSWORD, None).await).await;
    assert_eq!(last_login(&app, alice.id).await, None, "no login happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_accounts_from_the_same_ip_are_held_by_the_ip_limit() {
    let app = spawn_app_with(Backend::Sqlite, limits(10, 3)).await;

    for name in ["a", "b", "c"] {
        assert_eq!(status(app.obtain_pair(name, "wrong", None).await).await, 401, "{name}");
    }
    let retry_after = assert_throttled(app.obtain_pair("d", "wrong", None).await).await;

    assert!(
        retry_after > 1000 && retry_after <= 1200,
        "3/hour: one back every 20 min: {retry_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_usernames_case_or_the_endpoint_does_not_escape_the_account_limit() {
    let app = spawn_app_with(Backend::Sqlite, limits(3, 100)).await;
    let alice = app.create_local_user("alice", "alice@example.com", PASSWORD).await;

    assert_eq!(status(app.obtain_pair("alice", "wrong", None).await).await, 401);
    assert_eq!(status(app.obtain_pair("Alice", "wrong", None).await).await, 401);
    // The other token endpoints are password logins too: the same budget.
    let drf = app
        .post_json("/api-token-auth/", &json!({"username": " ALICE ", "password": "wrong"}))
        .await;
    assert_eq!(status(drf).await, 400);

    assert_throttled(app.obtain_pair("aLiCe", PASSWORD, None).await).await;
    let jwt = app
        .post_json("/api-jwt-auth/", &json!({"username": "alice", "password": PASSWORD}))
        .await;
    assert_throttled(jwt).await;
    assert_eq!(last_login(&app, alice.id).await, None);
    // Another account is not held by alice's budget.
    assert_eq!(status(app.obtain_pair("bob", "wrong", None).await).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(Backend::Sqlite, limits(10, 3)).await;

    for (n, client) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"].iter().enumerate() {
        let response = app.obtain_pair(&format!("user{n}"), "wrong", Some(client)).await;
        assert_eq!(status(response).await, 401);
    }

    assert_throttled(app.obtain_pair("user9", "wrong", Some("203.0.113.4")).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_a_trusted_proxy_separates_clients() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        limits(10, 2)(s);
        s.proxies.trusted = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;

    for n in 0..2 {
        let response = app.obtain_pair(&format!("user{n}"), "wrong", Some("203.0.113.1")).await;
        assert_eq!(status(response).await, 401);
    }
    assert_throttled(app.obtain_pair("user2", "wrong", Some("203.0.113.1")).await).await;
    // A client that forges the header gets nothing: the proxy appends what it saw, rightmost wins.
    let forged = app
        .obtain_pair("user3", "wrong", Some("198.51.100.9, 203.0.113.1"))
        .await;
    assert_throttled(forged).await;

    let other_client = app.obtain_pair("user4", "wrong", Some("203.0.113.2")).await;
    assert_eq!(status(other_client).await, 401);
    let the_proxy_itself = app.obtain_pair("user5", "wrong", None).await;
    assert_eq!(status(the_proxy_itself).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_429_is_in_every_operations_spec_with_retry_after() {
    let app = spawn_app(Backend::Sqlite).await;

    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();

    let throttled = &spec["paths"]["/api/token/"]["post"]["responses"]["429"];
    let headers = throttled["headers"].as_object().expect("429 headers");
    assert!(
        headers.keys().any(|h| h.eq_ignore_ascii_case("retry-after")),
        "{throttled}"
    );
}

/// Two instances on one Redis, with a key prefix of this test's own.
async fn two_instances_on(redis_url: &str, tweak: impl Fn(&mut Settings)) -> (TestApp, TestApp) {
    let prefix = format!("authbridge-test:{}:", uuid::Uuid::new_v4().simple());
    let settings = |s: &mut Settings| {
        tweak(s);
        s.redis.url = Some(redis_url.to_owned().into());
        s.redis.key_prefix = prefix.clone();
    };
    let first = spawn_app_with(Backend::Sqlite, settings).await;
    let second = spawn_app_with(Backend::Sqlite, settings).await;
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_budget_through_redis() {
    let Some(redis_url) = test_redis_url() else { return };
    let (first, second) = two_instances_on(&redis_url, |s| limits(4, 100)(s)).await;

    for app in [&first, &second, &first, &second] {
        assert_eq!(status(app.obtain_pair("Alice", "wrong", None).await).await, 401);
    }

    let retry_after = assert_throttled(second.obtain_pair("alice", "wrong", None).await).await;
    assert!(
        retry_after > 800 && retry_after <= 900,
        "4/hour: one back every 15 min: {retry_after}"
    );
    assert_throttled(first.obtain_pair("ALICE", "wrong", None).await).await;
    assert_eq!(status(first.obtain_pair("bob", "wrong", None).await).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_budget_is_shared_through_redis_too() {
    let Some(redis_url) = test_redis_url() else { return };
    let (first, second) = two_instances_on(&redis_url, |s| limits(100, 2)(s)).await;

    assert_eq!(status(first.obtain_pair("a", "wrong", None).await).await, 401);
    assert_eq!(status(second.obtain_pair("b", "wrong", None).await).await, 401);

    assert_throttled(first.obtain_pair("c", "wrong", None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_fails_open_to_this_instances_memory_limits() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        limits(2, 100)(s);
        s.redis.url = Some(format!("redis://{closed}").into());
    })
    .await;
    app.create_local_user("alice", "alice@example.com", PASSWORD).await;

    let ok = app.obtain_pair("alice", PASSWORD, None).await;
    assert_eq!(status(ok).await, 200, "logins go on while Redis is down");
    assert_eq!(status(app.obtain_pair("alice", "wrong", None).await).await, 401);

    assert_throttled(app.obtain_pair("alice", PASSWORD, None).await).await;
}

#[tokio::test]
async fn rest_auth_login_registration_and_password_reset_are_limited_too() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.login_per_account = per_hour(2);
        s.rate_limits.register_per_ip = per_hour(2);
        s.rate_limits.password_reset_per_account = per_hour(1);
    })
    .await;
    app.create_local_user("ivy", "", PASSWORD).await;
    for _ in 0..2 {
        let response = app
            .post_json(
                "/rest-auth/login/",
                &serde_json::json!({"username": "ivy", "password": "x"}),
            )
            .await;
        assert_eq!(response.status(), 400);
    }
    let third = app
        .post_json(
            "/rest-auth/login/",
            &serde_json::json!({"username": "IVY", "password": PASSWORD}),
        )
        .await;
    assert_throttled(third).await;

    let register = |n: u32| {
        let body = serde_json::json!({"email": format!("r{n}@x.io"), "password1": "a-long-horse-battery", "password2": "a-long-horse-battery"});
        let app = &app;
        async move { app.post_json("/rest-auth/registration/", &body).await }
    };
    for n in 0..2 {
        assert_ne!(register(n).await.status(), 429);
    }
    assert_throttled(register(3).await).await;

    let reset_body = serde_json::json!({"email": "ivy@x.io"});
    let reset = || app.post_json("/rest-auth/password/reset/", &reset_body);
    assert_ne!(reset().await.status(), 429);
    assert_throttled(reset().await).await;
}

/// An attacker at one address spends its own budget, then is refused without touching alice's:
/// alice, elsewhere, still logs in. With Redis when `redis_url` is given.
async fn an_ip_refusal_spends_nothing_of_the_account(redis_url: Option<String>) {
    let prefix = format!("authbridge-test:{}:", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(Backend::Sqlite, |s| {
        limits(3, 2)(s);
        s.proxies.trusted = vec!["127.0.0.1/32".parse().unwrap()];
        s.redis.url = redis_url.map(Into::into);
        s.redis.key_prefix = prefix;
    })
    .await;
    app.create_local_user("alice", "alice@example.com", PASSWORD).await;
    let attacker = Some("203.0.113.66");

    for _ in 0..2 {
        assert_eq!(status(app.obtain_pair("alice", "wrong", attacker).await).await, 401);
    }
    for _ in 0..5 {
        assert_throttled(app.obtain_pair("alice", "wrong", attacker).await).await;
    }

    let owner = app.obtain_pair("alice", PASSWORD, Some("198.51.100.7")).await;
    assert_eq!(status(owner).await, 200, "one of alice's three attempts is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_by_its_ip_budget_spends_nothing_of_the_accounts() {
    an_ip_refusal_spends_nothing_of_the_account(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_by_its_ip_budget_spends_nothing_of_the_accounts_in_redis() {
    let Some(redis_url) = test_redis_url() else { return };
    an_ip_refusal_spends_nothing_of_the_account(Some(redis_url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_username_and_the_email_of_one_account_share_one_budget() {
    let app = spawn_app_with(Backend::Sqlite, limits(3, 100)).await;
    app.create_local_user("alice", "alice@example.com", PASSWORD).await;

    for name in ["alice", "alice@example.com", "ALICE@Example.com"] {
        assert_eq!(status(app.obtain_pair(name, "wrong", None).await).await, 401, "{name}");
    }

    assert_throttled(app.obtain_pair("alice", PASSWORD, None).await).await;
    assert_throttled(app.obtain_pair("alice@example.com", PASSWORD, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_budgets_keep_at_most_their_cap_of_entries() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        limits(1, 100)(s);
        s.rate_limits.memory_entries = 3;
    })
    .await;
    assert_eq!(status(app.obtain_pair("alice", "wrong", None).await).await, 401);
    assert_throttled(app.obtain_pair("alice", "wrong", None).await).await;

    for name in ["b", "c", "d"] {
        assert_eq!(status(app.obtain_pair(name, "wrong", None).await).await, 401, "{name}");
    }

    // Three newer entries pushed alice's out: she starts again with a full budget.
    assert_eq!(status(app.obtain_pair("alice", "wrong", None).await).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_an_account_spends_the_social_login_budget_before_kakao_is_asked() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.rate_limits.social_login_per_ip = per_hour(1)).await;
    let pair: Value = app.login_new_kakao_user(1).await;
    let access = pair["access"].as_str().unwrap();
    app.kakao.accepts_token("t-2", crate::kakao::minimal_user(2));

    let response = app.connect_kakao(access, "t-2").await;

    assert_throttled(response).await;
    assert_eq!(app.kakao.calls("/v2/user/me"), 1, "only the login asked Kakao");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn social_logins_have_a_per_ip_budget_checked_before_kakao_is_asked() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.rate_limits.social_login_per_ip = per_hour(2)).await;
    for id in 1..=2 {
        app.login_new_kakao_user(id).await;
    }
    app.kakao.accepts_token("t-3", crate::kakao::minimal_user(3));

    let response = app.post_kakao_login(&json!({"access_token": "t-3"})).await;

    assert_throttled(response).await;
    assert_eq!(
        app.kakao.calls("/v2/user/me"),
        2,
        "the third attempt cost no Kakao call"
    );
}
