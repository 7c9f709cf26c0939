//! The management commands, run as the real binary against a fresh database.

use std::process::Command;

fn authbridge(db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(args)
        .env("AUTHBRIDGE_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
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

    let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(["migrate"])
        .env("AUTHBRIDGE_DATABASE_URL", &db)
        .env("AUTHBRIDGE_ACCESS_TOKEN_LIFETIME", "five minutes")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.to_lowercase().contains("access_token_lifetime"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
        .args(["migrate"])
        .env("AUTHBRIDGE_DATABASE_URL", &db)
        .env("AUTHBRIDGE_ACESS_TOKEN_LIFETIME", "5m")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("acess_token_lifetime"),
        "a typo is named: {text}"
    );
}
