//! Local accounts (api.md 6): registration with a mailed key, login, profile, password change
//! and reset. Mail goes to a real SMTP server the test starts.

use entity::user;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app_with},
    smtp_sink::{SmtpSink, after},
};

on_every_backend!(
    registration_mails_a_key_that_confirms_once_and_then_login_works,
    a_password_reset_link_works_once_and_revokes_the_sessions,
);

async fn app_with_mail(backend: Backend) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with(backend, |s| s.mail.smtp_url = Some(url.into())).await;
    (app, sink)
}

async fn register(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/rest-auth/registration/",
        &json!({"email": email, "password1": password, "password2": password}),
    )
    .await
}

async fn login(app: &TestApp, name: &str, password: &str) -> reqwest::Response {
    app.post_json("/rest-auth/login/", &json!({"username": name, "password": password}))
        .await
}

async fn registration_mails_a_key_that_confirms_once_and_then_login_works(backend: Backend) {
    let (app, sink) = app_with_mail(backend).await;

    let response = register(&app, "Ann@Example.com", "a-long-horse-battery").await;

    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "Verification e-mail sent.");
    let mails = sink.wait_for_mails_to("Ann@Example.com", 1).await;
    let key = after(&mails[0].data, "verify-email/");
    assert_error(
        login(&app, "Ann@Example.com", "a-long-horse-battery").await,
        400,
        "email_not_verified",
    )
    .await;

    let app_ref = &app;
    let verify = move |key: String| async move {
        app_ref
            .post_json("/rest-auth/registration/verify-email/", &json!({"key": key}))
            .await
    };
    assert_eq!(verify(key.clone()).await.status(), 200);
    assert_error(verify(key).await, 404, "not_found").await;

    let session: Value = login(&app, "ann@example.com", "a-long-horse-battery")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(session["user"]["username"], "Ann");
    assert!(session["access"].is_string() && session["refresh"].is_string());
    let by_username = login(&app, "Ann", "a-long-horse-battery").await;
    assert_eq!(by_username.status(), 200);
    let stored = user::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert!(stored.password.starts_with("argon2$argon2id$"));
}

#[tokio::test]
async fn registration_applies_djangos_validators_and_unique_fields() {
    let (app, sink) = app_with_mail(Backend::Sqlite).await;
    // (email, username, password1, password2) → the field refused and a word of its message.
    let cases = [
        (
            "x@y.io",
            "",
            "a-long-horse-battery",
            "other-one-entirely",
            "password2",
            "didn't match",
        ),
        ("x@y.io", "", "short", "short", "password1", "too short"),
        ("x@y.io", "", "password1", "password1", "password1", "too common"),
        (
            "x@y.io",
            "",
            "5839201746",
            "5839201746",
            "password1",
            "entirely numeric",
        ),
        (
            "margaret@y.io",
            "margaret",
            "margaret1",
            "margaret1",
            "password1",
            "similar",
        ),
        (
            "not-an-email",
            "",
            "a-long-horse-battery",
            "a-long-horse-battery",
            "email",
            "valid email",
        ),
    ];
    for (email, username, password1, password2, field, text) in cases {
        let mut body = json!({"email": email, "password1": password1, "password2": password2});
        if !username.is_empty() {
            body["username"] = json!(username);
        }
        let error = assert_error(app.post_json("/rest-auth/registration/", &body).await, 400, "invalid").await;
        let messages = error[field].to_string();
        assert!(messages.contains(text), "{body} → {error}");
    }
    assert_eq!(register(&app, "taken@y.io", "a-long-horse-battery").await.status(), 201);
    let same_name = app
        .post_json("/rest-auth/registration/", &json!({"username": "taken", "email": "other@y.io", "password1": "a-long-horse-battery", "password2": "a-long-horse-battery"}))
        .await;
    let error = assert_error(same_name, 400, "invalid").await;
    assert!(error["username"][0].as_str().unwrap().contains("already exists"));
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 1);
    sink.wait_for_mails_to("taken@y.io", 1).await;
    assert_eq!(sink.mails().len(), 1);
}

#[tokio::test]
async fn an_expired_key_fails_and_resend_mails_a_new_one_only_for_unverified_addresses() {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.mail.smtp_url = Some(url.into());
        s.accounts.email_confirmation_lifetime = std::time::Duration::ZERO;
    })
    .await;
    register(&app, "bo@x.io", "a-long-horse-battery").await;
    let key = after(&sink.wait_for_mails_to("bo@x.io", 1).await[0].data, "verify-email/");
    assert_error(
        app.post_json("/rest-auth/registration/verify-email/", &json!({"key": key}))
            .await,
        404,
        "not_found",
    )
    .await;

    // One mail at a time, in order: once bo's has arrived, nobody's lookup is done too.
    for email in ["nobody@x.io", "bo@x.io"] {
        let response = app
            .post_json("/rest-auth/registration/resend-email/", &json!({"email": email}))
            .await;
        assert_eq!(response.status(), 200, "{email}");
    }
    sink.wait_for_mails_to("bo@x.io", 2).await;
    assert!(sink.mails_to("nobody@x.io").is_empty());
}

#[tokio::test]
async fn registration_without_mail_configured_is_refused_before_creating_anything() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    assert_error(
        register(&app, "c@x.io", "a-long-horse-battery").await,
        503,
        "service_unavailable",
    )
    .await;
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 0);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let (app, _sink) = app_with_mail(Backend::Sqlite).await;
    app.create_local_user("dan", "", "a-long-horse-battery").await;
    let wrong: Value = login(&app, "dan", "nope").await.json().await.unwrap();
    let unknown: Value = login(&app, "nobody", "nope").await.json().await.unwrap();
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["code"], "invalid_credentials");
    assert_eq!(
        wrong["non_field_errors"],
        json!(["Unable to log in with provided credentials."])
    );
}

#[tokio::test]
async fn the_profile_can_be_edited_but_pk_and_email_are_read_only() {
    let (app, _sink) = app_with_mail(Backend::Sqlite).await;
    app.create_local_user("taken", "", "a-long-horse-battery").await;
    let me = app.create_local_user("eve", "eve@x.io", "a-long-horse-battery").await;
    let access = login(&app, "eve", "a-long-horse-battery")
        .await
        .json::<Value>()
        .await
        .unwrap()["access"]
        .as_str()
        .unwrap()
        .to_owned();

    let patched: Value = app
        .patch_user(&access, &json!({"first_name": "Eve", "pk": 999, "email": "evil@x.io"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            patched["pk"].as_i64(),
            patched["first_name"].as_str(),
            patched["email"].as_str()
        ),
        (Some(me.id as i64), Some("Eve"), Some("eve@x.io"))
    );
    assert_error(app.put_user(&access, &json!({"first_name": "E"})).await, 400, "invalid").await;
    let taken = assert_error(
        app.patch_user(&access, &json!({"username": "taken"})).await,
        400,
        "invalid",
    )
    .await;
    assert_eq!(taken["username"], json!(["A user with that username already exists."]));
    let put: Value = app
        .put_user(&access, &json!({"username": "eve2", "last_name": "Adams"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (put["username"].as_str(), put["last_name"].as_str()),
        (Some("eve2"), Some("Adams"))
    );
}

#[tokio::test]
async fn changing_the_password_needs_the_old_one_and_revokes_sessions() {
    let (app, _sink) = app_with_mail(Backend::Sqlite).await;
    app.create_local_user("fay", "", "a-long-horse-battery").await;
    let session: Value = login(&app, "fay", "a-long-horse-battery").await.json().await.unwrap();
    let access = session["access"].as_str().unwrap();
    let change = |old| app.change_password(access, Some(old), "another-long-phrase");

    let wrong = assert_error(change("nope").await, 400, "invalid").await;
    assert!(wrong["old_password"].is_array());
    let ok: Value = change("a-long-horse-battery").await.json().await.unwrap();
    assert_eq!(ok["detail"], "New password has been saved.");
    assert_error(
        app.refresh(session["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    assert_eq!(login(&app, "fay", "another-long-phrase").await.status(), 200);
    assert_error(
        login(&app, "fay", "a-long-horse-battery").await,
        400,
        "invalid_credentials",
    )
    .await;
}

async fn a_password_reset_link_works_once_and_revokes_the_sessions(backend: Backend) {
    let (app, sink) = app_with_mail(backend).await;
    app.create_local_user("gus", "gus@x.io", "a-long-horse-battery").await;
    let session: Value = login(&app, "gus", "a-long-horse-battery").await.json().await.unwrap();

    for email in ["stranger@x.io", "gus@x.io"] {
        let response: Value = app
            .post_json("/rest-auth/password/reset/", &json!({"email": email}))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            response["detail"], "Password reset e-mail has been sent.",
            "the same answer for {email}"
        );
    }
    let mail = &sink.wait_for_mails_to("gus@x.io", 1).await[0];
    assert!(sink.mails_to("stranger@x.io").is_empty());
    let (uid, token) = (after(&mail.data, "uid "), after(&mail.data, "token "));
    let app_ref = &app;
    let confirm = |token: &str, password: &str| {
        let body = json!({"uid": uid, "token": token, "new_password1": password, "new_password2": password});
        async move { app_ref.post_json("/rest-auth/password/reset/confirm/", &body).await }
    };

    assert_error(confirm(&token, "short").await, 400, "invalid").await;
    assert_error(confirm("forged-token", "a-fresh-long-phrase").await, 400, "invalid").await;
    assert_eq!(confirm(&token, "a-fresh-long-phrase").await.status(), 200);
    let reused = assert_error(confirm(&token, "yet-another-phrase").await, 400, "invalid").await;
    assert_eq!(reused["token"], json!(["Invalid value"]));
    assert_error(
        app.refresh(session["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    crate::revocation::assert_access_token_dead(&app, session["access"].as_str().unwrap()).await;
    assert_eq!(login(&app, "gus", "a-fresh-long-phrase").await.status(), 200);
}
