//! The Kakao emulator in process on a random port, checked over HTTP against kakao-api.md.
//! (The `authbridge emulate kakao` command and authbridge logging in against the emulator are
//! tested with the server, in tests/api/emulator.rs.)

mod flows;
mod handle;

use std::time::Duration;

use kakao_emulator::{Emulator, EmulatorConfig, Handle};
use serde_json::{Value, json};

pub const FULL: i64 = 3_095_134_389;
pub const MINIMAL: i64 = 1_376_016_924_426_814_086;
pub const INVALID_EMAIL: i64 = 8_178_783_042;
pub const REST_KEY: &str = "emulator-rest-key";
pub const SECRET: &str = "emulator-secret";
pub const ADMIN: &str = "KakaoAK emulator-admin-key";

pub struct Emu {
    pub base: String,
    /// In-process control of the same emulator.
    pub handle: Handle,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emu {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn start() -> Emu {
    start_with(|_| {}).await
}

/// The emulator on port 0, with the default app and users, tweaked by `tweak`.
pub async fn start_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Emu {
    let mut config = EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    };
    tweak(&mut config);
    let emulator = Emulator::build(config).await.expect("the emulator builds");
    let base = format!("http://127.0.0.1:{}", emulator.port());
    let handle = emulator.handle();
    let server = tokio::spawn(async move {
        let _ = emulator.run_until_stopped(std::future::pending()).await;
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Emu {
        base,
        handle,
        client,
        server,
    }
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /emulator/tokens`; panics unless 200.
    pub async fn mint(&self, body: Value) -> Value {
        let response = self
            .client
            .post(self.url("/emulator/tokens"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "mint {body}");
        response.json().await.unwrap()
    }

    pub async fn access_token(&self, user_id: i64) -> String {
        self.mint(json!({"user_id": user_id})).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn get(&self, path: &str, authorization: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(auth) = authorization {
            request = request.header("authorization", auth);
        }
        request.send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, authorization: Option<&str>, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).form(form);
        if let Some(auth) = authorization {
            request = request.header("authorization", auth);
        }
        request.send().await.unwrap()
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.get("/v2/user/me", Some(&format!("Bearer {token}"))).await
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form("/oauth/token", None, form).await
    }
}

/// Asserts a kapi error: status, `{"msg", "code"}`, and the 401 header.
pub async fn assert_kapi_error(response: reqwest::Response, status: u16, code: i64, msg: &str) {
    assert_eq!(response.status().as_u16(), status);
    if status == 401 {
        assert_eq!(response.headers()["www-authenticate"], "Bearer error=invalid_token");
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"msg": msg, "code": code}));
}

/// Asserts a kauth error: status, `error` and `error_code`.
pub async fn assert_kauth_error(response: reqwest::Response, status: u16, error: &str, koe: Option<&str>) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(body.get("error_code").and_then(Value::as_str), koe, "{body}");
}

#[tokio::test]
async fn me_returns_the_full_user_with_http_image_urls_unless_secure_resource() {
    let emu = start().await;
    let token = emu.access_token(FULL).await;

    let me: Value = emu.me(&token).await.json().await.unwrap();
    let secure: Value = emu
        .get("/v2/user/me?secure_resource=true", Some(&format!("Bearer {token}")))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(me["id"], FULL);
    assert_eq!(me["kakao_account"]["email"], "sample@sample.com");
    assert_eq!(me["kakao_account"]["is_email_valid"], true);
    assert_eq!(me["for_partner"]["uuid"], "YVNjU2pZbkJ6T3xLfVFjVm9aaloO");
    let image = |v: &Value| {
        v["kakao_account"]["profile"]["profile_image_url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(image(&me).starts_with("http://k.kakaocdn.net/"), "{me}");
    assert!(image(&secure).starts_with("https://k.kakaocdn.net/"));
}

#[tokio::test]
async fn me_keeps_a_19_digit_id_exact_and_omits_what_the_user_did_not_consent_to() {
    let emu = start().await;
    let token = emu.access_token(MINIMAL).await;

    let response = emu.me(&token).await;

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("\"id\":1376016924426814086"), "{text}");
    let me: Value = serde_json::from_str(&text).unwrap();
    let account = me["kakao_account"].as_object().unwrap();
    assert!(
        account.get("email").is_none() && account.get("is_email_valid").is_none(),
        "{me}"
    );
    assert!(!text.contains("null"), "{text}");
}

#[tokio::test]
async fn me_answers_kakao_401s_without_a_header_and_for_unknown_or_expired_tokens() {
    let emu = start_with(|c| c.lifetimes = c.lifetimes.with_access(Duration::ZERO)).await;
    let expired = emu.access_token(FULL).await;

    assert_kapi_error(emu.get("/v2/user/me", None).await, 401, -401, "no authentication key!").await;
    assert_kapi_error(emu.me("nope").await, 401, -401, "this access token does not exist").await;
    assert_kapi_error(
        emu.me(&expired).await,
        401,
        -401,
        "this access token is already expired",
    )
    .await;
}

#[tokio::test]
async fn me_with_the_admin_key_names_the_user_by_target_id_and_honours_property_keys() {
    let emu = start().await;
    let target = FULL.to_string();
    let form = [
        ("target_id_type", "user_id"),
        ("target_id", target.as_str()),
        ("property_keys", r#"["kakao_account.email"]"#),
    ];

    let me: Value = emu
        .post_form("/v2/user/me", Some(ADMIN), &form)
        .await
        .json()
        .await
        .unwrap();
    let wrong_key = emu.post_form("/v2/user/me", Some("KakaoAK other"), &form).await;
    let no_target = emu.post_form("/v2/user/me", Some(ADMIN), &[]).await;
    let unknown = emu
        .post_form(
            "/v2/user/me",
            Some(ADMIN),
            &[("target_id_type", "user_id"), ("target_id", "42")],
        )
        .await;

    assert_eq!(me["id"], FULL);
    assert_eq!(me["kakao_account"]["email"], "sample@sample.com");
    assert!(me["kakao_account"].get("profile").is_none(), "{me}");
    assert!(
        me.get("properties").is_none() && me.get("for_partner").is_none(),
        "{me}"
    );
    assert_kapi_error(wrong_key, 401, -401, "invalid app key.").await;
    assert_eq!(no_target.status(), 400);
    assert_eq!(no_target.json::<Value>().await.unwrap()["code"], -2);
    assert_kapi_error(unknown, 400, -101, "NotRegisteredUserException").await;
}

#[tokio::test]
async fn token_info_reports_the_user_the_remaining_lifetime_and_the_app_id() {
    let emu = start().await;
    let ours = emu.access_token(FULL).await;
    let foreign = emu.mint(json!({"user_id": FULL, "app_id": 9999})).await;

    let info: Value = emu
        .get("/v1/user/access_token_info", Some(&format!("Bearer {ours}")))
        .await
        .json()
        .await
        .unwrap();
    let other: Value = emu
        .get(
            "/v1/user/access_token_info",
            Some(&format!("Bearer {}", foreign["access_token"].as_str().unwrap())),
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(info["id"], FULL);
    assert_eq!(info["app_id"], 1234);
    let left = info["expires_in"].as_i64().unwrap();
    assert!((21_590..=21_600).contains(&left), "REST key: 6 h, got {left}");
    assert_eq!(other["app_id"], 9999);
}

#[tokio::test]
async fn logout_and_unlink_revoke_tokens_and_answer_the_user_id() {
    let emu = start().await;
    let first = emu.access_token(FULL).await;
    let second = emu.access_token(FULL).await;
    let minimal = emu.access_token(MINIMAL).await;

    let logout = emu
        .post_form("/v1/user/logout", Some(&format!("Bearer {first}")), &[])
        .await;
    assert_eq!(logout.json::<Value>().await.unwrap(), json!({"id": FULL}));
    assert_kapi_error(emu.me(&first).await, 401, -401, "this access token does not exist").await;
    assert_eq!(
        emu.me(&second).await.status(),
        200,
        "a Bearer logout ends only that login"
    );

    let target = FULL.to_string();
    let form = [("target_id_type", "user_id"), ("target_id", target.as_str())];
    let unlink = emu.post_form("/v1/user/unlink", Some(ADMIN), &form).await;
    assert_eq!(unlink.json::<Value>().await.unwrap(), json!({"id": FULL}));
    assert_eq!(emu.me(&second).await.status(), 401);
    assert_eq!(emu.me(&minimal).await.status(), 200, "other users keep their tokens");
    let again = emu.post_form("/v2/user/me", Some(ADMIN), &form).await;
    assert_kapi_error(again, 400, -101, "NotRegisteredUserException").await;
}
