//! Baselines for `bench/run`, one process:
//! - `GET /`: "hello", the smallest poem server;
//! - `POST /accounts/rest-auth/kakao/` (`relay`): takes `{"access_token": "..."}` and makes the two
//!   provider calls of a Kakao login, concurrently over kept-alive connections, as authbridge does,
//!   and nothing else (no checks, no database, no tokens). What a server on this stack can do at
//!   most here when every request costs those two calls.
//!
//! Address from the first argument, else `HELLO_LISTEN`, else 127.0.0.1:3000; the mock Kakao's
//! base URL from the second, else `HELLO_KAKAO`, else http://127.0.0.1:18080.

use poem::{
    get, handler, http::StatusCode, listener::TcpListener, post, web::Data, EndpointExt, Route, Server,
};
use serde_json::Value;

#[handler]
fn hello() -> &'static str {
    "hello"
}

struct Kakao {
    http: reqwest::Client,
    token_info: String,
    user_me: String,
}

impl Kakao {
    async fn get(&self, url: &str, token: &str) -> Result<Value, StatusCode> {
        let response = self
            .http
            .get(url)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)?;
        if !response.status().is_success() {
            return Err(StatusCode::BAD_REQUEST);
        }
        let body = response.bytes().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
        serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_GATEWAY)
    }
}

#[handler]
async fn relay(body: poem::Body, kakao: Data<&std::sync::Arc<Kakao>>) -> Result<String, StatusCode> {
    let body = body.into_bytes().await.map_err(|_| StatusCode::BAD_REQUEST)?;
    let request: Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let token = request["access_token"].as_str().ok_or(StatusCode::BAD_REQUEST)?;
    let (info, me) = tokio::try_join!(kakao.get(&kakao.token_info, token), kakao.get(&kakao.user_me, token))?;
    Ok(serde_json::json!({ "id": me["id"], "app_id": info["app_id"] }).to_string())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .or_else(|| std::env::var("HELLO_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let base = args
        .next()
        .or_else(|| std::env::var("HELLO_KAKAO").ok())
        .unwrap_or_else(|| "http://127.0.0.1:18080".to_owned());
    let kakao = std::sync::Arc::new(Kakao {
        http: reqwest::Client::new(),
        token_info: format!("{base}/v1/user/access_token_info"),
        user_me: format!("{base}/v2/user/me"),
    });
    let app = Route::new()
        .at("/", get(hello))
        .at("/accounts/rest-auth/kakao/", post(relay))
        .data(kakao);
    Server::new(TcpListener::bind(addr)).run(app).await
}
