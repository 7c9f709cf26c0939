//! Whatever a client sends, the answer is a JSON error with the right status, never a 500.

use sea_orm::EntityTrait;
use serde_json::json;

use crate::helpers::{Backend, assert_error, spawn_app};

const LOGIN: &str = "/accounts/rest-auth/kakao/";

#[tokio::test]
async fn malformed_json_is_a_400_parse_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = assert_error(
        app.post_raw(LOGIN, "application/json", r#"{"access_token": "#).await,
        400,
        "parse_error",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().starts_with("JSON parse error"));
}

#[tokio::test]
async fn a_missing_field_is_named() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = assert_error(
        app.post_raw("/rest-auth/token/verify/", "application/json", "{}").await,
        400,
        "invalid",
    )
    .await;
    assert_eq!(body["token"], json!(["This field is required."]));
    let body = assert_error(
        app.post_raw("/rest-auth/token/verify/", "application/x-www-form-urlencoded", "")
            .await,
        400,
        "invalid",
    )
    .await;
    assert_eq!(body["token"], json!(["This field is required."]));
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_named() {
    let app = spawn_app(Backend::Sqlite).await;
    let body = assert_error(app.post_kakao_login(&json!({"access_token": 5})).await, 400, "invalid").await;
    assert!(
        body["access_token"][0].as_str().unwrap().contains("expected a string"),
        "{body}"
    );
    let body = assert_error(app.post_kakao_login(&json!(["access_token"])).await, 400, "invalid").await;
    assert!(body["non_field_errors"].is_array(), "{body}");
}

#[tokio::test]
async fn no_credential_both_credentials_or_a_blank_one_are_400s() {
    let app = spawn_app(Backend::Sqlite).await;
    for (request, field) in [
        (json!({}), "non_field_errors"),
        (json!({"access_token": "a", "code": "b"}), "non_field_errors"),
        (json!({"access_token": "  "}), "access_token"),
        (json!({"code": "b", "id_token": "c"}), "non_field_errors"),
        (json!({"code": ""}), "non_field_errors"),
    ] {
        let body = assert_error(app.post_kakao_login(&request).await, 400, "invalid").await;
        assert!(body[field].is_array(), "{request} → {body}");
    }
    assert_eq!(app.kakao.calls("/v2/user/me"), 0, "nothing reached Kakao");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = spawn_app(Backend::Sqlite).await;
    app.kakao.accepts_token("t", crate::kakao::minimal_user(1));
    let response = app
        .post_kakao_login(&json!({"access_token": "t", "device": "ios"}))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_a_400() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_error(
        app.post_raw(LOGIN, "text/plain", "access_token=x").await,
        400,
        "unsupported_media_type",
    )
    .await;
    let response = app
        .client
        .post(app.url(LOGIN))
        .body("access_token=x")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "unsupported_media_type").await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_with_or_without_content_length() {
    let app = spawn_app(Backend::Sqlite).await;
    let big = format!(r#"{{"access_token": "{}"}}"#, "a".repeat(70 * 1024));
    assert_error(
        app.post_raw(LOGIN, "application/json", big.clone()).await,
        413,
        "payload_too_large",
    )
    .await;

    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(big)];
    let streamed = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    assert_error(
        app.post_raw(LOGIN, "application/json", streamed).await,
        413,
        "payload_too_large",
    )
    .await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_error(app.get("/no/such/path/").await, 404, "not_found").await;
    let wrong_method = app.get(LOGIN).await;
    assert_eq!(wrong_method.headers()["allow"], "POST");
    assert_error(wrong_method, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn a_path_without_its_trailing_slash_is_answered_the_same() {
    let app = spawn_app(Backend::Sqlite).await;
    app.kakao.accepts_token("t", crate::kakao::minimal_user(1));
    let response = app
        .post_json("/accounts/rest-auth/kakao", &json!({"access_token": "t"}))
        .await;
    assert_eq!(response.status(), 200, "no redirect: a redirected POST loses its body");
}

crate::helpers::on_every_backend!(over_long_names_are_400s_naming_the_field_and_nothing_is_stored);

/// Django's `first_name`/`last_name`/`username` hold 150 characters; MariaDB refuses longer values
/// in its `VARCHAR(255)` columns, so they must be refused before the database sees them.
async fn over_long_names_are_400s_naming_the_field_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.login_new_kakao_user(1).await;
    let access = session["access"].as_str().unwrap();
    let long = "가".repeat(151);

    for field in ["first_name", "last_name", "username"] {
        let body = assert_error(app.patch_user(access, &json!({ field: long })).await, 400, "invalid").await;
        assert_eq!(
            body[field],
            json!(["Ensure this field has no more than 150 characters."]),
            "{field}: {body}"
        );
    }
    let form = app
        .client
        .patch(app.url("/rest-auth/user/"))
        .bearer_auth(access)
        .form(&[("last_name", long.as_str())])
        .send()
        .await
        .unwrap();
    let body = assert_error(form, 400, "invalid").await;
    assert!(body["last_name"].is_array(), "a form body is checked too: {body}");
    let registration = json!({"username": "u".repeat(151), "email": "a@b.c", "password1": "x", "password2": "x"});
    let body = assert_error(
        app.post_json("/rest-auth/registration/", &registration).await,
        400,
        "invalid",
    )
    .await;
    assert!(body["username"].is_array(), "{body}");

    let stored = entity::user::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(stored.first_name, "");
    let fits = "가".repeat(150);
    let response = app.patch_user(access, &json!({ "first_name": fits })).await;
    assert_eq!(response.status(), 200);
    let stored = entity::user::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(stored.first_name, fits);
}
