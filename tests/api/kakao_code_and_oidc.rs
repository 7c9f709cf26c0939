//! Kakao login by authorization code (+ PKCE) and by OIDC id_token (api.md 3, kakao-api.md 4–5).

use std::time::Duration;

use entity::{email_address, social_account};
use kakao_emulator::Fault;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with},
    kakao::{
        CLIENT_SECRET, NATIVE_KEY, NEXT_SIGNING_KEY, NONCE, REST_KEY, full_user, id_claims, id_token, minimal_user,
    },
};

on_every_backend!(
    a_code_with_pkce_is_exchanged_once_and_logs_in,
    an_id_token_alone_logs_in_with_its_verified_email
);

const REDIRECT: &str = "https://app.example/oauth/kakao";

async fn login(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_kakao_login(&body).await
}

async fn a_code_with_pkce_is_exchanged_once_and_logs_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao
        .issues_code("c-1", minimal_user(4242), REDIRECT, Some("verifier-0123456789"));
    let body = json!({"code": "c-1", "code_verifier": "verifier-0123456789", "redirect_uri": REDIRECT});

    let response = login(&app, body.clone()).await;

    assert_eq!(response.status(), 200);
    let account = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(account.uid, "4242");
    let again = assert_error(login(&app, body).await, 400, "invalid_provider_code").await;
    assert!(
        again["non_field_errors"][0].as_str().unwrap().contains("already used"),
        "{again}"
    );
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 1);
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_is_a_400_and_a_refused_secret_a_502_that_hides_it() {
    // The app's secret is changed behind the server's back below: no cached copy of the app.
    let app = spawn_app_with(Backend::Sqlite, |s| s.database.cache_ttl = Duration::ZERO).await;
    app.kakao
        .issues_code("c-pkce", minimal_user(1), REDIRECT, Some("right-verifier"));
    app.kakao.issues_code("c-redirect", minimal_user(1), REDIRECT, None);

    let wrong_verifier = json!({"code": "c-pkce", "code_verifier": "wrong", "redirect_uri": REDIRECT});
    assert_error(login(&app, wrong_verifier).await, 400, "invalid_provider_code").await;
    let wrong_redirect = json!({"code": "c-redirect", "callback_url": "https://evil.example/cb"});
    let body = assert_error(login(&app, wrong_redirect).await, 400, "invalid_provider_code").await;
    assert!(
        body["non_field_errors"][0].as_str().unwrap().contains("redirect_uri"),
        "{body}"
    );

    app.add_kakao_app_with_secret("not-the-secret").await;
    app.kakao.issues_code("c-secret", minimal_user(1), REDIRECT, None);
    let response = login(&app, json!({"code": "c-secret", "redirect_uri": REDIRECT})).await;
    let text = response.text().await.unwrap();
    assert!(text.contains("provider_misconfigured"), "{text}");
    assert!(
        !text.contains("not-the-secret") && !text.contains(CLIENT_SECRET),
        "no secret in the answer"
    );
    assert_eq!(app.kakao.calls("/oauth/token"), 3);
}

async fn an_id_token_alone_logs_in_with_its_verified_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut claims = id_claims(3_095_134_389, NATIVE_KEY);
    claims["email"] = json!("oidc@example.com");
    claims["nickname"] = json!("오이디씨");

    let id_token = id_token(&app.kakao, &claims);

    let response = login(&app, json!({"id_token": id_token, "nonce": NONCE})).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["username"], "오이디씨");
    let account = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(account.uid, "3095134389");
    assert_eq!(account.extra_data["aud"], NATIVE_KEY);
    let email = email_address::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert!(
        email.verified,
        "Kakao puts email in the id_token only when valid and verified"
    );
}

#[tokio::test]
async fn concurrent_id_token_logins_on_a_cold_key_cache_wait_for_one_fetch() {
    let app = spawn_app(Backend::Sqlite).await;
    app.kakao.is_slow(Duration::from_millis(300)); // the JWKS fetch is still in flight for the others
    let logins = (1..=5).map(|id| {
        let id_token = id_token(&app.kakao, &id_claims(id, NATIVE_KEY));
        let app = &app;
        async move {
            login(app, json!({ "id_token": id_token, "nonce": NONCE }))
                .await
                .status()
        }
    });

    let statuses = futures::future::join_all(logins).await;

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.kakao.calls("/.well-known/jwks.json"), 1);
}

#[tokio::test]
async fn forged_or_foreign_id_tokens_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let good = id_claims(7, REST_KEY);
    let now = chrono::Utc::now().timestamp();
    let mut cases: Vec<(&str, String)> = Vec::new();
    let mut foreign = good.clone();
    foreign["aud"] = json!("another-apps-key");
    cases.push(("foreign audience", id_token(&app.kakao, &foreign)));
    let mut issuer = good.clone();
    issuer["iss"] = json!("https://evil.example");
    cases.push(("wrong issuer", id_token(&app.kakao, &issuer)));
    let mut expired = good.clone();
    expired["exp"] = json!(now - 120);
    cases.push(("expired", id_token(&app.kakao, &expired)));
    let mut future = good.clone();
    future["iat"] = json!(now + 3600);
    cases.push(("issued in the future", id_token(&app.kakao, &future)));
    let unknown_kid = app.kakao.sign_id_token_with_kid(&good, "someone-elses").unwrap();
    cases.push(("unknown kid", unknown_kid));
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &good,
        &jsonwebtoken::EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    cases.push(("HS256", hs));
    let real = id_token(&app.kakao, &good);
    let (rest, _) = real.rsplit_once('.').unwrap();
    cases.push(("bad signature", format!("{rest}.AAAA")));

    for (what, token) in cases {
        let body = assert_error(
            login(&app, json!({"id_token": token, "nonce": NONCE})).await,
            400,
            "invalid_provider_token",
        )
        .await;
        assert_eq!(body["non_field_errors"], json!(["Incorrect value"]), "{what}");
    }
    let mut with_nonce = good.clone();
    with_nonce["nonce"] = json!("sent");
    let token = id_token(&app.kakao, &with_nonce);
    assert_error(
        login(&app, json!({"id_token": token, "nonce": "other"})).await,
        400,
        "invalid_provider_token",
    )
    .await;
    assert_eq!(
        login(&app, json!({"id_token": token, "nonce": "sent"})).await.status(),
        200
    );
    assert_eq!(
        login(&app, json!({"id_token": id_token(&app.kakao, &good), "nonce": NONCE}))
            .await
            .status(),
        200,
        "the control case"
    );
}

#[tokio::test]
async fn an_id_token_beside_an_access_token_must_name_the_same_account() {
    let app = spawn_app(Backend::Sqlite).await;
    app.kakao.accepts_token("t-10", full_user(10, "ten@x.io", true, true));
    let same = id_token(&app.kakao, &id_claims(10, REST_KEY));
    let other = id_token(&app.kakao, &id_claims(11, REST_KEY));

    let body = assert_error(
        login(&app, json!({"access_token": "t-10", "id_token": other})).await,
        400,
        "invalid_provider_token",
    )
    .await;
    assert!(
        body["non_field_errors"][0]
            .as_str()
            .unwrap()
            .contains("different accounts")
    );
    assert_eq!(
        login(&app, json!({"access_token": "t-10", "id_token": same}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_jwks_is_cached_refetched_on_unknown_kids_sparingly_and_survives_an_outage() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = |sub| id_token(&app.kakao, &id_claims(sub, REST_KEY));

    assert_eq!(
        login(&app, json!({"id_token": token(1), "nonce": NONCE}))
            .await
            .status(),
        200
    );
    assert_eq!(
        login(&app, json!({"id_token": token(2), "nonce": NONCE}))
            .await
            .status(),
        200
    );
    assert_eq!(app.kakao.calls("/.well-known/jwks.json"), 1, "cached");

    let unknown = app
        .kakao
        .sign_id_token_with_kid(&id_claims(3, REST_KEY), "rotated-away")
        .unwrap();
    for _ in 0..3 {
        assert_error(
            login(&app, json!({"id_token": unknown.clone(), "nonce": NONCE})).await,
            400,
            "invalid_provider_token",
        )
        .await;
    }
    assert_eq!(
        app.kakao.calls("/.well-known/jwks.json"),
        2,
        "one refetch per minute at most"
    );

    app.kakao.fails("/.well-known/jwks.json", Fault::Status(500));
    assert_eq!(
        login(&app, json!({"id_token": token(4), "nonce": NONCE}))
            .await
            .status(),
        200,
        "a warm cache keeps logins going"
    );
}

#[tokio::test]
async fn a_key_withdrawn_from_the_jwks_stops_verifying() {
    let app = spawn_app(Backend::Sqlite).await;
    let old_key = id_token(&app.kakao, &id_claims(1, REST_KEY));
    assert_eq!(
        login(&app, json!({"id_token": old_key, "nonce": NONCE})).await.status(),
        200
    );

    app.kakao.rotate_signing_key(NEXT_SIGNING_KEY.clone());
    let new_key = id_token(&app.kakao, &id_claims(2, REST_KEY));
    assert_eq!(
        login(&app, json!({"id_token": new_key, "nonce": NONCE})).await.status(),
        200,
        "the new kid is fetched"
    );

    assert_error(
        login(&app, json!({"id_token": old_key, "nonce": NONCE})).await,
        400,
        "invalid_provider_token",
    )
    .await;
    assert_eq!(app.kakao.calls("/.well-known/jwks.json"), 2);
}

#[tokio::test]
async fn an_id_token_alone_needs_a_nonce_unless_the_operator_turns_that_off() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut claims = id_claims(5, REST_KEY);
    claims.as_object_mut().unwrap().remove("nonce");
    let token = id_token(&app.kakao, &claims);

    let body = assert_error(login(&app, json!({"id_token": token})).await, 400, "invalid").await;

    assert!(body["nonce"][0].as_str().unwrap().contains("required"), "{body}");
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 0);
    assert_eq!(app.kakao.calls("/.well-known/jwks.json"), 0, "refused before any call");

    let lenient = spawn_app_with(Backend::Sqlite, |s| s.kakao.require_nonce = false).await;
    let token = id_token(&lenient.kakao, &claims);
    assert_eq!(login(&lenient, json!({"id_token": token})).await.status(), 200);
}

#[tokio::test]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let app = spawn_app(Backend::Sqlite).await;
    app.kakao
        .issues_code("c-1", minimal_user(1), REDIRECT, Some("verifier"));
    app.kakao
        .fails("/oauth/token", Fault::Redirect("/elsewhere/oauth/token".into()));

    let response = login(
        &app,
        json!({"code": "c-1", "code_verifier": "verifier", "redirect_uri": REDIRECT}),
    )
    .await;

    assert_error(response, 502, "provider_unavailable").await;
    assert_eq!(app.kakao.calls("/oauth/token"), 1);
    assert_eq!(
        app.kakao.calls("/elsewhere/oauth/token"),
        0,
        "the secret, code and verifier went nowhere else"
    );
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 0);
}

#[tokio::test]
async fn a_provider_answer_over_one_mebibyte_is_not_read() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut huge = crate::kakao::minimal_me(1);
    huge["properties"]["padding"] = json!("x".repeat(2 * 1024 * 1024));
    app.kakao.accepts_token("t", crate::kakao::kakao_user(huge));

    let response = login(&app, json!({"access_token": "t"})).await;

    assert_error(response, 502, "provider_unavailable").await;
    assert_eq!(social_account::Entity::find().count(&app.db).await.unwrap(), 0);
}
