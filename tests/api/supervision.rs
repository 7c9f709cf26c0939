//! The group-commit writer is supervised (issue 20): stopped as a crash would stop it, callers
//! get 503 instead of hanging or a 500, and it comes back by itself.

use std::time::Duration;

use serde_json::json;

use crate::{
    helpers::{Backend, assert_error, on_every_backend, spawn_app},
    kakao::minimal_user,
};

on_every_backend!(a_stopped_token_writer_answers_503_and_comes_back);

async fn a_stopped_token_writer_answers_503_and_comes_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.login_new_kakao_user(1).await;
    app.kakao.accepts_token("t-2", minimal_user(2));

    app.writer.stop_for_tests();

    let response = app.refresh(session["refresh"].as_str().unwrap()).await;
    assert_error(response, 503, "service_unavailable").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut refreshed = app.refresh(session["refresh"].as_str().unwrap()).await;
    while refreshed.status() == 503 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        refreshed = app.refresh(session["refresh"].as_str().unwrap()).await;
    }
    assert_eq!(refreshed.status(), 200, "the writer is back");
    let again = app.post_kakao_login(&json!({"access_token": "t-2"})).await;
    assert_eq!(again.status(), 200);
}
