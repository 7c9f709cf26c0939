//! FakeKakao: a real HTTP server on a random loopback port that answers `/v1/user/access_token_info`
//! and `/v2/user/me` as Kakao does (shared/kakao-api.md sections 1–3), with scripted behaviour.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use poem::{
    EndpointExt, Request, Response, Route, Server, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};
use serde_json::{Value, json};

pub const OUR_APP_ID: i64 = 1234;
pub const FOREIGN_APP_ID: i64 = 9999;
/// The native app key the mobile SDK logs in with: an id_token audience our app accepts.
pub const NATIVE_KEY: &str = "native-app-key";

#[derive(Clone)]
enum TokenScript {
    Valid { app_id: i64, me: Value },
    Expired,
}

#[derive(Default)]
pub struct FakeState {
    tokens: HashMap<String, TokenScript>,
    down: bool,
    pub delay: Option<Duration>,
    pub calls: HashMap<String, usize>,
    pub codes: HashMap<String, crate::fake_kakao_oidc::CodeScript>,
    /// Target ids unlinked through `/v1/user/unlink` with the right admin key.
    pub unlinked: Vec<String>,
    /// The same, with the admin key each was unlinked with.
    pub unlinked_with: Vec<(String, String)>,
    pub jwks_down: bool,
    /// The `kid` the JWKS publishes its one key under (`fake_kakao_oidc::KID` when unset).
    pub jwks_kid: Option<String>,
    /// `/oauth/token` answers `307` to `/elsewhere/oauth/token`.
    pub token_endpoint_redirects: bool,
    /// `/v2/user/me` answers a valid user padded past 1 MiB.
    pub huge_user_info: bool,
}

impl FakeState {
    /// Kakao is back.
    pub fn down_off(&mut self) {
        self.down = false;
    }
}

#[derive(Clone)]
pub struct FakeKakao {
    pub base_url: String,
    state: Arc<Mutex<FakeState>>,
}

impl FakeKakao {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind fake kakao");
        let port = acceptor.local_addr()[0].as_socket_addr().expect("tcp").port();
        let app = Route::new()
            .at("/v1/user/access_token_info", handler_token_info)
            .at("/v2/user/me", handler_me)
            .at("/oauth/token", poem::post(crate::fake_kakao_oidc::token_endpoint))
            .at("/v1/user/unlink", poem::post(handler_unlink))
            .at("/.well-known/jwks.json", crate::fake_kakao_oidc::jwks_endpoint)
            .at("/elsewhere/*path", handler_elsewhere)
            .data(state.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    /// A token of our Kakao app for a user whose `/v2/user/me` is `me` (its `id` is used).
    pub fn accepts_token(&self, token: &str, me: Value) {
        self.accepts_token_of_app(token, OUR_APP_ID, me);
    }

    pub fn accepts_token_of_app(&self, token: &str, app_id: i64, me: Value) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.into(), TokenScript::Valid { app_id, me });
    }

    /// Kakao answers -401 "already expired" (unknown tokens get -401 "does not exist").
    pub fn rejects_token_as_expired(&self, token: &str) {
        self.state
            .lock()
            .unwrap()
            .tokens
            .insert(token.into(), TokenScript::Expired);
    }

    /// Every call answers 500.
    pub fn is_down(&self) {
        self.state.lock().unwrap().down = true;
    }

    /// Every call waits this long before answering.
    pub fn is_slow(&self, delay: Duration) {
        self.state.lock().unwrap().delay = Some(delay);
    }

    pub fn unlinked_with(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().unlinked_with.clone()
    }

    pub fn unlinked(&self) -> Vec<String> {
        self.state.lock().unwrap().unlinked.clone()
    }

    pub fn state(&self) -> &Shared {
        &self.state
    }

    /// The token endpoint redirects (307) to another path of this host.
    pub fn token_endpoint_redirects(&self) {
        self.state.lock().unwrap().token_endpoint_redirects = true;
    }

    /// `/v2/user/me` answers 2 MiB.
    pub fn answers_huge_user_info(&self) {
        self.state.lock().unwrap().huge_user_info = true;
    }

    pub fn calls(&self, path: &str) -> usize {
        self.state.lock().unwrap().calls.get(path).copied().unwrap_or(0)
    }
}

/// Kakao's minimal user: only the nickname consent (kakao-api.md 1.4).
pub fn minimal_user(id: i64) -> Value {
    json!({"id": id, "connected_at": "2022-04-11T01:45:28Z",
           "kakao_account": {"profile_nickname_needs_agreement": false, "profile": {"nickname": "홍길동"}},
           "properties": {"CUSTOM_PROPERTY_KEY": "CUSTOM_PROPERTY_VALUE"}})
}

/// Kakao's "all fields" user (kakao-api.md 1.4) with the given email flags.
pub fn full_user(id: i64, email: &str, valid: bool, verified: bool) -> Value {
    json!({
      "id": id, "connected_at": "2022-04-11T01:45:28Z",
      "kakao_account": {
        "profile_nickname_needs_agreement": false, "profile_image_needs_agreement": false,
        "profile": {"nickname": "홍길동", "thumbnail_image_url": "https://k.kakaocdn.net/dn/x/img_110x110.jpg",
                    "profile_image_url": "https://k.kakaocdn.net/dn/x/img_640x640.jpg",
                    "is_default_image": false, "is_default_nickname": false},
        "name_needs_agreement": false, "name": "홍길동",
        "email_needs_agreement": false, "is_email_valid": valid, "is_email_verified": verified, "email": email,
        "age_range_needs_agreement": false, "age_range": "20~29", "birthday_needs_agreement": false,
        "birthday": "1130", "birthday_type": "SOLAR", "gender_needs_agreement": false, "gender": "female"
      },
      "properties": {"CUSTOM_PROPERTY_KEY": "CUSTOM_PROPERTY_VALUE"},
      "for_partner": {"uuid": "YVNjU2pZbkJ6T3xLfVFjVm9aaloO"}
    })
}

pub type Shared = Arc<Mutex<FakeState>>;

/// Records the call, applies down/slow, and finds the token's script.
async fn prelude(req: &Request, state: &Shared) -> Result<Option<TokenScript>, Response> {
    let (down, delay, script) = {
        let mut s = state.lock().unwrap();
        *s.calls.entry(req.uri().path().to_owned()).or_default() += 1;
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned);
        let script = token.as_ref().and_then(|t| s.tokens.get(t).cloned());
        if token.is_none() {
            return Err(kakao_error(StatusCode::UNAUTHORIZED, "no authentication key!", -401));
        }
        (s.down, s.delay, script)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if down {
        return Err(Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body("upstream error"));
    }
    Ok(script)
}

fn kakao_error(status: StatusCode, msg: &str, code: i64) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .content_type("application/json;charset=UTF-8");
    if status == StatusCode::UNAUTHORIZED {
        builder = builder.header("WWW-Authenticate", "Bearer error=invalid_token");
    }
    builder.body(json!({"msg": msg, "code": code}).to_string())
}

fn json_ok(body: Value) -> Response {
    Response::builder()
        .content_type("application/json;charset=UTF-8")
        .body(body.to_string())
}

fn rejected(script: Option<TokenScript>) -> Response {
    match script {
        Some(TokenScript::Expired) => {
            kakao_error(StatusCode::UNAUTHORIZED, "this access token is already expired", -401)
        }
        _ => kakao_error(StatusCode::UNAUTHORIZED, "this access token does not exist", -401),
    }
}

#[handler]
async fn handler_token_info(req: &Request, state: Data<&Shared>) -> Response {
    match prelude(req, &state).await {
        Err(resp) => resp,
        Ok(Some(TokenScript::Valid { app_id, me })) => {
            json_ok(json!({"id": me["id"], "expires_in": 7199, "app_id": app_id}))
        }
        Ok(other) => rejected(other),
    }
}

#[handler]
async fn handler_me(req: &Request, state: Data<&Shared>) -> Response {
    match prelude(req, &state).await {
        Err(resp) => resp,
        Ok(Some(TokenScript::Valid { mut me, .. })) => {
            if state.lock().unwrap().huge_user_info {
                me["padding"] = json!("x".repeat(2 * 1024 * 1024));
            }
            json_ok(me)
        }
        Ok(other) => rejected(other),
    }
}

pub const ADMIN_KEY: &str = "kakao-admin-key";
/// The admin key of a second Kakao app (multi-app deployments).
pub const OTHER_ADMIN_KEY: &str = "other-app-admin-key";

/// `POST /v1/user/unlink` with `KakaoAK <admin key>` and `target_id_type=user_id&target_id=…`.
#[handler]
async fn handler_unlink(req: &Request, body: poem::Body, state: Data<&Shared>) -> Response {
    let bytes = body.into_vec().await.unwrap_or_default();
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let mut s = state.lock().unwrap();
    *s.calls.entry(req.uri().path().to_owned()).or_default() += 1;
    if s.down {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body("upstream error");
    }
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("KakaoAK "))
        .unwrap_or_default()
        .to_owned();
    if presented != ADMIN_KEY && presented != OTHER_ADMIN_KEY {
        return kakao_error(StatusCode::UNAUTHORIZED, "invalid app key.", -401);
    }
    if form.get("target_id_type").map(String::as_str) != Some("user_id") {
        return kakao_error(StatusCode::BAD_REQUEST, "target_id_type is required", -2);
    }
    let target = form.get("target_id").cloned().unwrap_or_default();
    s.unlinked.push(target.clone());
    s.unlinked_with.push((target.clone(), presented));
    json_ok(json!({"id": target.parse::<i64>().unwrap_or_default()}))
}

/// Where a redirect points: counts what reached it.
#[handler]
async fn handler_elsewhere(req: &Request, state: Data<&Shared>) -> Response {
    *state.lock().unwrap().calls.entry("/elsewhere".into()).or_default() += 1;
    let _ = req;
    json_ok(json!({}))
}
