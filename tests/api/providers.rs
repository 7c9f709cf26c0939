//! The tests' Naver, Google and Apple: the emulator crate's `social` module in process on a random
//! port (each provider's own paths), set up as the apps `add_naver_app` & co. register; and the
//! scenarios that span providers (one user linking all four; deletion revoking at each).

use std::sync::LazyLock;

use entity::{social_account, social_token, user};
use kakao_emulator::{
    SigningKey,
    social::{AppleApp, AppleKey, GoogleApp, NaverApp, SocialConfig, SocialEmulator, SocialHandle},
};
use sea_orm::{EntityTrait, PaginatorTrait};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app};

pub const NAVER_CLIENT_ID: &str = "naver-client-id";
pub const NAVER_SECRET: &str = "naver-client-secret";
/// The web client id (codes are exchanged with it) and the iOS one (an id_token audience).
pub const GOOGLE_WEB_ID: &str = "1008-web.apps.googleusercontent.com";
pub const GOOGLE_IOS_ID: &str = "1008-ios.apps.googleusercontent.com";
/// A client of another Google project: its tokens must not sign in here.
pub const GOOGLE_FOREIGN_ID: &str = "666-evil.apps.googleusercontent.com";
pub const GOOGLE_SECRET: &str = "google-client-secret";
/// The iOS app's bundle id (native codes, id_token `aud`) and the web Services id.
pub const APPLE_BUNDLE_ID: &str = "com.example.app";
pub const APPLE_SERVICES_ID: &str = "com.example.web";
pub const APPLE_TEAM_ID: &str = "TEAM123456";
pub const APPLE_KEY_ID: &str = "KEY1234567";
pub const GOOGLE_ISSUER: &str = kakao_emulator::social::GOOGLE_ISSUER;
pub const APPLE_ISSUER: &str = kakao_emulator::social::APPLE_ISSUER;

static GOOGLE_KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate().expect("an RSA key"));
static APPLE_KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::generate().expect("an RSA key"));
/// The team's Sign in with Apple key (`.p8`): the emulator checks our client secrets with it.
pub static TEAM_KEY: LazyLock<AppleKey> = LazyLock::new(|| AppleKey::generate(APPLE_KEY_ID).expect("a P-256 key"));

/// The emulator on port 0, serving the apps registered below; runs until the test ends.
pub async fn start() -> SocialHandle {
    let (google_key, apple_key, team_key) =
        tokio::task::spawn_blocking(|| (GOOGLE_KEY.clone(), APPLE_KEY.clone(), TEAM_KEY.clone()))
            .await
            .expect("the key thread");
    let config = SocialConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        naver: NaverApp {
            client_id: NAVER_CLIENT_ID.into(),
            client_secret: SecretString::from(NAVER_SECRET),
        },
        google: GoogleApp {
            client_ids: vec![GOOGLE_WEB_ID.into(), GOOGLE_IOS_ID.into()],
            client_secret: SecretString::from(GOOGLE_SECRET),
        },
        apple: AppleApp {
            client_ids: vec![APPLE_BUNDLE_ID.into(), APPLE_SERVICES_ID.into()],
            team_id: APPLE_TEAM_ID.into(),
            key: team_key,
        },
        google_key: Some(google_key),
        apple_key: Some(apple_key),
        apple_notifications: None,
    };
    let emulator = SocialEmulator::build(config).await.expect("the social emulator starts");
    let handle = emulator.handle();
    tokio::spawn(emulator.run_until_stopped(std::future::pending()));
    handle
}

impl TestApp {
    async fn add_app(&self, provider: &str, client_id: &str, secret: &str, keys: &[&str], settings: Value) -> i32 {
        let app = authbridge::store::social::upsert_app(
            &self.db,
            &self.write_turn,
            authbridge::store::social::NewSocialApp {
                provider: provider.into(),
                name: provider.into(),
                client_id: client_id.into(),
                secret: SecretString::from(secret.to_owned()),
                admin_key: SecretString::from(""),
                app_ids: vec![],
                client_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                sites: vec![1],
            },
        )
        .await
        .expect("social app saved");
        let settings = serde_json::from_value(settings).expect("app settings");
        authbridge::store::provider_tokens::set_app_settings(&self.db, app.id, &settings)
            .await
            .expect("settings saved");
        app.id
    }

    /// The Naver app on site 1; `link_by_email`: the operator vouches for Naver's addresses.
    pub async fn add_naver_app(&self, link_by_email: bool) {
        let settings = json!({"link_by_email": link_by_email});
        self.add_app("naver", NAVER_CLIENT_ID, NAVER_SECRET, &[], settings)
            .await;
    }

    /// The Google app on site 1: the web client id, and the iOS one as a further audience.
    pub async fn add_google_app(&self) {
        self.add_app("google", GOOGLE_WEB_ID, GOOGLE_SECRET, &[GOOGLE_IOS_ID], json!({}))
            .await;
    }

    /// The Apple app on site 1: bundle id (code exchanges), Services id, the team's `.p8`.
    pub async fn add_apple_app(&self) {
        let p8 = TEAM_KEY.p8_pem().expose_secret().to_owned();
        let settings = json!({"team_id": APPLE_TEAM_ID, "key_id": APPLE_KEY_ID});
        self.add_app("apple", APPLE_BUNDLE_ID, &p8, &[APPLE_SERVICES_ID], settings)
            .await;
    }

    /// `POST /accounts/rest-auth/{provider}/`.
    pub async fn post_login(&self, provider: &str, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/accounts/rest-auth/{provider}/"), body).await
    }

    /// `POST /accounts/rest-auth/{provider}/connect/` as `access`.
    pub async fn connect(&self, access: &str, provider: &str, body: &Value) -> reqwest::Response {
        self.post_json_as(access, &format!("/accounts/rest-auth/{provider}/connect/"), body)
            .await
    }

    pub async fn count_users(&self) -> u64 {
        user::Entity::find().count(&self.db).await.unwrap()
    }

    pub async fn count_accounts(&self) -> u64 {
        social_account::Entity::find().count(&self.db).await.unwrap()
    }

    /// The tokens kept for revocation: (hint, token).
    pub async fn kept_tokens(&self) -> Vec<(String, String)> {
        social_token::Entity::find()
            .all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.token_type_hint, t.token))
            .collect()
    }
}

/// A Naver `/v1/nid/me` `response` (docs/providers.md 1.4).
pub fn naver_profile(id: &str, email: &str) -> Value {
    json!({"id": id, "email": email, "nickname": "OpenAPI", "name": "오픈 API",
           "profile_image": "https://ssl.pstatic.net/static/pwe/address/nodata_33x33.gif",
           "age": "40-49", "gender": "F", "birthday": "10-01", "birthyear": "1900", "mobile": "010-0000-0000"})
}

/// Google's userinfo claims of `sub`.
pub fn google_claims(sub: &str, email: &str) -> Value {
    json!({"sub": sub, "email": email, "email_verified": true, "name": "Test User",
           "given_name": "Test", "family_name": "User", "picture": "https://lh4.googleusercontent.com/photo.jpg"})
}

/// A Google id_token of `sub` for `aud`, as the SDKs get it (`exp` in an hour).
pub fn google_id_token(social: &SocialHandle, sub: &str, aud: &str, nonce: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = google_claims(sub, &format!("{sub}@gmail.com"));
    claims["iss"] = json!(GOOGLE_ISSUER);
    claims["aud"] = json!(aud);
    claims["azp"] = json!(aud);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600);
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    social.sign_google(&claims)
}

/// Apple's id_token claims of `sub` with a private-relay address (strings, as Apple sends them).
pub fn apple_claims(sub: &str) -> Value {
    json!({"sub": sub, "email": format!("{}@privaterelay.appleid.com", sub.replace('.', "")),
           "email_verified": "true", "is_private_email": "true"})
}

/// An Apple id_token of `sub` for `aud`, echoing `nonce`.
pub fn apple_id_token(social: &SocialHandle, sub: &str, aud: &str, nonce: Option<&str>) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = apple_claims(sub);
    claims["iss"] = json!(APPLE_ISSUER);
    claims["aud"] = json!(aud);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
        claims["nonce_supported"] = json!(true);
    }
    social.sign_apple(&claims)
}

/// The hex SHA-256 of `raw`: what an app following the Firebase convention gives Apple.
pub fn sha256_hex(raw: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(raw.as_bytes()))
}

/// A local TCP port that accepts connections and drops them at once: a provider cutting us off.
pub async fn dropping_server() -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    url::Url::parse(&format!("http://{address}")).unwrap()
}

on_every_backend!(one_user_links_all_four_providers_and_deletion_revokes_at_each);

async fn one_user_links_all_four_providers_and_deletion_revokes_at_each(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_naver_app(false).await;
    app.add_google_app().await;
    app.add_apple_app().await;
    let kakao = app.login_new_kakao_user(7001).await;
    let access = kakao["access"].as_str().unwrap();

    app.social
        .naver_accepts_token("nv-7001", naver_profile("nv-7001-id", "n7001@naver.com"));
    let naver = app.connect(access, "naver", &json!({"access_token": "nv-7001"})).await;
    assert_eq!(naver.status(), 200, "naver connect");
    app.social
        .apple_issues_code("ap-code", apple_claims("000001.aaaa.7001"), APPLE_BUNDLE_ID, None);
    let apple = app.connect(access, "apple", &json!({"code": "ap-code"})).await;
    assert_eq!(apple.status(), 200, "apple connect");
    app.social
        .google_issues_code("gg-code", google_claims("1070017001", "g7001@gmail.com"), None, true);
    let google = app.connect(access, "google", &json!({"code": "gg-code"})).await;
    assert_eq!(google.status(), 200, "google connect");

    let list: Value = app
        .get_as(access, "/rest-auth/socialaccounts/")
        .await
        .json()
        .await
        .unwrap();
    let providers: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, ["kakao", "naver", "apple", "google"]);
    assert_eq!(app.kept_tokens().await.len(), 3, "naver, apple and google tokens kept");

    // Each disconnect but the last is allowed; the last way to sign in stays.
    for account in &list.as_array().unwrap()[1..] {
        let done = app.disconnect_social_account(access, &account["id"], None).await;
        assert_eq!(done.status(), 200, "disconnect {}", account["provider"]);
    }
    let revoked: Vec<&str> = app.social.revocations().iter().map(|r| r.provider).collect();
    assert_eq!(
        revoked,
        ["naver", "apple", "google"],
        "each disconnect revoked its token"
    );
    assert!(app.kept_tokens().await.is_empty());
    let last = app.disconnect_social_account(access, &list[0]["id"], None).await;
    assert_error(last, 400, "last_login_method").await;

    // Linked again, then the account deleted: Kakao unlinks, the others revoke.
    app.social
        .naver_accepts_token("nv-7001b", naver_profile("nv-7001-id", "n7001@naver.com"));
    assert_eq!(
        app.connect(access, "naver", &json!({"access_token": "nv-7001b"}))
            .await
            .status(),
        200
    );
    app.social
        .apple_issues_code("ap-code-2", apple_claims("000001.aaaa.7001"), APPLE_BUNDLE_ID, None);
    assert_eq!(
        app.connect(access, "apple", &json!({"code": "ap-code-2"}))
            .await
            .status(),
        200
    );
    let before = app.social.revocations().len();
    app.social.is_down();
    assert_error(app.delete_user(access, None).await, 502, "provider_unavailable").await;
    assert_eq!(
        app.count_users().await,
        1,
        "nothing deleted while Apple or Naver is down"
    );
    assert_eq!(app.count_accounts().await, 3);
    app.social.is_up();
    assert_eq!(app.delete_user(access, None).await.status(), 204);
    let revoked: Vec<_> = app.social.revocations()[before..].to_vec();
    assert_eq!(
        revoked.iter().map(|r| r.provider).collect::<Vec<_>>(),
        ["naver", "apple"]
    );
    assert!(revoked[0].token == "nv-7001b", "Naver's SDK token is the one revoked");
    assert_eq!(crate::kakao::unlinked(&app.kakao), [7001]);
    assert_eq!(app.count_users().await, 0);
    assert!(app.kept_tokens().await.is_empty(), "kept tokens go with the accounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_path_takes_the_built_in_providers_only() {
    let app = spawn_app(Backend::Sqlite).await;
    let unknown = app.post_login("github", &json!({"access_token": "x"})).await;
    let body = assert_error(unknown, 400, "invalid").await;
    assert!(body["detail"].as_str().unwrap().contains("ProviderName"), "{body}");
    // Built in but not configured for the site: as before, 404.
    let naver = app.post_login("naver", &json!({"access_token": "x"})).await;
    assert_error(naver, 404, "provider_not_configured").await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(
        spec["components"]["schemas"]["ProviderName"]["enum"],
        json!(["kakao", "naver", "apple", "google"])
    );
}
