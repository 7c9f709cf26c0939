//! `POST /rest-auth/token/introspect/` (RFC 7662): only registered resource servers may ask; any
//! unusable token is `{"active": false}`; revocations count.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with};

const PASSWORD: &str = "s3cret-pass-word";

/// A registered resource server: `authbridge client add posts`.
async fn add_client(app: &TestApp, client_id: &str) -> String {
    use secrecy::ExposeSecret;
    authbridge::resource_clients::create(&app.db, client_id)
        .await
        .expect("client added")
        .expose_secret()
        .to_owned()
}

async fn introspect(app: &TestApp, client: (&str, &str), token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/rest-auth/token/introspect/"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("token", token)])
        .send()
        .await
        .expect("request")
}

async fn answer(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "introspection status");
    response.json().await.unwrap()
}

async fn drf_key(app: &TestApp, username: &str) -> String {
    let response = app
        .post_json("/api-token-auth/", &json!({"username": username, "password": PASSWORD}))
        .await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

on_every_backend!(
    a_live_access_token_is_active_and_names_its_user,
    a_token_key_is_active_until_it_is_logged_out_or_revoked,
);

async fn a_live_access_token_is_active_and_names_its_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = add_client(&app, "posts").await;
    let login = app.login_new_kakao_user(3095134389).await;
    let access = login["access"].as_str().unwrap();

    let body = answer(introspect(&app, ("posts", &secret), access).await).await;

    let pk = login["user"]["pk"].as_i64().unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["sub"], pk.to_string());
    assert_eq!(body["user_id"], pk);
    assert_eq!(body["username"], login["user"]["username"]);
    assert_eq!(body["token_type"], "access");
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap(), "{body}");
    // The refresh token does not authenticate requests, so it is not active here either.
    let refresh = answer(introspect(&app, ("posts", &secret), login["refresh"].as_str().unwrap()).await).await;
    assert_eq!(refresh, json!({"active": false}));
}

async fn a_token_key_is_active_until_it_is_logged_out_or_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret = add_client(&app, "posts").await;
    app.create_local_user("bob", "", PASSWORD).await;
    let logged_out = drf_key(&app, "bob").await;
    let revoked = drf_key(&app, "bob").await;
    let jwt = app
        .obtain_pair("bob", PASSWORD, None)
        .await
        .json::<Value>()
        .await
        .unwrap();

    let body = answer(introspect(&app, ("posts", &secret), &logged_out).await).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["username"], "bob");
    assert_eq!(body["token_type"], "token");
    assert!(body.get("exp").is_none(), "DRF keys do not expire: {body}");

    let logout = app.logout_token_key(&logged_out).await;
    assert_eq!(logout.status(), 200);
    let body = answer(introspect(&app, ("posts", &secret), &logged_out).await).await;
    assert_eq!(body, json!({"active": false}));

    let logout_all = app.logout_all(jwt["access"].as_str().unwrap()).await;
    assert_eq!(logout_all.status(), 200);
    let body = answer(introspect(&app, ("posts", &secret), &revoked).await).await;
    assert_eq!(body, json!({"active": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_expired_and_unknown_tokens_are_inactive_without_a_reason() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = add_client(&app, "posts").await;
    let expired = app
        .sign_with_app_key(&json!({"token_type": "access", "exp": 1, "iat": 0, "jti": "x", "user_id": 1}))
        .await;

    for token in ["", "not-a-token", &"0".repeat(40), &expired] {
        let body = answer(introspect(&app, ("posts", &secret), token).await).await;
        assert_eq!(body, json!({"active": false}), "{token:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_registered_clients_may_introspect() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = add_client(&app, "posts").await;
    let login = app.login_new_kakao_user(1).await;
    let access = login["access"].as_str().unwrap();

    for client in [("posts", "wrong"), ("nobody", secret.as_str()), ("posts", "")] {
        let response = introspect(&app, client, access).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Basic realm="authbridge""#,
            "{client:?}"
        );
        assert_error(response, 401, "invalid_client").await;
    }
    let anonymous = app
        .post_json("/rest-auth/token/introspect/", &json!({"token": access}))
        .await;
    assert_error(anonymous, 401, "invalid_client").await;
    // The form's credentials work as well as Basic auth (RFC 6749 2.3.1), but not both at once.
    let form = app
        .client
        .post(app.url("/rest-auth/token/introspect/"))
        .form(&[("token", access), ("client_id", "posts"), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer(form).await["active"], true);
    let both = app
        .client
        .post(app.url("/rest-auth/token/introspect/"))
        .basic_auth("posts", Some(&secret))
        .form(&[("token", access), ("client_id", "posts"), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    let body = assert_error(both, 400, "invalid").await;
    assert!(body["client_id"].is_array(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_is_rate_limited_per_client() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.rate_limits.introspect_per_client = authbridge::config::Rate::new(2, std::time::Duration::from_secs(60));
    })
    .await;
    let secret = add_client(&app, "posts").await;

    for _ in 0..2 {
        answer(introspect(&app, ("posts", &secret), "x").await).await;
    }
    let refused = introspect(&app, ("posts", &secret), "x").await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "throttled").await;
}

#[tokio::test]
async fn every_introspection_is_on_the_audit_trail_with_its_client() {
    let app = spawn_app(Backend::Sqlite).await;
    let (admin, _) = crate::admin::staff_session(&app).await;
    let secret = add_client(&app, "posts").await;
    let login = app.login_new_kakao_user(3095134390).await;
    let pk = login["user"]["pk"].as_i64().unwrap();

    answer(introspect(&app, ("posts", &secret), login["access"].as_str().unwrap()).await).await;
    answer(introspect(&app, ("posts", &secret), "not-a-token").await).await;
    assert_eq!(introspect(&app, ("posts", "wrong-secret"), "x").await.status(), 401);

    let trail = crate::admin::audit_events(&app, &admin, "event=token.introspected", 3).await;
    let outcomes: Vec<&str> = trail.iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["invalid_client", "inactive", "active"], "newest first");
    assert_eq!(trail[2]["user_id"], pk);
    assert!(trail.iter().all(|e| e["detail"]["client_id"] == "posts"));
    assert!(
        !serde_json::to_string(&trail).unwrap().contains(&secret),
        "no secret on the trail"
    );
}
