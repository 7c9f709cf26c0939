//! spawn_app(): the real server on a random port, its own fresh database, its own Kakao emulator.

use std::{
    sync::{LazyLock, Once},
    time::Duration,
};

use authbridge::{app::App, config::Settings, store};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::SecretString;
use serde_json::Value;

use crate::kakao::{ADMIN_KEY, JS_KEY, NATIVE_KEY, OUR_APP_ID, REST_KEY};

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        authbridge::telemetry::init(authbridge::config::LogFormat::Pretty);
    }
});

/// Where a test's database lives.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
    Mysql(String),
}

impl Backend {
    /// PostgreSQL when `AUTHBRIDGE_TEST_POSTGRES_URL` is set; said once on stderr when it is not.
    pub fn postgres() -> Option<Self> {
        from_env("AUTHBRIDGE_TEST_POSTGRES_URL", Backend::Postgres, &POSTGRES_SKIP)
    }

    /// MariaDB/MySQL when `AUTHBRIDGE_TEST_MYSQL_URL` is set.
    pub fn mysql() -> Option<Self> {
        from_env("AUTHBRIDGE_TEST_MYSQL_URL", Backend::Mysql, &MYSQL_SKIP)
    }
}

static POSTGRES_SKIP: Once = Once::new();
static MYSQL_SKIP: Once = Once::new();
static REDIS_SKIP: Once = Once::new();

/// Redis for the shared rate-limit tests when `AUTHBRIDGE_TEST_REDIS_URL` is set; said once on
/// stderr when it is not.
pub fn test_redis_url() -> Option<String> {
    match std::env::var("AUTHBRIDGE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            REDIS_SKIP
                .call_once(|| eprintln!("AUTHBRIDGE_TEST_REDIS_URL is not set: skipping the Redis rate-limit tests"));
            None
        }
    }
}

fn from_env(var: &str, make: fn(String) -> Backend, once: &Once) -> Option<Backend> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(make(url)),
        _ => {
            once.call_once(|| eprintln!("{var} is not set: skipping that backend's storage tests"));
            None
        }
    }
}

/// Runs each named `async fn(Backend)` as three tests: `sqlite`, `postgres`, `mysql`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = crate::helpers::Backend::postgres() {
                    super::$name(backend).await
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                if let Some(backend) = crate::helpers::Backend::mysql() {
                    super::$name(backend).await
                }
            }
        }
    )*};
}
pub(crate) use on_every_backend;

/// A fresh database: a file in a temp dir, or `t_<uuid>` created on the server.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create(backend: &Backend) -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Self {
                    url,
                    backend: backend.clone(),
                    name,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres(server) | Backend::Mysql(server) => {
                let admin = sea_orm::Database::connect(server.as_str())
                    .await
                    .expect("connect to the test server");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
                Self {
                    url: format!("{base}/{name}"),
                    backend: backend.clone(),
                    name,
                    _dir: None,
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    /// Drops the server-side database, best effort and bounded, on a thread of its own.
    fn drop(&mut self) {
        let (server, sql) = match &self.backend {
            Backend::Sqlite => return,
            Backend::Postgres(s) => (s.clone(), format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)),
            Backend::Mysql(s) => (s.clone(), format!("DROP DATABASE IF EXISTS {}", self.name)),
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), async {
                    if let Ok(admin) = sea_orm::Database::connect(server.as_str()).await {
                        let _ = admin.execute_unprepared(&sql).await;
                        let _ = admin.close().await;
                    }
                })
                .await;
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of the separate `/metrics` listener, when `metrics_listen` is set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    /// A connection of the test's own to the app's database, for arranging and asserting.
    pub db: DatabaseConnection,
    /// The Kakao this app talks to: script users and faults, count calls.
    pub kakao: kakao_emulator::Handle,
    /// The Naver, Google and Apple this app talks to (one emulator, each provider's paths).
    pub social: kakao_emulator::social::SocialHandle,
    pub settings: Settings,
    /// The app's group-commit writer (tests stop it to see it come back).
    pub writer: authbridge::write_queue::WriteQueue,
    /// The app's database write turn: the test's own writes take it too (SQLite's one writer).
    pub write_turn: store::WriteTurn,
    server: tokio::task::JoinHandle<()>,
    _database: TestDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// As `spawn_app`, with settings tweaked by `tweak` before the server is built. A Kakao app that
/// trusts app id 1234 is registered on site 1.
pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    LazyLock::force(&TRACING);
    let kakao = crate::kakao::start().await;
    let social = crate::providers::start().await;
    let database = TestDatabase::create(&backend).await;
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.url = SecretString::from(database.url.clone());
    settings.database.max_connections = 8;
    settings.kakao.api_base = kakao.base_url().clone();
    settings.kakao.auth_base = kakao.base_url().clone();
    settings.naver.api_base = social.base_url().clone();
    settings.naver.auth_base = social.base_url().clone();
    settings.apple.base = social.base_url().clone();
    settings.google.oauth_base = social.base_url().clone();
    settings.google.api_base = social.base_url().clone();
    settings.providers.timeout = Duration::from_secs(1);
    tweak(&mut settings);
    let app = App::build(settings.clone()).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
    let writer = app.write_queue();
    let write_turn = app.state().cached.write_turn();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped(std::future::pending()).await;
    });
    let db = store::connect(&settings.database.url, 2, store::Checkpoints::OnCommit)
        .await
        .expect("test connection");
    let test_app = TestApp {
        address,
        metrics_address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        kakao,
        social,
        settings,
        writer,
        write_turn,
        server,
        _database: database,
    };
    test_app.add_kakao_app(&[OUR_APP_ID.to_string()], &[1]).await;
    test_app
}

/// Sends a request built by a helper; a transport failure fails the test.
async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("request")
}

impl TestApp {
    /// Registers (or replaces) the Kakao app: `authbridge socialapp add` in the old admin's place.
    pub async fn add_kakao_app(&self, app_ids: &[String], sites: &[i32]) {
        self.save_kakao_app(app_ids, sites, crate::kakao::CLIENT_SECRET).await;
    }

    /// The Kakao app on site 1 with another client secret than the one Kakao knows.
    pub async fn add_kakao_app_with_secret(&self, secret: &str) {
        self.save_kakao_app(&[OUR_APP_ID.to_string()], &[1], secret).await;
    }

    async fn save_kakao_app(&self, app_ids: &[String], sites: &[i32], secret: &str) {
        store::social::upsert_app(
            &self.db,
            &self.write_turn,
            store::social::NewSocialApp {
                provider: "kakao".into(),
                name: "Kakao".into(),
                client_id: REST_KEY.into(),
                secret: SecretString::from(secret.to_owned()),
                admin_key: SecretString::from(ADMIN_KEY),
                app_ids: app_ids.to_vec(),
                client_keys: vec![NATIVE_KEY.into(), JS_KEY.into()],
                sites: sites.to_vec(),
            },
        )
        .await
        .expect("social app saved");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_kakao_login(&self, body: &Value) -> reqwest::Response {
        send(self.client.post(self.url("/accounts/rest-auth/kakao/")).json(body)).await
    }

    pub async fn post_kakao_login_form(&self, form: &[(&str, &str)]) -> reqwest::Response {
        send(self.client.post(self.url("/accounts/rest-auth/kakao/")).form(form)).await
    }

    /// POSTs raw bytes with the given content type (for malformed-input tests).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        send(
            self.client
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    pub async fn verify_token(&self, token: &str) -> reqwest::Response {
        self.post_json("/rest-auth/token/verify/", &serde_json::json!({ "token": token }))
            .await
    }

    /// `GET /rest-auth/user/` with `Authorization: <scheme> <token>`.
    pub async fn get_user(&self, scheme: &str, token: &str) -> reqwest::Response {
        send(
            self.client
                .get(self.url("/rest-auth/user/"))
                .header("authorization", format!("{scheme} {token}")),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn refresh(&self, refresh: &str) -> reqwest::Response {
        self.post_json("/rest-auth/token/refresh/", &serde_json::json!({ "refresh": refresh }))
            .await
    }

    pub async fn logout(&self, refresh: &str) -> reqwest::Response {
        self.post_json("/rest-auth/logout/", &serde_json::json!({ "refresh": refresh }))
            .await
    }

    /// `method path` with `Authorization: Bearer <access>` and, when given, a JSON body.
    async fn send_as(
        &self,
        method: reqwest::Method,
        access: &str,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(access);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    /// `GET path` with `Authorization: Bearer <access>`.
    pub async fn get_as(&self, access: &str, path: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::GET, access, path, None).await
    }

    /// `POST path` with `Authorization: Bearer <access>` and a JSON body.
    pub async fn post_json_as(&self, access: &str, path: &str, body: &Value) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, access, path, Some(body)).await
    }

    /// `DELETE path` with `Authorization: Bearer <access>`.
    pub async fn delete_as(&self, access: &str, path: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::DELETE, access, path, None).await
    }

    /// `POST path` with no body and no credentials.
    pub async fn post_empty(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.expect("request")
    }

    /// The Kakao login with extra request headers (`host`, `x-request-id`, `user-agent`…).
    pub async fn post_kakao_login_with_headers(&self, headers: &[(&str, &str)], body: &Value) -> reqwest::Response {
        let mut request = self.client.post(self.url("/accounts/rest-auth/kakao/")).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request")
    }

    /// `GET /rest-auth/user/` with the credential in a header of the test's choosing
    /// (`jwt-auth`, `cookie`).
    pub async fn get_user_with(&self, header: &str, value: &str) -> reqwest::Response {
        send(self.client.get(self.url("/rest-auth/user/")).header(header, value)).await
    }

    /// `POST path` in cookie mode: the `cookie` header, and `x-csrftoken` when given.
    pub async fn post_with_cookies(&self, path: &str, cookies: &str, csrf: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).header("cookie", cookies);
        if let Some(csrf) = csrf {
            request = request.header("x-csrftoken", csrf);
        }
        request.send().await.expect("request")
    }

    /// `PATCH /rest-auth/user/` as `access`.
    pub async fn patch_user(&self, access: &str, body: &Value) -> reqwest::Response {
        self.send_user(reqwest::Method::PATCH, access, body).await
    }

    /// `PUT /rest-auth/user/` as `access`.
    pub async fn put_user(&self, access: &str, body: &Value) -> reqwest::Response {
        self.send_user(reqwest::Method::PUT, access, body).await
    }

    async fn send_user(&self, method: reqwest::Method, access: &str, body: &Value) -> reqwest::Response {
        send(
            self.client
                .request(method, self.url("/rest-auth/user/"))
                .bearer_auth(access)
                .json(body),
        )
        .await
    }

    /// `DELETE /rest-auth/user/` as `access`, with a JSON body (the password step-up) when given.
    pub async fn delete_user(&self, access: &str, body: Option<&Value>) -> reqwest::Response {
        self.send_as(reqwest::Method::DELETE, access, "/rest-auth/user/", body)
            .await
    }

    /// `POST /rest-auth/logout/all/`: every session of `access`'s user.
    pub async fn logout_all(&self, access: &str) -> reqwest::Response {
        send(self.client.post(self.url("/rest-auth/logout/all/")).bearer_auth(access)).await
    }

    /// `POST /rest-auth/logout/` with `Authorization: Token <key>` (a DRF opaque token).
    pub async fn logout_token_key(&self, key: &str) -> reqwest::Response {
        send(
            self.client
                .post(self.url("/rest-auth/logout/"))
                .header("authorization", format!("Token {key}")),
        )
        .await
    }

    /// `POST /rest-auth/password/change/` as `access`; `old_password` is sent only when given.
    pub async fn change_password(&self, access: &str, old: Option<&str>, new: &str) -> reqwest::Response {
        let mut body = serde_json::json!({ "new_password1": new, "new_password2": new });
        if let Some(old) = old {
            body["old_password"] = Value::from(old);
        }
        self.post_json_as(access, "/rest-auth/password/change/", &body).await
    }

    /// `POST /accounts/rest-auth/kakao/connect/`: links the Kakao account of `kakao_token` to
    /// `access`'s user.
    pub async fn connect_kakao(&self, access: &str, kakao_token: &str) -> reqwest::Response {
        self.post_json_as(
            access,
            "/accounts/rest-auth/kakao/connect/",
            &serde_json::json!({ "access_token": kakao_token }),
        )
        .await
    }

    /// `POST /rest-auth/socialaccounts/{id}/disconnect/` as `access`, with a JSON body (the
    /// password step-up) when given.
    pub async fn disconnect_social_account(
        &self,
        access: &str,
        id: impl std::fmt::Display,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let path = format!("/rest-auth/socialaccounts/{id}/disconnect/");
        self.send_as(reqwest::Method::POST, access, &path, body).await
    }

    /// `POST /api-token-auth/` (DRF `obtain_auth_token`) as a form.
    pub async fn obtain_token_key(&self, username: &str, password: &str) -> reqwest::Response {
        send(
            self.client
                .post(self.url("/api-token-auth/"))
                .form(&[("username", username), ("password", password)]),
        )
        .await
    }

    /// `POST /api/token/` (simplejwt) with a username and password, optionally through a proxy
    /// that says the client is `forwarded_for`.
    pub async fn obtain_pair(&self, username: &str, password: &str, forwarded_for: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/api/token/"))
            .json(&serde_json::json!({ "username": username, "password": password }));
        if let Some(client) = forwarded_for {
            request = request.header("x-forwarded-for", client);
        }
        request.send().await.expect("request")
    }

    /// `obtain_pair` that must succeed: the pair's body (`access`, `refresh`).
    pub async fn signed_in_pair(&self, username: &str, password: &str) -> Value {
        let response = self.obtain_pair(username, password, None).await;
        assert_eq!(response.status(), 200, "{username} signs in");
        response.json().await.expect("a token pair")
    }

    /// `POST /rest-auth/registration/` of `email` with a password the validators accept.
    pub async fn register(&self, email: &str) -> reqwest::Response {
        let password = "a-long-horse-battery";
        self.post_json(
            "/rest-auth/registration/",
            &serde_json::json!({"email": email, "password1": password, "password2": password}),
        )
        .await
    }

    /// A local user with a password, as `authbridge createsuperuser` makes one.
    pub async fn create_local_user(&self, username: &str, email: &str, password: &str) -> entity::user::Model {
        let password_hash = authbridge::password::hash(&SecretString::from(password.to_owned()))
            .await
            .unwrap();
        self.insert_user_with_hash(username, email, password_hash).await
    }

    pub async fn insert_user_with_hash(
        &self,
        username: &str,
        email: &str,
        password_hash: String,
    ) -> entity::user::Model {
        store::users::insert_local(
            &self.db,
            store::users::NewLocalUser {
                username,
                email,
                password_hash,
                is_staff: false,
                is_superuser: false,
            },
        )
        .await
        .expect("user inserted")
    }

    /// Signs `claims` with the app's newest Ed25519 key, read from its database.
    pub async fn sign_with_app_key(&self, claims: &Value) -> String {
        use base64::Engine;
        use sea_orm::{EntityTrait, QueryOrder};
        let key = entity::signing_key::Entity::find()
            .order_by_desc(entity::signing_key::Column::Id)
            .one(&self.db)
            .await
            .unwrap()
            .expect("a signing key");
        let der = base64::engine::general_purpose::STANDARD
            .decode(&key.private_key)
            .unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(key.kid);
        jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ed_der(&der)).unwrap()
    }

    /// A valid access token of `user_id` whose sign-in (`auth_time`) was an hour ago, as a
    /// refreshed session or a stolen token looks: no step-up by recency.
    pub async fn access_signed_in_long_ago(&self, user_id: &Value) -> String {
        let now = chrono::Utc::now().timestamp();
        self.sign_with_app_key(&serde_json::json!({
            "token_type": "access", "exp": now + 60, "iat": now, "jti": uuid::Uuid::new_v4().simple().to_string(),
            "user_id": user_id, "sid": "a-session", "auth_time": now - 3600,
        }))
        .await
    }

    /// Signs in a new Kakao user and returns the login body.
    pub async fn login_new_kakao_user(&self, kakao_id: i64) -> Value {
        let token = format!("token-{kakao_id}");
        self.kakao.accepts_token(&token, crate::kakao::minimal_user(kakao_id));
        let response = self
            .post_kakao_login(&serde_json::json!({ "access_token": token }))
            .await;
        assert_eq!(response.status(), 200, "login of kakao user {kakao_id}");
        response.json().await.unwrap()
    }
}

/// Asserts status and `code`, and returns the JSON body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    assert!(body["detail"].is_string(), "detail in {body}");
    body
}
