//! What each outside failure does (README "Operations"): the database going away → 503, and
//! service again once it is back, without a restart; the provider down → 502 for its logins
//! while password logins and refreshes go on. (Redis down: rate_limits.rs, fails open.)

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::AbortHandle};

use crate::helpers::{Backend, TestApp, assert_error, on_every_backend, spawn_app_with};

/// A TCP relay in front of the database that the test can cut and restore: the database seen
/// from the server goes away (open connections die, new ones are refused) and comes back.
struct Relay {
    address: SocketAddr,
    down: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (is_down, open_links) = (down.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                open_links.lock().unwrap().push(link.abort_handle());
            }
        })
        .abort_handle();
        Self {
            address,
            down,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// `url` with its host and port replaced by the relay's.
fn through(relay: &Relay, url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_host(Some(&relay.address.ip().to_string())).unwrap();
    url.set_port(Some(relay.address.port())).unwrap();
    url.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_gives_503_and_its_return_needs_no_restart() {
    let Some(backend) = Backend::postgres() else { return };
    let Backend::Postgres(server) = &backend else {
        unreachable!()
    };
    let server_url = url::Url::parse(server).unwrap();
    let target = format!(
        "{}:{}",
        server_url.host_str().unwrap(),
        server_url.port().unwrap_or(5432)
    );
    let relay = Relay::start(tokio::net::lookup_host(target).await.unwrap().next().unwrap()).await;
    let app = spawn_app_with(backend.clone(), |s| {
        s.database.url = SecretString::from(through(&relay, s.database.url.expose_secret()));
        s.database.cache_ttl = std::time::Duration::ZERO; // every request reads the database
    })
    .await;
    let session = app.login_new_kakao_user(8001).await;
    app.kakao.accepts_token("token-8002", crate::kakao::minimal_user(8002));

    relay.cut();
    assert_error(app.get("/readyz").await, 503, "service_unavailable").await;
    let refresh = app.refresh(session["refresh"].as_str().unwrap()).await;
    assert_error(refresh, 503, "service_unavailable").await;
    let login = app.post_kakao_login(&json!({"access_token": "token-8002"})).await;
    assert_error(login, 503, "service_unavailable").await;
    let me = app.get_user("Bearer", session["access"].as_str().unwrap()).await;
    assert_error(me, 503, "service_unavailable").await;

    relay.restore();
    assert_eq!(app.get("/readyz").await.status(), 200, "back without a restart");
    let refresh = app.refresh(session["refresh"].as_str().unwrap()).await;
    assert_eq!(refresh.status(), 200, "the session survived the outage");
    let login = app.post_kakao_login(&json!({"access_token": "token-8002"})).await;
    assert_eq!(login.status(), 200, "new users again");
}

on_every_backend!(a_provider_outage_gives_502_while_password_logins_and_refreshes_go_on);

async fn a_provider_outage_gives_502_while_password_logins_and_refreshes_go_on(backend: Backend) {
    let app: TestApp = spawn_app_with(backend, |_| {}).await;
    let kakao_session = app.login_new_kakao_user(8100).await;
    app.create_local_user("alice", "alice@example.com", "correct horse battery")
        .await;

    app.kakao.is_down();
    let login = app.post_kakao_login(&json!({"access_token": "token-8100"})).await;
    assert_error(login, 502, "provider_unavailable").await;

    let password = app
        .post_json(
            "/rest-auth/login/",
            &json!({"username": "alice", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(password.status(), 200, "password logins do not need the provider");
    let refreshed = app.refresh(kakao_session["refresh"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), 200, "a Kakao user's session goes on");
    let body: Value = refreshed.json().await.unwrap();
    let me = app.get_user("Bearer", body["access"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
}
