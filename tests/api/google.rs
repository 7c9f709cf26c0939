//! Google (issue 22, docs/providers.md 2): id_tokens verified locally, access tokens checked at
//! tokeninfo (issued to one of our client ids?) then read at userinfo, codes with PKCE.

use serde_json::{Value, json};

use crate::{
    helpers::{Backend, assert_error, on_every_backend, spawn_app},
    kakao::NEXT_SIGNING_KEY,
    providers::{GOOGLE_FOREIGN_ID, GOOGLE_IOS_ID, GOOGLE_ISSUER, GOOGLE_WEB_ID, google_claims, google_id_token},
};

on_every_backend!(google_logins_by_id_token_access_token_and_code_are_one_user);

async fn google_logins_by_id_token_access_token_and_code_are_one_user(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_google_app().await;
    let id_token = google_id_token(&app.social, "1001", GOOGLE_IOS_ID, Some("n-1"));
    let by_id_token = app
        .post_login("google", &json!({"id_token": id_token, "nonce": "n-1"}))
        .await;
    assert_eq!(by_id_token.status(), 200);
    let by_id_token: Value = by_id_token.json().await.unwrap();
    assert_eq!(by_id_token["user"]["email"], "1001@gmail.com");

    app.social
        .google_accepts_token("ya29.ok", google_claims("1001", "1001@gmail.com"), GOOGLE_WEB_ID);
    let by_access: Value = app
        .post_login("google", &json!({"access_token": "ya29.ok"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_access["user"]["pk"], by_id_token["user"]["pk"]);

    app.social.google_issues_code(
        "4/code",
        google_claims("1001", "1001@gmail.com"),
        Some("verifier-1234567890"),
        true,
    );
    let bad_verifier = app
        .post_login("google", &json!({"code": "4/code", "code_verifier": "wrong"}))
        .await;
    assert_error(bad_verifier, 400, "invalid_provider_code").await;
    app.social.google_issues_code(
        "4/code",
        google_claims("1001", "1001@gmail.com"),
        Some("verifier-1234567890"),
        true,
    );
    let by_code: Value = app
        .post_login(
            "google",
            &json!({"code": "4/code", "code_verifier": "verifier-1234567890"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_code["user"]["pk"], by_id_token["user"]["pk"]);
    assert_eq!(app.count_users().await, 1);
    let kept = app.kept_tokens().await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0, "refresh_token", "the offline code's refresh token is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_id_tokens_are_checked_for_issuer_audience_expiry_and_signature() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_google_app().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |iss: &str, aud: &str, exp: i64| {
        json!({"iss": iss, "aud": aud, "sub": "2002", "email": "x@gmail.com", "email_verified": true,
               "iat": now - 10, "exp": exp, "nonce": "n"})
    };
    let login = |token: String| {
        let app = &app;
        async move {
            app.post_login("google", &json!({"id_token": token, "nonce": "n"}))
                .await
        }
    };
    let legacy_issuer = app
        .social
        .sign_google(&claims("accounts.google.com", GOOGLE_WEB_ID, now + 600));
    assert_eq!(
        login(legacy_issuer).await.status(),
        200,
        "the issuer without https:// is Google's too"
    );

    // Google rotates its key: a token under the new kid is verified after one refetch.
    app.social.rotate_key("google", NEXT_SIGNING_KEY.clone());
    let rotated = app.social.sign_google(&claims(GOOGLE_ISSUER, GOOGLE_WEB_ID, now + 600));
    assert_eq!(login(rotated).await.status(), 200, "the new key is fetched");

    for (why, token) in [
        (
            "foreign audience",
            app.social
                .sign_google(&claims(GOOGLE_ISSUER, GOOGLE_FOREIGN_ID, now + 600)),
        ),
        (
            "other issuer",
            app.social
                .sign_google(&claims("https://evil.example", GOOGLE_WEB_ID, now + 600)),
        ),
        (
            "expired",
            app.social.sign_google(&claims(GOOGLE_ISSUER, GOOGLE_WEB_ID, now - 120)),
        ),
        (
            "unknown kid",
            app.social
                .sign_with_kid("google", &claims(GOOGLE_ISSUER, GOOGLE_WEB_ID, now + 600), "nope"),
        ),
        (
            "signed by another key",
            app.kakao
                .sign_id_token(&claims(GOOGLE_ISSUER, GOOGLE_WEB_ID, now + 600))
                .unwrap(),
        ),
    ] {
        let refused = login(token).await;
        assert_eq!(refused.status(), 400, "{why}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "invalid_provider_token", "{why}");
    }
    let unsigned = {
        use base64::Engine;
        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none"})),
            b64(&claims(GOOGLE_ISSUER, GOOGLE_WEB_ID, now + 600))
        )
    };
    assert_error(login(unsigned).await, 400, "invalid_provider_token").await;
    assert_eq!(app.count_users().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_access_token_of_another_client_is_refused_and_outages_follow_the_contract() {
    let app = spawn_app(Backend::Sqlite).await;
    app.add_google_app().await;
    app.social
        .google_accepts_token("ya29.evil", google_claims("3003", "v@gmail.com"), GOOGLE_FOREIGN_ID);
    let foreign = app.post_login("google", &json!({"access_token": "ya29.evil"})).await;
    assert_error(foreign, 400, "provider_app_mismatch").await;
    let unknown = app.post_login("google", &json!({"access_token": "ya29.unknown"})).await;
    assert_error(unknown, 400, "invalid_provider_token").await;
    app.social
        .google_accepts_token("ya29.ok", google_claims("3004", "w@gmail.com"), GOOGLE_WEB_ID);
    app.social.expire_token("google", "ya29.ok");
    let expired = app.post_login("google", &json!({"access_token": "ya29.ok"})).await;
    assert_error(expired, 400, "invalid_provider_token").await;

    app.social
        .google_accepts_token("ya29.live", google_claims("3005", "z@gmail.com"), GOOGLE_WEB_ID);
    app.social.is_down();
    assert_error(
        app.post_login("google", &json!({"access_token": "ya29.live"})).await,
        502,
        "provider_unavailable",
    )
    .await;
    app.social.is_up();
    app.social.is_slow(std::time::Duration::from_secs(3));
    assert_error(
        app.post_login("google", &json!({"access_token": "ya29.live"})).await,
        504,
        "provider_timeout",
    )
    .await;
    assert_eq!(app.count_users().await, 0, "nothing written");
}
