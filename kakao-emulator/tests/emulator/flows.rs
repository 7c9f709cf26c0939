//! Emulator flows: authorization code with PKCE, refresh rotation, ID tokens against the JWKS,
//! and the unlink webhook.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use poem::{
    EndpointExt, Request, Route, Server, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Emu, FULL, INVALID_EMAIL, REST_KEY, SECRET, assert_kauth_error, start, start_with};

const REDIRECT: &str = "http://localhost:3000/callback";

/// `/oauth/authorize` with `login_hint`: the code from the redirect (state checked).
async fn authorize(emu: &Emu, user_id: i64, extra: &[(&str, &str)]) -> String {
    let hint = user_id.to_string();
    let mut query = vec![
        ("client_id", REST_KEY),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", "st4te"),
        ("login_hint", hint.as_str()),
    ];
    query.extend_from_slice(extra);
    let response = emu
        .client
        .get(emu.url("/oauth/authorize"))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let get = |k: &str| {
        location
            .query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some("st4te"));
    get("code").expect("a code")
}

fn exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", REST_KEY),
        ("client_secret", SECRET),
        ("redirect_uri", REDIRECT),
        ("code", code),
        ("code_verifier", verifier),
    ]
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[tokio::test]
async fn code_flow_with_pkce_issues_tokens_once_and_a_reused_code_gets_koe320() {
    let emu = start().await;
    let verifier = "a-verifier-of-at-least-forty-three-characters-0123456789";
    let challenge = challenge(verifier);
    let code = authorize(
        &emu,
        FULL,
        &[("code_challenge", &challenge), ("code_challenge_method", "S256")],
    )
    .await;

    let first = emu.token(&exchange(&code, verifier)).await;
    let again = emu.token(&exchange(&code, verifier)).await;

    assert_eq!(first.status(), 200);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 21_599);
    assert_eq!(body["refresh_token_expires_in"], 5_183_999);
    assert!(body.get("id_token").is_none(), "no openid scope, no ID token: {body}");
    assert!(body["scope"].as_str().unwrap().contains("account_email"), "{body}");
    let me: Value = emu
        .me(body["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], FULL);
    assert_kauth_error(again, 400, "invalid_grant", Some("KOE320")).await;
}

#[tokio::test]
async fn code_exchange_rejects_a_wrong_verifier_redirect_or_client_secret() {
    let emu = start().await;
    let verifier = "the-right-verifier-0123456789-0123456789-0123456789";
    let pkce = [
        ("code_challenge", challenge(verifier)),
        ("code_challenge_method", "S256".into()),
    ];
    let pkce: Vec<(&str, &str)> = pkce.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let code = authorize(&emu, FULL, &pkce).await;
    let wrong_verifier = emu.token(&exchange(&code, "another-verifier")).await;
    assert_kauth_error(wrong_verifier, 400, "invalid_grant", None).await;

    let code = authorize(&emu, FULL, &pkce).await;
    let mut form = exchange(&code, verifier);
    form[3] = ("redirect_uri", "http://localhost:3000/other");
    assert_kauth_error(emu.token(&form).await, 400, "invalid_grant", Some("KOE303")).await;

    let code = authorize(&emu, FULL, &pkce).await;
    let mut form = exchange(&code, verifier);
    form[2] = ("client_secret", "wrong");
    assert_kauth_error(emu.token(&form).await, 401, "invalid_client", Some("KOE010")).await;
}

#[tokio::test]
async fn authorize_without_login_hint_lists_the_users_and_cancel_redirects_access_denied() {
    let emu = start_with(|c| c.app.redirect_uris = vec![REDIRECT.into()]).await;
    let base = [
        ("client_id", REST_KEY),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
    ];

    let page = emu
        .client
        .get(emu.url("/oauth/authorize"))
        .query(&base)
        .send()
        .await
        .unwrap();
    let mut unregistered = base;
    unregistered[1] = ("redirect_uri", "http://evil.example/cb");
    let refused = emu
        .client
        .get(emu.url("/oauth/authorize"))
        .query(&unregistered)
        .send()
        .await
        .unwrap();
    let mut cancel = base.to_vec();
    cancel.push(("emulator_cancel", "1"));
    let cancelled = emu
        .client
        .get(emu.url("/oauth/authorize"))
        .query(&cancel)
        .send()
        .await
        .unwrap();

    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("홍길동") && html.contains(&format!("login_hint={FULL}")),
        "{html}"
    );
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("KOE006"));
    assert_eq!(cancelled.status(), 302);
    assert!(
        cancelled.headers()["location"]
            .to_str()
            .unwrap()
            .contains("error=access_denied")
    );
}

#[tokio::test]
async fn refresh_returns_a_new_refresh_token_only_when_under_30_days_remain() {
    let long = start().await;
    let short = start_with(|c| c.lifetimes.refresh = Duration::from_secs(20 * 24 * 3600)).await;
    let refresh = |emu: &Emu, token: String| {
        let form = [
            ("grant_type", "refresh_token".to_owned()),
            ("client_id", REST_KEY.into()),
            ("client_secret", SECRET.into()),
            ("refresh_token", token),
        ];
        emu.client.post(emu.url("/oauth/token")).form(&form).send()
    };
    let rt = |v: &Value| v["refresh_token"].as_str().unwrap().to_owned();

    let kept: Value = refresh(&long, rt(&long.mint(json!({"user_id": FULL})).await))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = rt(&short.mint(json!({"user_id": FULL})).await);
    let rotated: Value = refresh(&short, old.clone()).await.unwrap().json().await.unwrap();
    let reused = refresh(&short, old).await.unwrap();

    assert!(kept.get("refresh_token").is_none(), "60 days left: {kept}");
    assert_eq!(kept["token_type"], "bearer");
    assert!(
        kept["id_token"].is_string(),
        "an openid grant refreshes its ID token: {kept}"
    );
    assert_eq!(long.me(kept["access_token"].as_str().unwrap()).await.status(), 200);
    assert!(rotated["refresh_token"].is_string(), "20 days left: {rotated}");
    assert_eq!(rotated["refresh_token_expires_in"], 20 * 24 * 3600 - 1);
    assert_kauth_error(reused, 400, "invalid_grant", Some("KOE322")).await;
}

async fn verify_id_token(emu: &Emu, token: &str, audience: &str) -> Value {
    let jwks: JwkSet = emu
        .client
        .get(emu.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["https://kauth.kakao.com"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the ID token verifies")
        .claims
}

#[tokio::test]
async fn id_tokens_verify_with_the_jwks_and_carry_aud_sub_raw_nonce_and_only_a_trusted_email() {
    let emu = start().await;
    let code = authorize(&emu, FULL, &[("scope", "openid"), ("nonce", "n-0S6_WzA2Mj")]).await;
    let mut form = exchange(&code, "");
    form.pop();
    let full: Value = emu.token(&form).await.json().await.unwrap();
    let native = emu
        .mint(json!({"user_id": INVALID_EMAIL, "client_id": "emulator-native-key"}))
        .await;
    let discovery: Value = emu
        .client
        .get(emu.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let claims = verify_id_token(&emu, full["id_token"].as_str().unwrap(), REST_KEY).await;
    assert_eq!(claims["sub"], FULL.to_string());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["email"], "sample@sample.com");
    assert_eq!(claims["nickname"], "홍길동");
    assert!(claims["auth_time"].is_i64() && claims["iat"].is_i64());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        6 * 3600
    );
    assert!(full["scope"].as_str().unwrap().split(' ').any(|s| s == "openid"));
    let claims = verify_id_token(&emu, native["id_token"].as_str().unwrap(), "emulator-native-key").await;
    assert!(claims.get("email").is_none(), "an invalid email stays out: {claims}");
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        12 * 3600
    );
    assert_eq!(discovery["issuer"], "https://kauth.kakao.com");
    assert_eq!(discovery["jwks_uri"], emu.url("/.well-known/jwks.json"));
}

type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

/// Records method, Authorization and the fields (query or form body) of each call; answers 200.
#[handler]
async fn receive(req: &Request, body: String, calls: Data<&Calls>) -> StatusCode {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let fields = if body.is_empty() {
        req.uri().query().unwrap_or_default().to_owned()
    } else {
        body
    };
    calls
        .lock()
        .unwrap()
        .push((req.method().to_string(), auth.to_owned(), fields));
    StatusCode::OK
}

async fn webhook_receiver() -> (url::Url, Calls) {
    let calls = Calls::default();
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    tokio::spawn(
        Server::new_with_acceptor(acceptor).run(Route::new().at("/kakao/unlink", receive).data(calls.clone())),
    );
    (format!("http://127.0.0.1:{port}/kakao/unlink").parse().unwrap(), calls)
}

#[tokio::test]
async fn a_user_unlinking_in_kakao_revokes_tokens_and_calls_the_webhook_with_the_admin_key() {
    use kakao_emulator::{CallbackMethod, UnlinkCallback};
    for method in [CallbackMethod::Post, CallbackMethod::Get] {
        let (url, calls) = webhook_receiver().await;
        let emu = start_with(|c| c.unlink_callback = Some(UnlinkCallback { url, method })).await;
        let token = emu.access_token(FULL).await;
        let by_api = emu
            .post_form("/v1/user/unlink", Some(&format!("Bearer {token}")), &[])
            .await;
        assert_eq!(by_api.status(), 200);
        assert!(
            calls.lock().unwrap().is_empty(),
            "the app's own unlink sends no webhook (kakao-api.md 6.2)"
        );
        let token = emu.access_token(FULL).await;

        let unlink = emu
            .post_form(
                &format!("/emulator/users/{FULL}/unlink?referrer_type=ACCOUNT_DELETE"),
                None,
                &[],
            )
            .await;

        let body: Value = unlink.json().await.unwrap();
        assert_eq!(body["webhook"]["status"], 200, "{body}");
        assert_eq!(emu.me(&token).await.status(), 401);
        let calls = calls.lock().unwrap().clone();
        let expected = format!("app_id=1234&user_id={FULL}&referrer_type=ACCOUNT_DELETE");
        let method = if method == CallbackMethod::Post { "POST" } else { "GET" };
        assert_eq!(
            calls,
            [(method.to_owned(), "KakaoAK emulator-admin-key".to_owned(), expected)]
        );
    }
}
