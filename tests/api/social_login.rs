//! `POST /accounts/rest-auth/kakao/`: the Kakao access token → our JWTs exchange (api.md 3).

use std::time::{Duration, Instant};

use entity::{email_address, social_account, user};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use crate::{
    helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app, spawn_app_with},
    kakao::{FOREIGN_APP_ID, full_me, full_user, kakao_user, minimal_me, minimal_user},
};

on_every_backend!(
    kakao_login_creates_a_user_and_returns_our_tokens,
    a_second_login_refreshes_extra_data_and_keeps_the_user,
    a_returning_user_with_unchanged_data_is_signed_in_without_a_write,
    concurrent_logins_each_get_a_working_refresh_token,
    a_token_issued_to_another_kakao_app_is_refused,
    an_expired_or_unknown_kakao_token_returns_400,
    kakao_down_returns_502_and_writes_nothing,
    kakao_slower_than_the_timeout_returns_504_in_time,
    kakao_refusing_connections_returns_502,
    kakao_ids_above_two_to_the_31_and_near_two_to_the_63_work,
    a_user_without_email_or_with_an_invalid_one_logs_in,
    a_verified_kakao_email_links_to_the_local_user_with_that_verified_email,
    an_email_unverified_on_either_side_is_not_linked,
    fifty_concurrent_first_logins_create_exactly_one_user,
    first_logins_at_once_with_one_nickname_each_get_their_own_user,
    a_shared_nickname_names_every_user_after_it_without_failed_inserts,
    a_disabled_user_gets_403,
    a_provider_configured_for_another_site_only_returns_404,
    the_site_is_chosen_by_the_host_header,
    a_form_encoded_body_works_like_json,
);

async fn count_rows(app: &TestApp) -> (u64, u64, u64) {
    (
        user::Entity::find().count(&app.db).await.unwrap(),
        social_account::Entity::find().count(&app.db).await.unwrap(),
        email_address::Entity::find().count(&app.db).await.unwrap(),
    )
}

async fn kakao_login_creates_a_user_and_returns_our_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = full_me(3_095_134_389, "Sample@Sample.com", true, true);
    app.kakao.accepts_token("good-token", kakao_user(me.clone()));

    let response = app.post_kakao_login(&json!({"access_token": "good-token"})).await;

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    for field in ["access", "refresh", "access_expiration", "refresh_expiration"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
    assert!(body["access_expiration"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["user"]["username"], "홍길동");
    assert_eq!(body["user"]["email"], "Sample@Sample.com");
    assert_eq!(app.kakao.calls("/v1/user/access_token_info"), 1);
    assert_eq!(app.kakao.calls("/v2/user/me"), 1);

    let account = social_account::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .expect("a social account");
    assert_eq!(
        (account.provider.as_str(), account.uid.as_str()),
        ("kakao", "3095134389")
    );
    assert_eq!(account.extra_data, me);
    assert_eq!(account.user_id, body["user"]["pk"].as_i64().unwrap() as i32);
    let email = email_address::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .expect("an email row");
    assert_eq!((email.email.as_str(), email.verified), ("sample@sample.com", true));
    let user = user::Entity::find_by_id(account.user_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(user.password.starts_with('!'), "social users get an unusable password");
    assert!(user.last_login.is_some());

    let access = body["access"].as_str().unwrap();
    let me_response = app.get_user("Bearer", access).await;
    assert_eq!(me_response.status(), 200);
    let me_body: serde_json::Value = me_response.json().await.unwrap();
    assert_eq!(me_body, body["user"]);
    assert_eq!(app.verify_token(access).await.status(), 200);
}

async fn a_second_login_refreshes_extra_data_and_keeps_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.login_new_kakao_user(42).await;
    let before = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    let mut changed = minimal_me(42);
    changed["kakao_account"]["profile"]["nickname"] = json!("새이름");
    app.kakao.accepts_token("token-42b", kakao_user(changed.clone()));
    // Not a cache wait: last_login is stored in whole seconds, so it can only move on in the next.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let second = app.post_kakao_login(&json!({"access_token": "token-42b"})).await;

    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["user"]["pk"], first["user"]["pk"]);
    assert_eq!(count_rows(&app).await, (1, 1, 0));
    let after = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(after.extra_data, changed);
    assert!(after.last_login > before.last_login, "last_login moves on");
}

async fn a_returning_user_with_unchanged_data_is_signed_in_without_a_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.login_new_kakao_user(43).await;
    let before = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    let users_before = user::Entity::find().one(&app.db).await.unwrap().unwrap();
    // Not a cache wait: a second later last_login would differ if it were written again (it is
    // stored in whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let second = app.post_kakao_login(&json!({"access_token": "token-43"})).await;

    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["user"]["pk"], first["user"]["pk"]);
    // Same extra_data and a last_login under a minute old: neither row is written again.
    let after = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(after, before);
    assert_eq!(user::Entity::find().one(&app.db).await.unwrap().unwrap(), users_before);
    // The new session is stored all the same: its refresh token rotates.
    let refreshed = app.refresh(second["refresh"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200);
}

async fn concurrent_logins_each_get_a_working_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut pks = Vec::new();
    for id in 0..20 {
        pks.push(app.login_new_kakao_user(id).await["user"]["pk"].clone());
    }
    // 60 logins at once: none writes a refresh-token row; each token works all the same.
    let logins = (0..60).map(|i| {
        let app = &app;
        async move {
            let body = json!({"access_token": format!("token-{}", i % 20)});
            let response = app.post_kakao_login(&body).await;
            assert_eq!(response.status(), 200);
            (i % 20, response.json::<serde_json::Value>().await.unwrap())
        }
    });
    let answers = futures::future::join_all(logins).await;

    let rows = entity::refresh_token::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(rows, 0);
    for (id, body) in &answers {
        assert_eq!(body["user"]["pk"], pks[*id]);
        let refreshed = app.refresh(body["refresh"].as_str().unwrap()).await;
        assert_eq!(refreshed.status(), 200, "every refresh token of the batch is stored");
    }
}

async fn a_token_issued_to_another_kakao_app_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao
        .accepts_token_of_app("foreign", FOREIGN_APP_ID, minimal_user(7));

    let response = app.post_kakao_login(&json!({"access_token": "foreign"})).await;

    let body = assert_error(response, 400, "provider_app_mismatch").await;
    assert!(body["non_field_errors"].is_array());
    assert_eq!(count_rows(&app).await, (0, 0, 0));
}

async fn an_expired_or_unknown_kakao_token_returns_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao.accepts_token("expired", minimal_user(6));
    assert!(app.kakao.expire_token("expired"));

    let kakao_calls = || app.kakao.calls("/v2/user/me") + app.kakao.calls("/v1/user/access_token_info");
    // The first three cannot even travel in a header: refused without asking Kakao (not a 502).
    // They go first: a refused login drops its other Kakao call, which may still reach the fake
    // after the answer, so a count taken after the two real tokens would race with it.
    for token in ["bad\u{1}token", "토큰", "two words", "expired", "never-issued"] {
        if token == "expired" {
            assert_eq!(kakao_calls(), 0, "no Kakao call for a token that cannot be a header");
        }
        let response = app.post_kakao_login(&json!({"access_token": token})).await;
        let body = assert_error(response, 400, "invalid_provider_token").await;
        assert_eq!(
            body["non_field_errors"],
            json!(["Incorrect value"]),
            "dj-rest-auth's wording"
        );
    }
    assert!(kakao_calls() >= 2, "the two real tokens were checked with Kakao");
    assert_eq!(count_rows(&app).await, (0, 0, 0));
}

async fn kakao_down_returns_502_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao.accepts_token("good", minimal_user(5));
    app.kakao.is_down();

    let response = app.post_kakao_login(&json!({"access_token": "good"})).await;

    assert_error(response, 502, "provider_unavailable").await;
    assert_eq!(count_rows(&app).await, (0, 0, 0));
}

async fn kakao_slower_than_the_timeout_returns_504_in_time(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao.accepts_token("good", minimal_user(5));
    app.kakao.is_slow(Duration::from_secs(5));
    let started = Instant::now();

    let response = app.post_kakao_login(&json!({"access_token": "good"})).await;

    assert_error(response, 504, "provider_timeout").await;
    let limit = app.settings.providers.timeout + Duration::from_secs(1);
    assert!(
        started.elapsed() < limit,
        "answered in {:?}, limit {limit:?}",
        started.elapsed()
    );
    assert_eq!(count_rows(&app).await, (0, 0, 0));
}

async fn kakao_refusing_connections_returns_502(backend: Backend) {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(backend, |s| {
        s.kakao.api_base = format!("http://127.0.0.1:{closed_port}").parse().unwrap()
    })
    .await;

    let response = app.post_kakao_login(&json!({"access_token": "any"})).await;

    assert_error(response, 502, "provider_unavailable").await;
    assert_eq!(count_rows(&app).await, (0, 0, 0));
}

async fn kakao_ids_above_two_to_the_31_and_near_two_to_the_63_work(backend: Backend) {
    let app = spawn_app(backend).await;
    for id in [2_147_483_648_i64, 1_376_016_924_429_759_228, i64::MAX] {
        app.login_new_kakao_user(id).await;
        let account = social_account::Entity::find()
            .filter(social_account::Column::Uid.eq(id.to_string()))
            .one(&app.db)
            .await
            .unwrap();
        assert!(account.is_some(), "uid {id} stored as its exact decimal string");
    }
    assert_eq!(count_rows(&app).await.1, 3);
}

async fn a_user_without_email_or_with_an_invalid_one_logs_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao.accepts_token("bare", kakao_user(json!({"id": 11})));
    app.kakao.accepts_token(
        "no-consent",
        kakao_user(json!({"id": 12, "kakao_account": {"email_needs_agreement": true}})),
    );
    app.kakao
        .accepts_token("invalid-email", full_user(13, "old@x.io", false, true));

    for token in ["bare", "no-consent"] {
        let response = app.post_kakao_login(&json!({"access_token": token})).await;
        assert_eq!(response.status(), 200, "{token}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["user"]["email"], "", "{token}");
    }
    let response = app.post_kakao_login(&json!({"access_token": "invalid-email"})).await;
    assert_eq!(response.status(), 200);
    let email = email_address::Entity::find()
        .one(&app.db)
        .await
        .unwrap()
        .expect("the address is kept");
    assert!(!email.verified, "is_email_valid=false is not verified");
    assert_eq!(count_rows(&app).await, (3, 3, 1));
}

async fn insert_local_user(app: &TestApp, email: &str, verified: bool) -> user::Model {
    let now = chrono::Utc::now();
    let user = user::ActiveModel {
        username: Set("local".into()),
        email: Set(email.into()),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        password: Set("!".into()),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(false),
        date_joined: Set(now),
        last_login: Set(None),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    email_address::ActiveModel {
        user_id: Set(user.id),
        email: Set(email.to_lowercase()),
        verified: Set(verified),
        primary: Set(true),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    user
}

async fn a_verified_kakao_email_links_to_the_local_user_with_that_verified_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let local = insert_local_user(&app, "a@b.c", true).await;
    app.kakao.accepts_token("t", full_user(77, "A@b.c", true, true));

    let response = app.post_kakao_login(&json!({"access_token": "t"})).await;

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["pk"], local.id);
    let account = social_account::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(account.user_id, local.id);
    assert_eq!(count_rows(&app).await, (1, 1, 1));
}

async fn an_email_unverified_on_either_side_is_not_linked(backend: Backend) {
    let app = spawn_app(backend).await;
    let local = insert_local_user(&app, "a@b.c", false).await;
    // The local user signed in once: an account in use, not an abandoned registration.
    users_last_login_now(&app, local.id).await;
    app.kakao
        .accepts_token("kakao-unverified", full_user(2, "a@b.c", true, false));
    app.kakao
        .accepts_token("both-verified", full_user(1, "a@b.c", true, true));

    let response = app.post_kakao_login(&json!({"access_token": "kakao-unverified"})).await;
    let body = assert_error(response, 400, "email_in_use").await;
    assert_eq!(
        body["non_field_errors"],
        json!(["User is already registered with this e-mail address."])
    );

    // Kakao vouches for the address, the local user only claimed it: the verified login gets its
    // own user and the unverified claim goes.
    let response = app.post_kakao_login(&json!({"access_token": "both-verified"})).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_ne!(body["user"]["pk"], local.id, "not linked");
    let row = email_address::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        (row.user_id, row.verified),
        (body["user"]["pk"].as_i64().unwrap() as i32, true)
    );
    let local = user::Entity::find_by_id(local.id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(local.email, "", "the unverified claim is gone from the local user");
    assert_eq!(count_rows(&app).await, (2, 1, 1));
}

async fn users_last_login_now(app: &TestApp, id: i32) {
    user::Entity::update_many()
        .col_expr(
            user::Column::LastLogin,
            sea_orm::sea_query::Expr::value(chrono::Utc::now()),
        )
        .filter(user::Column::Id.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
}

async fn fifty_concurrent_first_logins_create_exactly_one_user(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao.accepts_token("same", full_user(555, "five@x.io", true, true));

    let body = json!({"access_token": "same"});
    let requests = (0..50).map(|_| app.post_kakao_login(&body));
    let responses = futures::future::join_all(requests).await;

    let mut pks = std::collections::HashSet::new();
    for response in responses {
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            status == 200 || (status == 503 && body["code"] == "service_unavailable"),
            "{status} {body}"
        );
        if status == 200 {
            pks.insert(body["user"]["pk"].as_i64().unwrap());
        }
    }
    assert_eq!(pks.len(), 1, "every answer names the same user");
    assert_eq!(count_rows(&app).await, (1, 1, 1));
}

async fn first_logins_at_once_with_one_nickname_each_get_their_own_user(backend: Backend) {
    let app = spawn_app(backend).await;
    // Forty new Kakao ids, all nicknamed 홍길동, every other one with its own verified email;
    // id 0 logs in twice. They arrive together, so they are written in batches (the writer's
    // signups), where two of one nickname must get different suffixes.
    for id in 0..40 {
        let me = match id % 2 {
            0 => full_user(id, &format!("user{id}@x.io"), true, true),
            _ => minimal_user(id),
        };
        app.kakao.accepts_token(&format!("first-{id}"), me);
    }
    let tokens = (0..40).chain([0]).map(|id| format!("first-{id}"));
    let logins = tokens.map(|token| {
        let app = &app;
        async move {
            let response = app.post_kakao_login(&json!({"access_token": token})).await;
            assert_eq!(response.status(), 200, "{token}");
            response.json::<serde_json::Value>().await.unwrap()
        }
    });
    let answers = futures::future::join_all(logins).await;

    let pk_of = |answer: &serde_json::Value| answer["user"]["pk"].as_i64().unwrap();
    assert_eq!(pk_of(&answers[0]), pk_of(&answers[40]), "id 0 twice is one user");
    let usernames: std::collections::HashSet<_> = answers[..40]
        .iter()
        .map(|a| a["user"]["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(usernames.len(), 40, "{usernames:?}");
    assert!(usernames.contains("홍길동"), "{usernames:?}");
    assert!(usernames.iter().all(|n| n.starts_with("홍길동")), "{usernames:?}");
    assert_eq!(count_rows(&app).await, (40, 40, 20));
    for answer in &answers {
        let refreshed = app.refresh(answer["refresh"].as_str().unwrap()).await;
        assert_eq!(refreshed.status(), 200);
    }
    let emails = email_address::Entity::find().all(&app.db).await.unwrap();
    for row in emails {
        let user = user::Entity::find_by_id(row.user_id)
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.email.to_lowercase(), row.email, "each email row is its own user's");
        assert!(row.verified && row.primary);
    }
}

async fn a_disabled_user_gets_403(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database.cache_ttl = Duration::ZERO).await;
    let body = app.login_new_kakao_user(8).await;
    let pk = body["user"]["pk"].as_i64().unwrap() as i32;
    // Disabled behind the server's back (the CLI, another instance): with no cache the next
    // request reads the row.
    user::Entity::update_many()
        .col_expr(user::Column::IsActive, sea_orm::sea_query::Expr::value(false))
        .filter(user::Column::Id.eq(pk))
        .exec(&app.db)
        .await
        .unwrap();

    let response = app.post_kakao_login(&json!({"access_token": "token-8"})).await;
    assert_error(response, 403, "user_inactive").await;
    let access = body["access"].as_str().unwrap();
    assert_error(app.get_user("Bearer", access).await, 401, "user_inactive").await;
}

async fn a_provider_configured_for_another_site_only_returns_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = authbridge::store::sites::insert(&app.db, "other.example", "other")
        .await
        .unwrap();
    app.add_kakao_app(&["1234".into()], &[site.id]).await;
    app.kakao.accepts_token("good", minimal_user(3));

    let response = app.post_kakao_login(&json!({"access_token": "good"})).await;
    assert_error(response, 404, "provider_not_configured").await;
    let response = app
        .post_json("/accounts/rest-auth/naver/", &json!({"access_token": "good"}))
        .await;
    assert_error(response, 404, "provider_not_configured").await;
    assert_eq!(app.kakao.calls("/v2/user/me"), 0, "no provider call without an app");
    assert_eq!(count_rows(&app).await, (0, 0, 0));
}

async fn the_site_is_chosen_by_the_host_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = authbridge::store::sites::insert(&app.db, "api.other.example", "other")
        .await
        .unwrap();
    app.add_kakao_app(&["1234".into()], &[site.id]).await;
    app.kakao.accepts_token("good", minimal_user(3));

    let response = app
        .post_kakao_login_with_headers(&[("host", "API.other.example:8000")], &json!({"access_token": "good"}))
        .await;

    assert_eq!(response.status(), 200, "the app of site {} serves that host", site.id);
}

async fn a_form_encoded_body_works_like_json(backend: Backend) {
    let app = spawn_app(backend).await;
    app.kakao.accepts_token("form-token", minimal_user(99));

    let response = app.post_kakao_login_form(&[("access_token", "form-token")]).await;

    assert_eq!(response.status(), 200);
    assert_eq!(count_rows(&app).await, (1, 1, 0));
}

async fn a_shared_nickname_names_every_user_after_it_without_failed_inserts(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut pks = Vec::new();
    let mut usernames = std::collections::HashSet::new();

    for id in 1..=25 {
        let body = app.login_new_kakao_user(id).await;
        pks.push(body["user"]["pk"].as_i64().unwrap());
        usernames.insert(body["user"]["username"].as_str().unwrap().to_owned());
    }

    assert_eq!(usernames.len(), 25, "{usernames:?}");
    assert!(usernames.contains("홍길동"));
    assert!(
        usernames.iter().all(|n| n.starts_with("홍길동")),
        "no kakao_<id> fallback: {usernames:?}"
    );
    // A failed INSERT burns an id on PostgreSQL and MariaDB: consecutive pks mean none was made.
    assert_eq!(pks, (pks[0]..pks[0] + 25).collect::<Vec<_>>());
    let stored = user::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(stored, 25);

    let mut long = minimal_me(26);
    long["kakao_account"]["profile"]["nickname"] = json!("가".repeat(300));
    app.kakao.accepts_token("long", kakao_user(long));
    let response = app.post_kakao_login(&json!({"access_token": "long"})).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["user"]["username"],
        "가".repeat(150),
        "cut to Django's 150 characters"
    );
}
