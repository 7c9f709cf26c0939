//! Baseline for `bench/run`: a bare poem server answering `GET /` with "hello".
//! Address from the first argument, else `HELLO_LISTEN`, else 127.0.0.1:3000.

use poem::{get, handler, listener::TcpListener, Route, Server};

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("HELLO_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    Server::new(TcpListener::bind(addr))
        .run(Route::new().at("/", get(hello)))
        .await
}
