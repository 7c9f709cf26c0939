//! Three processes of the real binary on one PostgreSQL (and one Redis when its test URL is set):
//! a session moves between them, concurrent first logins land on one user, a key rotated
//! through one instance signs there and verifies everywhere, and (with Redis) the login budget
//! is one for all three. Skipped without PostgreSQL.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use authbridge::store;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    helpers::{Backend, TestDatabase, assert_error, test_redis_url},
    kakao::{OUR_APP_ID, minimal_user},
};

/// How long an instance may take to say it listens, or to log what a test waits for.
const LOG_WAIT: Duration = Duration::from_secs(30);

/// One `authbridge serve` process; killed when dropped.
struct Instance {
    child: Child,
    address: String,
    log: mpsc::UnboundedReceiver<Value>,
}

impl Instance {
    /// Starts the binary on port 0 and reads the port from its `listening` log line.
    async fn start(env: &[(String, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_authbridge"))
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AUTHBRIDGE_LISTEN", "127.0.0.1:0")
            .env("AUTHBRIDGE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info,sqlx=warn,sea_orm=warn")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start authbridge");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, log) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && lines.send(event).is_err()
                {
                    break;
                }
            }
        });
        let mut instance = Self {
            child,
            address: String::new(),
            log,
        };
        let listening = instance.wait_for("listening").await;
        let port = listening["port"].as_u64().expect("the port in the listening line");
        instance.address = format!("http://127.0.0.1:{port}");
        instance
    }

    /// The next log event whose message is `message`.
    async fn wait_for(&mut self, message: &str) -> Value {
        tokio::time::timeout(LOG_WAIT, async {
            loop {
                let event = self.log.recv().await.expect("the instance exited");
                if event["message"] == message {
                    return event;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no `{message}` log line within {LOG_WAIT:?}"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    fn hang_up(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Three instances on one fresh PostgreSQL database, with one fake Kakao.
struct Cluster {
    instances: Vec<Instance>,
    client: reqwest::Client,
    kakao: kakao_emulator::Handle,
    db: DatabaseConnection,
    env: Vec<(String, String)>,
    _database: TestDatabase,
}

impl Cluster {
    async fn start() -> Option<Self> {
        let backend = Backend::postgres()?;
        let database = TestDatabase::create(&backend).await;
        let kakao = crate::kakao::start().await;
        let mut env = vec![
            ("AUTHBRIDGE_DATABASE_URL".to_owned(), database.url.clone()),
            ("AUTHBRIDGE_KAKAO_API_BASE".to_owned(), kakao.base_url().to_string()),
            ("AUTHBRIDGE_KAKAO_AUTH_BASE".to_owned(), kakao.base_url().to_string()),
            ("AUTHBRIDGE_MIGRATE_ON_START".to_owned(), "false".to_owned()),
            // Low enough for the shared-budget test; no other test here signs in with a password.
            ("AUTHBRIDGE_LOGIN_RATE_PER_ACCOUNT".to_owned(), "2/hour".to_owned()),
        ];
        if let Some(redis) = test_redis_url() {
            let prefix = format!("authbridge:test:{}:", uuid::Uuid::new_v4().simple());
            env.push(("AUTHBRIDGE_REDIS_URL".to_owned(), redis));
            env.push(("AUTHBRIDGE_REDIS_KEY_PREFIX".to_owned(), prefix));
        }
        let mut cluster = Self {
            instances: Vec::new(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            kakao,
            db: store::connect(
                &SecretString::from(database.url.clone()),
                4,
                store::Checkpoints::OnCommit,
            )
            .await
            .expect("test connection"),
            env,
            _database: database,
        };
        // As compose.yaml runs them: migrations once, then the instances.
        assert!(cluster.cli(&["migrate"]).await, "migrate");
        register_kakao_app(&cluster.db).await;
        // One first, so that one of them makes the signing key; then the other two.
        cluster.instances.push(Instance::start(&cluster.env).await);
        for _ in 0..2 {
            cluster.instances.push(Instance::start(&cluster.env).await);
        }
        Some(cluster)
    }

    /// Runs a management command against the cluster's database; true when it succeeded.
    async fn cli(&self, args: &[&str]) -> bool {
        let env = self.env.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_authbridge"))
                .args(&args)
                .envs(env)
                .env("RUST_LOG", "warn")
                .current_dir(std::env::temp_dir())
                .output()
                .expect("run authbridge");
            if !out.status.success() {
                eprintln!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            out.status.success()
        })
        .await
        .unwrap()
    }

    async fn post(&self, instance: usize, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.instances[instance].url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    async fn kakao_login(&self, instance: usize, token: &str) -> reqwest::Response {
        self.post(
            instance,
            "/accounts/rest-auth/kakao/",
            &json!({ "access_token": token }),
        )
        .await
    }
}

async fn register_kakao_app(db: &DatabaseConnection) {
    store::social::upsert_app(
        db,
        // The instances are processes of their own: this process's turn is its own.
        &store::WriteTurn::of(db),
        store::social::NewSocialApp {
            provider: "kakao".into(),
            name: "Kakao".into(),
            client_id: "rest-api-key".into(),
            secret: SecretString::from(crate::kakao::CLIENT_SECRET),
            admin_key: SecretString::from(crate::kakao::ADMIN_KEY),
            app_ids: vec![OUR_APP_ID.to_string()],
            client_keys: vec![crate::kakao::NATIVE_KEY.into()],
            sites: vec![1],
        },
    )
    .await
    .expect("social app saved");
}

/// The `kid` in a JWT's header.
fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.expect("a kid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_on_one_instance_is_refreshed_on_a_second_and_ended_on_a_third() {
    let Some(cluster) = Cluster::start().await else { return };
    cluster.kakao.accepts_token("token-a", minimal_user(7001));

    let login = cluster.kakao_login(0, "token-a").await;
    assert_eq!(login.status(), 200);
    let first: Value = login.json().await.unwrap();
    let refreshed = cluster
        .post(1, "/rest-auth/token/refresh/", &json!({ "refresh": first["refresh"] }))
        .await;
    assert_eq!(
        refreshed.status(),
        200,
        "the second instance refreshes the first one's token"
    );
    let second: Value = refreshed.json().await.unwrap();
    let user = cluster
        .client
        .get(cluster.instances[2].url("/rest-auth/user/"))
        .bearer_auth(second["access"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 200, "the third accepts the second's access token");

    let logout = cluster
        .post(2, "/rest-auth/logout/", &json!({ "refresh": second["refresh"] }))
        .await;
    assert_eq!(logout.status(), 200, "the third logs the session out");

    let after = cluster
        .post(0, "/rest-auth/token/refresh/", &json!({ "refresh": second["refresh"] }))
        .await;
    assert_error(after, 401, "token_not_valid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_first_logins_over_three_instances_make_one_user() {
    let Some(cluster) = Cluster::start().await else { return };
    cluster.kakao.accepts_token("token-50", minimal_user(7050));

    let logins = (0..50).map(|i| cluster.kakao_login(i % 3, "token-50"));
    let responses = futures::future::join_all(logins).await;

    let mut pks = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        pks.push(body["user"]["pk"].as_i64().unwrap());
    }
    pks.dedup();
    assert_eq!(pks.len(), 1, "every login names the same user: {pks:?}");
    let accounts = entity::social_account::Entity::find()
        .filter(entity::social_account::Column::Uid.eq("7050"))
        .count(&cluster.db)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
    let users = entity::user::Entity::find().count(&cluster.db).await.unwrap();
    assert_eq!(users, 1, "one user in the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_share_one_login_budget_through_redis() {
    if test_redis_url().is_none() {
        return;
    }
    let Some(cluster) = Cluster::start().await else { return };
    let hash = authbridge::password::hash(&SecretString::from("correct horse battery"))
        .await
        .unwrap();
    store::users::insert_local(
        &cluster.db,
        store::users::NewLocalUser {
            username: "alice",
            email: "alice@example.com",
            password_hash: hash,
            is_staff: false,
            is_superuser: false,
        },
    )
    .await
    .unwrap();
    let wrong = json!({"username": "alice", "password": "wrong"});

    // Two attempts per account per hour, spent on two instances: the third instance refuses.
    assert_eq!(cluster.post(0, "/rest-auth/login/", &wrong).await.status(), 400);
    assert_eq!(cluster.post(1, "/rest-auth/login/", &wrong).await.status(), 400);
    let third = cluster.post(2, "/rest-auth/login/", &wrong).await;
    assert_error(third, 429, "throttled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_through_one_instance_signs_there_and_verifies_on_all() {
    let Some(mut cluster) = Cluster::start().await else {
        return;
    };
    cluster.kakao.accepts_token("token-k", minimal_user(7100));
    let before: Value = cluster.kakao_login(1, "token-k").await.json().await.unwrap();
    let old_kid = kid(before["access"].as_str().unwrap());

    // `authbridge keys rotate` writes the key; SIGHUP makes the first instance switch at once.
    assert!(cluster.cli(&["keys", "rotate"]).await, "keys rotate");
    cluster.instances[0].hang_up();
    cluster.instances[0].wait_for("signing keys reloaded (SIGHUP)").await;

    let login = cluster.kakao_login(0, "token-k").await;
    assert_eq!(login.status(), 200);
    let after: Value = login.json().await.unwrap();
    let new_kid = kid(after["access"].as_str().unwrap());
    assert_ne!(new_kid, old_kid, "the first instance signs with the new key");

    for instance in 0..3 {
        for (what, body) in [("new", &after), ("old", &before)] {
            let verify = cluster
                .post(
                    instance,
                    "/rest-auth/token/verify/",
                    &json!({ "token": body["access"] }),
                )
                .await;
            assert_eq!(
                verify.status(),
                200,
                "instance {instance} accepts the {what} key's token"
            );
        }
        let jwks: Value = cluster
            .client
            .get(cluster.instances[instance].url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        assert!(
            kids.contains(&new_kid.as_str()),
            "instance {instance} publishes the new key: {kids:?}"
        );
    }
    let refreshed = cluster
        .post(2, "/rest-auth/token/refresh/", &json!({ "refresh": after["refresh"] }))
        .await;
    assert_eq!(
        refreshed.status(),
        200,
        "the new key's refresh token works on the third instance"
    );
}
