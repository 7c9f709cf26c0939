//! The management commands, run as the real binary against a fresh database.

use std::process::Command;

fn authbridge(db: &str, args: &[&str]) -> (bool, String) {
    authbridge_with(db, &[], args)
}

/// `authbridge args` with the variables `env` set beside the database's: (succeeded, output).
fn authbridge_with(db: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(args)
        .env("AUTHBRIDGE_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("run authbridge");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn site_and_socialapp_commands_register_a_kakao_app_without_printing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());

    let (ok, out) = authbridge(&db, &["site", "add", "--domain", "api.example.org", "--name", "API"]);
    assert!(ok, "{out}");
    let (ok, out) = authbridge(&db, &["site", "list"]);
    assert!(
        ok && out.contains("1\texample.com") && out.contains("api.example.org"),
        "{out}"
    );

    let add = [
        "socialapp",
        "add",
        "--provider",
        "kakao",
        "--client-id",
        "REST-KEY",
        "--secret",
        "S3CRET-VALUE",
        "--admin-key",
        "ADMIN-VALUE",
        "--app-id",
        "123",
        "--site",
        "1",
        "--site",
        "2",
    ];
    let (ok, out) = authbridge(&db, &add);
    assert!(ok, "{out}");
    let (ok, out) = authbridge(&db, &["socialapp", "list"]);
    assert!(
        ok && out.contains("REST-KEY") && out.contains("123") && out.contains("[1, 2]"),
        "{out}"
    );
    assert!(
        !out.contains("S3CRET-VALUE") && !out.contains("ADMIN-VALUE"),
        "secrets never printed: {out}"
    );
}

#[test]
fn a_kakao_app_without_an_app_id_and_a_bad_config_value_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let (ok, out) = authbridge(&db, &["socialapp", "add", "--provider", "kakao", "--client-id", "K"]);
    assert!(!ok && out.contains("--app-id"), "{out}");

    let (ok, out) = authbridge_with(
        &db,
        &[("AUTHBRIDGE_ACCESS_TOKEN_LIFETIME", "five minutes")],
        &["migrate"],
    );
    assert!(!ok && out.to_lowercase().contains("access_token_lifetime"), "{out}");
    let (ok, out) = authbridge_with(&db, &[("AUTHBRIDGE_ACESS_TOKEN_LIFETIME", "5m")], &["migrate"]);
    assert!(!ok && out.contains("acess_token_lifetime"), "a typo is named: {out}");
}

#[test]
fn the_flat_setting_names_of_api_md_work_in_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let file = dir.path().join("authbridge.toml");
    let config = file.to_str().unwrap();
    let write = |text: &str| std::fs::write(&file, text).unwrap();

    // Keys of several sections, as api.md and the README's table spell them.
    write(
        "kakao_api_base = \"http://127.0.0.1:1\"\njwt_auth_cookie = \"jwt-auth\"\n\
         login_rate_per_ip = \"3/min\"\nredis_key_prefix = \"t:\"\n",
    );
    let (ok, out) = authbridge(&db, &["--config", config, "migrate"]);
    assert!(ok, "{out}");

    // A bad value is named as the file spells it, and as the environment spells it.
    write("refresh_token_lifetime = \"a day\"\n");
    let (ok, out) = authbridge(&db, &["--config", config, "migrate"]);
    assert!(!ok && out.contains("refresh_token_lifetime"), "{out}");
    let (ok, out) = authbridge_with(&db, &[("AUTHBRIDGE_KAKAO_API_BASE", "not a url")], &["migrate"]);
    assert!(!ok && out.contains("KAKAO_API_BASE"), "{out}");

    // A section name is not a key of its own.
    write("[kakao]\napi_base = \"http://127.0.0.1:1\"\n");
    let (ok, out) = authbridge(&db, &["--config", config, "migrate"]);
    assert!(!ok && out.contains("kakao"), "{out}");
}

#[test]
fn createsuperuser_token_create_keys_rotate_and_flush_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let run = |args: &[&str], password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_authbridge"));
        command
            .args(args)
            .env("AUTHBRIDGE_DATABASE_URL", &db)
            .env("RUST_LOG", "warn");
        if let Some(p) = password {
            command.env("DJANGO_SUPERUSER_PASSWORD", p);
        }
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let noinput = [
        "createsuperuser",
        "--noinput",
        "--username",
        "admin",
        "--email",
        "a@x.io",
    ];
    let (ok, _, err) = run(&noinput, None);
    assert!(!ok && err.contains("DJANGO_SUPERUSER_PASSWORD"), "{err}");
    let (ok, out, err) = run(&noinput, Some("pw-0123456789"));
    assert!(ok && out.contains("superuser admin created"), "{out}{err}");
    let (ok, _, err) = run(
        &["createsuperuser", "--noinput", "--username", "admin"],
        Some("pw-0123456789"),
    );
    assert!(!ok && err.contains("username"), "a taken username is refused: {err}");

    let (ok, first, err) = run(&["token", "create", "admin"], None);
    assert!(ok && first.len() == 40, "{first}{err}");
    let (ok, second, _) = run(&["token", "create", "admin", "-r"], None);
    assert!(ok && second.len() == 40 && second != first);
    let (ok, _, err) = run(&["token", "create", "nobody"], None);
    assert!(!ok && err.contains("nobody"), "{err}");

    let (ok, out, err) = run(&["keys", "rotate"], None);
    assert!(ok && out.starts_with("new signing key"), "{out}{err}");
    let (ok, out, _) = run(&["token", "flush-expired"], None);
    assert!(ok && out.contains("expired refresh tokens deleted"), "{out}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let conn = authbridge::store::connect(&db.clone().into(), 1, authbridge::store::Checkpoints::OnCommit)
            .await
            .unwrap();
        let tokens = entity::auth_token::Entity::find().count(&conn).await.unwrap();
        assert_eq!(tokens, 1, "-r replaced the first key");
        let active = entity::signing_key::Entity::find()
            .filter(entity::signing_key::Column::RetiredAt.is_null())
            .count(&conn)
            .await
            .unwrap();
        let all = entity::signing_key::Entity::find().count(&conn).await.unwrap();
        assert_eq!((active, all), (1, 2), "one signing key, the old one retired but kept");
        let admin = authbridge::store::users::find_by_login(&conn, "admin")
            .await
            .unwrap()
            .unwrap();
        assert!(admin.is_staff && admin.is_superuser && admin.password.starts_with("argon2$argon2id$"));
    });
}

#[tokio::test]
async fn disabling_a_user_from_the_command_line_revokes_its_sessions() {
    use secrecy::ExposeSecret;
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    app.create_local_user("hal", "", "a-long-horse-battery").await;
    let session: serde_json::Value = app
        .post_json(
            "/api/token/",
            &serde_json::json!({"username": "hal", "password": "a-long-horse-battery"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let db = app.settings.database.url.expose_secret().to_owned();

    let (ok, out) = authbridge(&db, &["user", "disable", "hal"]);

    assert!(ok && out.contains("disabled"), "{out}");
    crate::helpers::assert_error(
        app.refresh(session["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
    crate::helpers::assert_error(
        app.get_user("Bearer", session["access"].as_str().unwrap()).await,
        401,
        "user_inactive",
    )
    .await;
    let login = app
        .post_json(
            "/api/token/",
            &serde_json::json!({"username": "hal", "password": "a-long-horse-battery"}),
        )
        .await;
    crate::helpers::assert_error(login, 401, "no_active_account").await;
    let (ok, _) = authbridge(&db, &["user", "enable", "hal"]);
    assert!(ok);
    assert_eq!(
        app.post_json(
            "/api/token/",
            &serde_json::json!({"username": "hal", "password": "a-long-horse-battery"})
        )
        .await
        .status(),
        200
    );
}

// The fake Kakao runs on this test's runtime: the binary is run off it (`spawn_blocking`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_from_the_command_line_unlinks_it_at_kakao_first() {
    use secrecy::ExposeSecret;
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let login = app.login_new_kakao_user(71).await;
    let username = login["user"]["username"].as_str().unwrap().to_owned();
    let db = app.settings.database.url.expose_secret().to_owned();
    let run = |kakao: String| {
        let (db, username) = (db.clone(), username.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
                    .args(["user", "delete", &username])
                    .env("AUTHBRIDGE_DATABASE_URL", db)
                    .env("AUTHBRIDGE_KAKAO_API_BASE", kakao)
                    .env("AUTHBRIDGE_PROVIDER_TIMEOUT", "2s")
                    .env("RUST_LOG", "warn")
                    .output()
                    .unwrap();
                (
                    out.status.success(),
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                )
            })
            .await
            .unwrap()
        }
    };

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, out) = run(format!("http://127.0.0.1:{closed_port}")).await;
    assert!(!ok, "Kakao unreachable: refused, {out}");
    assert_eq!(
        app.get_user("Bearer", login["access"].as_str().unwrap()).await.status(),
        200,
        "nothing deleted"
    );

    let (ok, out) = run(app.kakao.base_url().to_string()).await;
    assert!(ok && out.contains("deleted"), "{out}");
    assert_eq!(crate::kakao::unlinked(&app.kakao), [71]);
    crate::helpers::assert_error(
        app.refresh(login["refresh"].as_str().unwrap()).await,
        401,
        "token_not_valid",
    )
    .await;
}

#[test]
fn client_add_prints_a_secret_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());

    let (ok, out) = authbridge(&db, &["client", "add", "posts-api"]);
    assert!(ok, "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed")
        .trim()
        .to_owned();
    assert!(secret.len() >= 43, "{out}");

    let (ok, out) = authbridge(&db, &["client", "list"]);
    assert!(ok && out.contains("posts-api") && !out.contains(&secret), "{out}");
    let (ok, out) = authbridge(&db, &["client", "add", "posts-api"]);
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = authbridge(&db, &["client", "add", "bad:id"]);
    assert!(!ok, "{out}");
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let stored = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is not in the database"
        );
    }
    let (ok, out) = authbridge(&db, &["client", "remove", "posts-api"]);
    assert!(ok, "{out}");
    let (ok, out) = authbridge(&db, &["client", "list"]);
    assert!(ok && !out.contains("posts-api"), "{out}");
}
