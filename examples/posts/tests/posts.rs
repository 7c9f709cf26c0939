//! authbridge, the Kakao emulator and the Posts example together over HTTP: Kakao logins, posts
//! with photos, the author-only rule, upload limits, and a revoked `Token` key.

use std::{
    future::pending,
    io::Cursor,
    time::{Duration, Instant},
};

use authbridge::store;
use kakao_emulator::{self as emulator, Emulator, EmulatorConfig};
use reqwest::{
    StatusCode,
    multipart::{Form, Part},
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const ALICE_KAKAO_ID: i64 = 3_095_134_389;
const BOB_KAKAO_ID: i64 = 1_376_016_924_426_814_086;
const PASSWORD: &str = "correct horse battery";

/// The three servers, each on a random port with its own storage.
struct World {
    authbridge: String,
    kakao: String,
    posts: String,
    media: std::path::PathBuf,
    http: reqwest::Client,
    authbridge_db: sea_orm::DatabaseConnection,
    _dir: tempfile::TempDir,
}

async fn start(tweak: impl FnOnce(&mut posts::config::Settings)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let kakao = Emulator::build(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .await
    .expect("the emulator builds");
    let kakao_url = kakao.base_url().clone();
    tokio::spawn(kakao.run_until_stopped(pending()));

    let mut settings = authbridge::config::Settings::default();
    settings.server.listen = "127.0.0.1:0".parse().unwrap();
    settings.database.url = SecretString::from(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("authbridge.db").display()
    ));
    settings.kakao.api_base = kakao_url.clone();
    settings.kakao.auth_base = kakao_url.clone();
    let app = authbridge::app::App::build(settings.clone())
        .await
        .expect("authbridge builds");
    let authbridge_url = format!("http://127.0.0.1:{}", app.port());
    let write_turn = app.state().cached.write_turn();
    tokio::spawn(app.run_until_stopped(pending()));
    let authbridge_db = store::connect(&settings.database.url, 1, store::Checkpoints::OnCommit)
        .await
        .unwrap();
    store::social::upsert_app(
        &authbridge_db,
        &write_turn,
        store::social::NewSocialApp {
            provider: "kakao".into(),
            name: "Kakao".into(),
            client_id: emulator::DEFAULT_REST_API_KEY.into(),
            secret: SecretString::from(emulator::DEFAULT_CLIENT_SECRET),
            admin_key: SecretString::from(emulator::DEFAULT_ADMIN_KEY),
            app_ids: vec![emulator::DEFAULT_APP_ID.to_string()],
            client_keys: vec![],
            sites: vec![1],
        },
    )
    .await
    .unwrap();
    // `authbridge client add posts`
    let secret = authbridge::resource_clients::create(&authbridge_db, "posts")
        .await
        .unwrap();

    let media = dir.path().join("media");
    let mut posts_settings = posts::config::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("posts.db").display()),
        authbridge_url: authbridge_url.clone(),
        client_id: Some("posts".into()),
        client_secret: Some(SecretString::from(secret.expose_secret().to_owned())),
        media_dir: media.clone(),
        ..posts::config::Settings::default()
    };
    tweak(&mut posts_settings);
    let posts_app = posts::app::App::build(posts_settings).await.expect("posts builds");
    let posts_url = format!("http://127.0.0.1:{}", posts_app.port());
    tokio::spawn(posts_app.run_until_stopped(pending()));

    World {
        authbridge: authbridge_url,
        kakao: kakao_url.as_str().trim_end_matches('/').to_owned(),
        posts: posts_url,
        media,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        authbridge_db,
        _dir: dir,
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 30]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn post_form(title: &str, photo: Option<(&str, Vec<u8>)>) -> Form {
    let form = Form::new()
        .text("title", title.to_owned())
        .text("text", "Hello from the example.");
    match photo {
        Some((name, bytes)) => form.part(
            "photo",
            Part::bytes(bytes)
                .file_name(name.to_owned())
                .mime_str("image/png")
                .unwrap(),
        ),
        None => form,
    }
}

impl World {
    /// Signs in at Kakao (the emulator) and exchanges the token at authbridge.
    async fn kakao_login(&self, kakao_id: i64) -> Value {
        let kakao: Value = self
            .http
            .post(format!("{}/emulator/tokens", self.kakao))
            .json(&json!({ "user_id": kakao_id }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let login = self
            .http
            .post(format!("{}/accounts/rest-auth/kakao/", self.authbridge))
            .json(&json!({ "access_token": kakao["access_token"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 200, "kakao login of {kakao_id}");
        login.json().await.unwrap()
    }

    /// A local user on authbridge and a DRF key of theirs (`POST /api-token-auth/`).
    async fn token_key(&self, username: &str) -> String {
        let password_hash = authbridge::password::hash(&SecretString::from(PASSWORD.to_owned()))
            .await
            .unwrap();
        store::users::insert_local(
            &self.authbridge_db,
            store::users::NewLocalUser {
                username,
                email: "",
                password_hash,
                is_staff: false,
                is_superuser: false,
            },
        )
        .await
        .unwrap();
        let key: Value = self
            .http
            .post(format!("{}/api-token-auth/", self.authbridge))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        key["token"].as_str().unwrap().to_owned()
    }

    fn posts(&self, method: reqwest::Method, path: &str, auth: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.posts));
        match auth {
            Some(auth) => request.header("authorization", auth),
            None => request,
        }
    }

    async fn create_post(&self, auth: &str, form: Form) -> reqwest::Response {
        self.posts(reqwest::Method::POST, "/posts/", Some(auth))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    fn media_files(&self) -> usize {
        std::fs::read_dir(&self.media).unwrap().count()
    }
}

fn bearer(login: &Value) -> String {
    format!("Bearer {}", login["access"].as_str().unwrap())
}

async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kakao_user_posts_a_photo_and_only_they_may_change_it() {
    let world = start(|s| s.page_size = 2).await;
    let alice = world.kakao_login(ALICE_KAKAO_ID).await;
    let bob = world.kakao_login(BOB_KAKAO_ID).await;
    let photo = png(32, 24);

    let created = world
        .create_post(&bearer(&alice), post_form("First", Some(("me.png", photo.clone()))))
        .await;
    assert_eq!(created.status(), 201);
    let post: Value = created.json().await.unwrap();
    assert_eq!(post["author"], alice["user"]["pk"]);
    assert_eq!(post["author_username"], alice["user"]["username"]);
    let photo_url = post["photo"].as_str().unwrap().to_owned();
    assert!(photo_url.starts_with(&format!("{}/media/", world.posts)), "{photo_url}");
    assert!(!photo_url.contains("me.png"), "stored under a random name: {photo_url}");

    let path = format!("/posts/{}/", post["id"]);
    let fetched: Value = world
        .posts(reqwest::Method::GET, &path, Some(&bearer(&bob)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, post);
    let image = world.http.get(&photo_url).send().await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.bytes().await.unwrap().as_ref(), photo.as_slice());

    // Someone else's post: 403 for every change.
    let as_bob = |method| world.posts(method, &path, Some(&bearer(&bob)));
    let put = as_bob(reqwest::Method::PUT)
        .multipart(post_form("Mine now", None))
        .send();
    assert_eq!(
        error_code(put.await.unwrap(), StatusCode::FORBIDDEN).await,
        "permission_denied"
    );
    let patch = as_bob(reqwest::Method::PATCH)
        .multipart(Form::new().text("title", "x"))
        .send();
    assert_eq!(
        error_code(patch.await.unwrap(), StatusCode::FORBIDDEN).await,
        "permission_denied"
    );
    let delete = as_bob(reqwest::Method::DELETE).send();
    assert_eq!(
        error_code(delete.await.unwrap(), StatusCode::FORBIDDEN).await,
        "permission_denied"
    );
    // No token: 401 with authbridge's header.
    let anonymous = world.posts(reqwest::Method::GET, "/posts/", None).send().await.unwrap();
    assert_eq!(anonymous.headers()["www-authenticate"], r#"Bearer realm="api""#);
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await,
        "not_authenticated"
    );

    // The author may; a new photo replaces the old file.
    let patched: Value = world
        .posts(reqwest::Method::PATCH, &path, Some(&bearer(&alice)))
        .multipart(
            Form::new()
                .text("title", "First, edited")
                .part("photo", Part::bytes(png(8, 8)).file_name("new.png")),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["title"], "First, edited");
    assert_eq!(patched["text"], post["text"]);
    assert_ne!(patched["photo"], post["photo"]);
    assert_eq!(world.http.get(&photo_url).send().await.unwrap().status(), 404);
    assert_eq!(world.media_files(), 1);

    // Newest first, two a page.
    for title in ["Second", "Third"] {
        assert_eq!(
            world.create_post(&bearer(&bob), post_form(title, None)).await.status(),
            201
        );
    }
    let page: Value = world
        .posts(reqwest::Method::GET, "/posts/", Some(&bearer(&alice)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["count"], 3);
    let titles: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Third", "Second"]);
    assert_eq!(page["next"], format!("{}/posts/?page=2", world.posts));

    // Alice logs out at authbridge; then deletes her post (her access JWT lives until it expires).
    let logout = world
        .http
        .post(format!("{}/rest-auth/logout/", world.authbridge))
        .json(&json!({ "refresh": alice["refresh"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    let deleted = world
        .posts(reqwest::Method::DELETE, &path, Some(&bearer(&alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(world.media_files(), 0, "the photo went with the post");
    let gone = world
        .posts(reqwest::Method::GET, &path, Some(&bearer(&alice)))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(gone, StatusCode::NOT_FOUND).await, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_too_large_or_not_images_are_refused() {
    let world = start(|s| {
        s.max_upload_bytes = 64 * 1024;
        s.max_image_side = 64;
    })
    .await;
    let alice = bearer(&world.kakao_login(ALICE_KAKAO_ID).await);

    let big = world
        .create_post(&alice, post_form("Big", Some(("big.png", vec![0u8; 100 * 1024]))))
        .await;
    assert_eq!(
        error_code(big, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    let text = world
        .create_post(
            &alice,
            post_form("Text", Some(("cat.png", b"just text, named .png".to_vec()))),
        )
        .await;
    assert_eq!(text.status(), 400);
    let body: Value = text.json().await.unwrap();
    assert_eq!(
        (body["code"].as_str(), body["field"].as_str()),
        (Some("invalid"), Some("photo")),
        "{body}"
    );

    let wide = world
        .create_post(&alice, post_form("Wide", Some(("wide.png", png(65, 1)))))
        .await;
    assert_eq!(error_code(wide, StatusCode::BAD_REQUEST).await, "invalid");

    let blank = world.create_post(&alice, post_form("  ", None)).await;
    assert_eq!(error_code(blank, StatusCode::BAD_REQUEST).await, "invalid");

    assert_eq!(world.media_files(), 0, "nothing refused was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_key_revoked_on_authbridge_stops_working_within_the_introspection_cache_time() {
    let cache = Duration::from_secs(1);
    let world = start(|s| s.introspection_cache = cache).await;
    let key = world.token_key("carol").await;
    let carol = format!("Token {key}");

    let created = world.create_post(&carol, post_form("By key", None)).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["author_username"], "carol");

    let revoked_at = Instant::now();
    let logout = world
        .http
        .post(format!("{}/rest-auth/logout/", world.authbridge))
        .header("authorization", &carol)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);

    let list = || world.posts(reqwest::Method::GET, "/posts/", Some(&carol)).send();
    loop {
        let response = list().await.unwrap();
        if response.status() == StatusCode::UNAUTHORIZED {
            assert_eq!(
                error_code(response, StatusCode::UNAUTHORIZED).await,
                "authentication_failed"
            );
            break;
        }
        assert_eq!(response.status(), 200, "a cached answer until then");
        assert!(
            revoked_at.elapsed() < cache + Duration::from_secs(2),
            "the revoked key still works after {:?}",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unknown = world
        .create_post(&format!("Token {}", "0".repeat(40)), post_form("x", None))
        .await;
    assert_eq!(
        error_code(unknown, StatusCode::UNAUTHORIZED).await,
        "authentication_failed"
    );
}

/// The example's storage on PostgreSQL, when `AUTHBRIDGE_TEST_POSTGRES_URL` names a server: the
/// migration, newest-first pages, an update and a delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_posts_store_works_on_postgresql() {
    use sea_orm::ConnectionTrait;
    let Some(server) = std::env::var("AUTHBRIDGE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("AUTHBRIDGE_TEST_POSTGRES_URL is not set: skipping the example's PostgreSQL test");
        return;
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = sea_orm::Database::connect(server.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    let db = posts::store::connect(&format!("{base}/{name}"))
        .await
        .expect("migrated");

    for (author, title) in [(1, "older"), (2, "newer")] {
        posts::store::insert(
            &db,
            posts::store::NewPost {
                author_id: author,
                author_username: format!("user{author}"),
                title: title.into(),
                text: "t".into(),
                photo: None,
            },
        )
        .await
        .unwrap();
    }
    let (rows, count) = posts::store::page(&db, 1, 1).await.unwrap();
    assert_eq!((rows[0].title.as_str(), count), ("newer", 2));
    let changes = posts::store::Changes {
        title: Some("edited".into()),
        ..Default::default()
    };
    let edited = posts::store::update(&db, rows[0].clone(), changes).await.unwrap();
    assert_eq!(edited.title, "edited");
    posts::store::delete(&db, edited.id).await.unwrap();
    assert!(posts::store::find(&db, edited.id).await.unwrap().is_none());

    db.close().await.ok();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .ok();
}

/// authbridge down and nothing cached: the example cannot tell, so it says 503 (retry), not 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_authbridge_unreachable_a_credential_gets_503_not_401() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing answers there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app = posts::app::App::build(posts::config::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("posts.db").display()),
        authbridge_url: format!("http://{closed}"),
        client_id: Some("posts".into()),
        client_secret: Some(SecretString::from("secret")),
        media_dir: dir.path().join("media"),
        ..posts::config::Settings::default()
    })
    .await
    .unwrap();
    let url = format!("http://127.0.0.1:{}/posts/", app.port());
    tokio::spawn(app.run_until_stopped(pending()));
    let http = reqwest::Client::new();

    let jwt = "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2ln";
    for auth in [format!("Bearer {jwt}"), format!("Token {}", "a".repeat(40))] {
        let response = http.get(&url).header("authorization", &auth).send().await.unwrap();
        assert_eq!(
            error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
            "service_unavailable"
        );
    }
}
