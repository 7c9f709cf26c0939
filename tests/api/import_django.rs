//! `authbridge import-django`, run as the real binary against the test app's database: the
//! imported users then log in over HTTP with their Django password or their Kakao account.

use std::{path::Path, process::Command};

use entity::{email_address, social_account, user};
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, on_every_backend, spawn_app},
    kakao::{full_me, kakao_user},
};

on_every_backend!(
    a_csv_dump_imports_and_its_users_log_in_as_before,
    a_dumpdata_file_alone_imports_all_three_models,
    existing_rows_are_listed_as_conflicts_and_nothing_is_written,
    a_bad_row_aborts_the_import_naming_file_line_and_field,
    a_dry_run_checks_everything_and_writes_nothing,
);

const KAKAO_ID: u64 = 3_095_134_389;
/// Django's PBKDF2PasswordHasher for "lètmein" with salt "seasalt" (see src/password.rs).
const DJANGO_HASH: &str = "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=";

/// The arguments that import what `write_csv_dump` wrote.
const CSV_DUMP_ARGS: &[&str] = &[
    "--users",
    "users.csv",
    "--social-accounts",
    "social.csv",
    "--email-addresses",
    "emails.csv",
];

/// What `psql \copy (select * from …) to 'f.csv' csv header` writes for a small Django site:
/// carol (pk 1, a PBKDF2 password, never logged in, unverified email) and a Kakao user (pk 42).
fn write_csv_dump(dir: &Path) {
    let users = format!(
        "id,password,last_login,is_superuser,username,first_name,last_name,email,is_staff,is_active,date_joined\n\
         1,{DJANGO_HASH},,f,carol,Carol,Kim,Carol@Example.com,t,t,2021-03-04 05:06:07.123456+00\n\
         42,!unusableDjangoMarker,2024-05-01 12:34:56.5+00,f,kakao_{KAKAO_ID},,,,f,t,2022-04-11 01:45:28+00\n"
    );
    let extra_data = full_me(KAKAO_ID as i64, "kakao.user@example.com", true, true).to_string();
    let social = format!(
        "id,provider,uid,last_login,date_joined,extra_data,user_id\n\
         5,kakao,{KAKAO_ID},2024-05-01 12:34:56.5+00,2022-04-11 01:45:28+00,\"{}\",42\n",
        extra_data.replace('"', "\"\"")
    );
    let emails = "id,email,verified,primary,user_id\n3,Carol@Example.com,f,t,1\n4,Kakao.User@Example.com,t,t,42\n";
    std::fs::write(dir.join("users.csv"), users).unwrap();
    std::fs::write(dir.join("social.csv"), social).unwrap();
    std::fs::write(dir.join("emails.csv"), emails).unwrap();
}

/// The same site as `manage.py dumpdata auth.user socialaccount.socialaccount account.emailaddress
/// contenttypes` writes it: one file, JSONField `extra_data`, ISO timestamps.
fn dumpdata() -> Value {
    json!([
        {"model": "contenttypes.contenttype", "pk": 1, "fields": {"app_label": "auth", "model": "user"}},
        {"model": "auth.user", "pk": 1, "fields": {
            "password": DJANGO_HASH, "last_login": null, "is_superuser": false, "username": "carol",
            "first_name": "Carol", "last_name": "Kim", "email": "Carol@Example.com", "is_staff": true,
            "is_active": true, "date_joined": "2021-03-04T05:06:07.123Z", "groups": [], "user_permissions": []}},
        {"model": "auth.user", "pk": 42, "fields": {
            "password": "!unusableDjangoMarker", "last_login": "2024-05-01T12:34:56.500Z", "is_superuser": false,
            "username": format!("kakao_{KAKAO_ID}"), "first_name": "", "last_name": "", "email": "",
            "is_staff": false, "is_active": true, "date_joined": "2022-04-11T01:45:28Z",
            "groups": [], "user_permissions": []}},
        {"model": "socialaccount.socialaccount", "pk": 5, "fields": {
            "user": 42, "provider": "kakao", "uid": KAKAO_ID.to_string(),
            "last_login": "2024-05-01T12:34:56.500Z", "date_joined": "2022-04-11T01:45:28Z",
            "extra_data": full_me(KAKAO_ID as i64, "kakao.user@example.com", true, true)}},
        {"model": "account.emailaddress", "pk": 3, "fields": {
            "user": 1, "email": "Carol@Example.com", "verified": false, "primary": true}},
        {"model": "account.emailaddress", "pk": 4, "fields": {
            "user": 42, "email": "Kakao.User@Example.com", "verified": true, "primary": true}}
    ])
}

fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp()
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `authbridge import-django ARGS` against the app's database.
async fn import_django(app: &TestApp, dir: &Path, args: &[&str]) -> Run {
    let url = app.settings.database.url.expose_secret().to_owned();
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
            .arg("import-django")
            .args(&args)
            .current_dir(dir)
            .env("AUTHBRIDGE_DATABASE_URL", url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run authbridge");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

async fn counts(app: &TestApp) -> (u64, u64, u64) {
    (
        user::Entity::find().count(&app.db).await.unwrap(),
        social_account::Entity::find().count(&app.db).await.unwrap(),
        email_address::Entity::find().count(&app.db).await.unwrap(),
    )
}

async fn password_login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post_json("/api/token/", &json!({"username": username, "password": password}))
        .await
}

/// carol's Django password still works (and is upgraded); the Kakao user lands on pk 42; a user
/// made afterwards gets a fresh id.
async fn assert_imported_users_log_in(app: &TestApp) {
    let response = password_login(app, "carol", "lètmein").await;
    assert_eq!(response.status(), 200, "carol logs in with her Django password");
    let access = response.json::<Value>().await.unwrap()["access"]
        .as_str()
        .unwrap()
        .to_owned();
    let me: Value = app.get_user("Bearer", &access).await.json().await.unwrap();
    assert_eq!(me["pk"], 1, "{me}");
    let carol = user::Entity::find_by_id(1).one(&app.db).await.unwrap().unwrap();
    assert!(
        carol.password.starts_with("argon2$argon2id$"),
        "upgraded: {}",
        carol.password
    );

    app.kakao.accepts_token("t", kakao_user(json!({"id": KAKAO_ID})));
    let response = app.post_kakao_login(&json!({"access_token": "t"})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["pk"], 42, "the same imported user: {body}");
    assert_eq!(counts(app).await.1, 1, "no second social account");

    let newcomer = app.login_new_kakao_user(77).await;
    assert_eq!(
        newcomer["user"]["pk"], 43,
        "the id after the largest imported one: {newcomer}"
    );
}

async fn a_csv_dump_imports_and_its_users_log_in_as_before(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    write_csv_dump(dir.path());

    let run = import_django(&app, dir.path(), CSV_DUMP_ARGS).await;

    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("users            2"), "{}", run.stdout);
    assert!(run.stdout.contains("social accounts  1"), "{}", run.stdout);
    assert!(run.stdout.contains("email addresses  2"), "{}", run.stdout);
    let carol = user::Entity::find_by_id(1).one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        (
            carol.username.as_str(),
            carol.password.as_str(),
            carol.is_staff,
            carol.last_login
        ),
        ("carol", DJANGO_HASH, true, None)
    );
    // To the second: MySQL's `timestamp` columns keep no fraction.
    assert_eq!(carol.date_joined.timestamp(), at("2021-03-04T05:06:07Z"));
    let account = social_account::Entity::find_by_id(5)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((account.user_id, account.uid.as_str()), (42, "3095134389"));
    assert_eq!(account.extra_data["kakao_account"]["email"], "kakao.user@example.com");
    let email = email_address::Entity::find_by_id(3)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (email.email.as_str(), email.verified, email.primary),
        ("carol@example.com", false, true)
    );

    assert_imported_users_log_in(&app).await;
}

async fn a_dumpdata_file_alone_imports_all_three_models(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.json"), dumpdata().to_string()).unwrap();

    let run = import_django(&app, dir.path(), &["--users", "dump.json"]).await;

    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("skipped 1 records of contenttypes.contenttype"),
        "{}",
        run.stderr
    );
    assert_eq!(counts(&app).await, (2, 1, 2));
    let kakao_user = user::Entity::find_by_id(42).one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        kakao_user.last_login.map(|t| t.timestamp()),
        Some(at("2024-05-01T12:34:56Z"))
    );
    let account = social_account::Entity::find_by_id(5)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.extra_data["id"], json!(KAKAO_ID), "extra_data as a JSON object");
    let email = email_address::Entity::find_by_id(4)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((email.email.as_str(), email.verified), ("kakao.user@example.com", true));

    assert_imported_users_log_in(&app).await;
}

async fn existing_rows_are_listed_as_conflicts_and_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_local_user("carol", "", "another-password").await;
    app.kakao.accepts_token("t", kakao_user(json!({"id": KAKAO_ID})));
    assert_eq!(app.post_kakao_login(&json!({"access_token": "t"})).await.status(), 200);
    let before = counts(&app).await;
    let dir = tempfile::tempdir().unwrap();
    write_csv_dump(dir.path());

    let run = import_django(&app, dir.path(), CSV_DUMP_ARGS).await;

    assert!(!run.ok, "{}", run.stdout);
    for expected in [
        "users.csv line 2: user id 1 already exists",
        "users.csv line 2: username \"carol\" already exists",
        "social.csv line 2: social account (\"kakao\", \"3095134389\") already exists",
        "nothing was written",
    ] {
        assert!(run.stderr.contains(expected), "{expected:?} in {}", run.stderr);
    }
    assert_eq!(counts(&app).await, before, "nothing written");
    assert!(user::Entity::find_by_id(42).one(&app.db).await.unwrap().is_none());
}

async fn a_bad_row_aborts_the_import_naming_file_line_and_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    write_csv_dump(dir.path());
    let good = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    std::fs::write(
        dir.path().join("bad_users.csv"),
        format!("{good}43,!x,,f,dave,,,,maybe,t,2022-04-11 01:45:28+00\n"),
    )
    .unwrap();
    let mut dump = dumpdata();
    dump[2]["fields"]["date_joined"] = json!("last tuesday");
    std::fs::write(dir.path().join("bad.json"), dump.to_string()).unwrap();
    std::fs::write(
        dir.path().join("orphan.csv"),
        "id,email,verified,primary,user_id\n9,x@example.com,t,t,99\n",
    )
    .unwrap();

    let run = import_django(&app, dir.path(), &["--users", "bad_users.csv"]).await;
    assert!(
        !run.ok && run.stderr.contains("bad_users.csv line 4: is_staff"),
        "{}",
        run.stderr
    );
    let run = import_django(&app, dir.path(), &["--users", "bad.json"]).await;
    assert!(
        !run.ok && run.stderr.contains("bad.json record 3: date_joined"),
        "{}",
        run.stderr
    );
    let run = import_django(
        &app,
        dir.path(),
        &["--users", "users.csv", "--email-addresses", "orphan.csv"],
    )
    .await;
    assert!(
        !run.ok
            && run
                .stderr
                .contains("orphan.csv line 2: user_id 99 is neither in the dump nor in authbridge"),
        "{}",
        run.stderr
    );

    assert_eq!(counts(&app).await, (0, 0, 0), "no row of any attempt was written");
}

async fn a_dry_run_checks_everything_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.json"), dumpdata().to_string()).unwrap();

    let run = import_django(&app, dir.path(), &["--users", "dump.json", "--dry-run"]).await;

    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("users            2") && run.stdout.contains("dry run"),
        "{}",
        run.stdout
    );
    assert_eq!(counts(&app).await, (0, 0, 0));

    let run = import_django(&app, dir.path(), &["--users", "dump.json"]).await;
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(counts(&app).await, (2, 1, 2));
    let run = import_django(&app, dir.path(), &["--users", "dump.json", "--dry-run"]).await;
    assert!(
        !run.ok && run.stderr.contains("already exists"),
        "a dry run finds conflicts: {}",
        run.stderr
    );
}

#[tokio::test]
async fn a_dry_run_on_an_unmigrated_database_asks_for_migrate_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.json"), dumpdata().to_string()).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("fresh.db").display());

    let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(["import-django", "--users", "dump.json", "--dry-run"])
        .current_dir(dir.path())
        .env("AUTHBRIDGE_DATABASE_URL", &url)
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("authbridge migrate"),
        "{stderr}"
    );
    let db = authbridge::store::connect(&url.into(), 1, authbridge::store::Checkpoints::OnCommit)
        .await
        .unwrap();
    let tables = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(tables, 0, "no table, not even the migration table");
}

#[tokio::test]
async fn a_pbkdf2_hash_with_an_absurd_iteration_count_is_refused_naming_the_user() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    write_csv_dump(dir.path());
    let good = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    std::fs::write(
        dir.path().join("bomb.csv"),
        format!("{good}43,pbkdf2_sha256$2000000000$salt$AAAA,,f,mallory,,,,f,t,2022-04-11 01:45:28+00\n"),
    )
    .unwrap();

    let run = import_django(&app, dir.path(), &["--users", "bomb.csv"]).await;

    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "bomb.csv line 4: password: user \"mallory\" has a pbkdf2_sha256 hash with 2000000000 iterations"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(counts(&app).await, (0, 0, 0), "nothing written");
}
