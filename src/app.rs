//! Builds the server: database, migrations, keys, providers, routes and middleware; binds first
//! (port 0 works) and then serves until a shutdown signal, finishing in-flight requests.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response, Server,
    http::{HeaderValue, Uri, header, uri::PathAndQuery},
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::{CatchPanic, CookieJarManager, PanicHandler, SensitiveHeader},
};
use tracing::Instrument;

use crate::{
    accounts::Accounts,
    api,
    browser::Browser,
    config::Settings,
    error::render_poem_error,
    metrics::{self, Metrics, PoolStats},
    providers,
    ratelimit::RateLimiter,
    state::{AppState, Shared},
    store,
    tokens::{KeyRing, Tokens},
    write_queue::WriteQueue,
};

/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct App {
    acceptor: TcpAcceptor,
    port: u16,
    /// `/metrics` on a listener of its own (`metrics_listen`).
    metrics_acceptor: Option<TcpAcceptor>,
    metrics_port: Option<u16>,
    state: AppState,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = store::connect(
            &settings.database.url,
            settings.database.max_connections,
            store::Checkpoints::Background,
        )
        .await
        .context("connecting to the database (AUTHBRIDGE_DATABASE_URL)")?;
        if settings.database.migrate_on_start {
            store::migrate(&db).await.context("running migrations")?;
        }
        let turn = store::WriteTurn::of(&db);
        for app in &settings.social_apps {
            let saved = store::social::upsert_app(&db, &turn, app.clone().into())
                .await
                .context("applying [[social_apps]] from the config file")?;
            if let Some(app_settings) = &app.settings {
                store::provider_tokens::set_app_settings(&db, saved.id, app_settings)
                    .await
                    .context("applying [[social_apps]] settings from the config file")?;
            }
        }
        let metrics = Metrics::new(settings.metrics.enabled);
        let http = providers::http_client(&settings.providers)?;
        let keys = KeyRing::load(db.clone(), &settings.jwt)
            .await
            .context("loading JWT signing keys")?;
        let limits = RateLimiter::from_settings(&settings.rate_limits, &settings.redis, &metrics)?;
        let cached = store::cache::Cached::new(db.clone(), turn.clone(), settings.database.cache_ttl);
        let writer_db = store::connect_writer(&settings.database.url, &db)
            .await
            .context("connecting the write queue to the database")?;
        let queue = WriteQueue::start(writer_db, turn.clone(), metrics.clone());
        let audit = match settings.audit.enabled {
            true => crate::audit::Audit::start(db.clone(), turn.clone()),
            false => crate::audit::Audit::off(),
        };
        let tokens = Tokens::new(
            Arc::new(keys),
            db.clone(),
            queue.clone(),
            cached.clone(),
            &settings.jwt,
            &metrics,
        );
        let providers =
            providers::Providers::from_settings(providers::ProviderSections::of(&settings), http).metered(&metrics);
        let accounts = Accounts {
            db: db.clone(),
            cached: cached.clone(),
            tokens: tokens.clone(),
            queue,
            providers: providers.clone(),
            mailer: crate::mail::Mailer::from_settings(&settings.mail)?,
            limits: limits.clone(),
            audit: audit.clone(),
            settings: Arc::new(settings.accounts.clone()),
            require_nonce: settings.kakao.require_nonce,
        };
        let state = AppState::new(Shared {
            accounts,
            limits,
            audit,
            tokens,
            cached,
            providers,
            metrics,
            db,
            settings: Arc::new(settings),
        });
        let acceptor = TcpListener::bind(state.settings.server.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {} (AUTHBRIDGE_LISTEN)", state.settings.server.listen))?;
        let port = port_of(&acceptor);
        let metrics_acceptor = match state.settings.metrics.listen {
            Some(addr) if state.metrics.is_enabled() => Some(
                TcpListener::bind(addr)
                    .into_acceptor()
                    .await
                    .with_context(|| format!("binding {addr} (AUTHBRIDGE_METRICS_LISTEN)"))?,
            ),
            _ => None,
        };
        Ok(Self {
            port,
            metrics_port: metrics_acceptor.as_ref().map(port_of),
            acceptor,
            metrics_acceptor,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` listener, when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// The write queue, for the test hook that stops it (`stop_for_tests`).
    #[doc(hidden)]
    pub fn write_queue(&self) -> WriteQueue {
        self.state.accounts.queue.clone()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(port = self.port, "listening");
        let db = self.state.db.clone();
        let audit = self.state.audit.clone();
        let maintenance = tokio::spawn(maintain(self.state.clone()));
        let standings = tokio::spawn(follow_standings(self.state.clone()));
        let checkpoints = tokio::spawn(store::checkpoint::run(db.clone(), self.state.cached.write_turn()));
        let metrics_server = self.metrics_acceptor.map(|acceptor| {
            tracing::info!(port = self.metrics_port, "serving /metrics");
            tokio::spawn(Server::new_with_acceptor(acceptor).run(metrics_only(self.state.clone())))
        });
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(route(self.state), shutdown, Some(SHUTDOWN_GRACE))
            .await;
        maintenance.abort();
        standings.abort();
        checkpoints.abort();
        if let Some(server) = metrics_server {
            server.abort();
        }
        audit.finish().await;
        if let Err(e) = db.close().await {
            tracing::warn!(error = %e, "closing the database pool");
        }
        tracing::info!("stopped");
        result
    }
}

fn port_of(acceptor: &TcpAcceptor) -> u16 {
    acceptor
        .local_addr()
        .first()
        .and_then(|a| a.as_socket_addr().map(|s| s.port()))
        .unwrap_or_default()
}

/// Background upkeep: re-read signing keys every `key_reload_interval` (another instance or the
/// CLI may have rotated or revoked them) and at once on SIGHUP, forget full rate-limit buckets
/// every minute, and purge expired refresh-token rows, revoked sessions, old audit events and
/// registrations whose confirmation key expired unused, and standing changes read long since,
/// every `maintenance_interval`.
async fn maintain(state: AppState) {
    // First ticks one period from now: at start-up the keys were just loaded.
    let every = |period| tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut keys = every(state.settings.jwt.key_reload_interval);
    let mut limits = every(Duration::from_secs(60));
    let mut purge = every(state.settings.database.maintenance_interval);
    let mut hangup = Hangup::new();
    loop {
        tokio::select! {
            () = hangup.recv() => match state.tokens.keys().reload().await {
                Ok(()) => tracing::info!("signing keys reloaded (SIGHUP)"),
                Err(e) => tracing::warn!(error = %e, "reloading signing keys"),
            },
            _ = keys.tick() => {
                if let Err(e) = state.tokens.keys().reload().await {
                    tracing::warn!(error = %e, "reloading signing keys");
                }
            }
            _ = limits.tick() => state.limits.retain_recent(),
            _ = purge.tick() => {
                match state.tokens.purge_expired().await {
                    Ok(purged) if purged > 0 => tracing::info!(purged, "expired refresh tokens purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired refresh tokens"),
                }
                purge_audit(&state).await;
                purge_standing_changes(&state).await;
                match store::email_claims::delete_expired_registrations(&state.db, chrono::Utc::now()).await {
                    Ok(deleted) if deleted > 0 => tracing::info!(deleted, "unconfirmed registrations expired"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "deleting expired registrations"),
                }
            }
        }
    }
}

/// SIGHUP, the daemon convention for "re-read what you loaded at start" (here: signing keys, so
/// that `authbridge keys rotate` takes effect at once on the instances signalled).
struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        return Self(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok());
        #[cfg(not(unix))]
        Self()
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.0
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await
    }
}

pub fn route(state: AppState) -> impl Endpoint {
    let sensitive = SensitiveHeader::new()
        .header(header::AUTHORIZATION)
        .header(header::COOKIE)
        .header(header::SET_COOKIE)
        .header(state.settings.auth.header_name.to_lowercase());
    let settings = &state.settings;
    Front {
        metrics_here: settings.metrics.enabled && settings.metrics.listen.is_none(),
        api: api::spec::service().into_endpoint(),
    }
    .with(sensitive)
    .with(CatchPanic::new().with_handler(PanicToJson))
    // Cookies are read only in cookie mode (api/cookies.rs checks it first): no jar otherwise.
    .with_if(state.settings.cookies.access_name.is_some(), CookieJarManager::new())
    .catch_all_error(render_poem_error)
    .with(Edge {
        metrics: state.metrics.clone(),
        browser: Arc::new(Browser::from_settings(
            &state.settings.browser,
            &state.settings.auth.header_name,
        )),
    })
    .data(state)
}

/// The separate `/metrics` listener: that path only.
fn metrics_only(state: AppState) -> impl Endpoint {
    poem::endpoint::make(|req: Request| async move {
        match (req.uri().path(), req.data::<AppState>()) {
            ("/metrics", Some(state)) => Ok(metrics_response(state)),
            _ => Err(poem::Error::from_status(poem::http::StatusCode::NOT_FOUND)),
        }
    })
    .catch_all_error(render_poem_error)
    .data(state)
}

/// The exposition, with the pool's connections read now.
fn metrics_response(state: &AppState) -> Response {
    let (in_use, idle) = store::pool_connections(&state.db);
    let pool = PoolStats {
        in_use: i64::from(in_use),
        idle: i64::try_from(idle).unwrap_or(i64::MAX),
    };
    match state.metrics.render(pool) {
        Some(text) => text.with_content_type(metrics::CONTENT_TYPE).into_response(),
        None => render_not_found(),
    }
}

fn render_not_found() -> Response {
    crate::error::ApiError::not_found(crate::error::code::NOT_FOUND, "Not found.").into_response()
}

/// Swagger UI and the spec beside the OpenAPI service. Matched here rather than by a `Route` with
/// the service nested at `/`: the nest rebuilt every request's URI and matched its path twice.
struct Front<A> {
    /// `/metrics` is served on the main listener (metrics on, no `metrics_listen`).
    metrics_here: bool,
    api: A,
}

impl<A: Endpoint> Endpoint for Front<A> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        match req.uri().path() {
            "/docs" => Ok(document(api::spec::swagger_html(), "text/html; charset=utf-8")),
            "/openapi.json" => Ok(document(api::spec::spec_json(), "application/json")),
            "/metrics" if self.metrics_here => {
                Ok(req.data::<AppState>().map_or_else(render_not_found, metrics_response))
            }
            _ => self.api.call(req).await.map(IntoResponse::into_response),
        }
    }
}

/// A document made once per process, served without copying it.
fn document(text: &'static str, content_type: &'static str) -> Response {
    Response::builder().content_type(content_type).body(text)
}

/// A panic is our bug: logged with an id, answered as any other 500 (JSON, no detail).
#[derive(Clone)]
struct PanicToJson;

impl PanicHandler for PanicToJson {
    type Response = Response;

    fn get_response(&self, err: Box<dyn std::any::Any + Send + 'static>) -> Response {
        let message = err
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        crate::error::ApiError::internal(&format!("panic: {message}")).into_response()
    }
}

/// The outermost layer, one for what every request needs (each layer is a future and a move of
/// the request): a span with a request id, echoed in `x-request-id`; Django's trailing slash
/// trimmed; `Allow` on a 405; CORS and the security headers; the request counted in the metrics
/// by its route template.
struct Edge {
    metrics: Metrics,
    browser: Arc<Browser>,
}

impl<E: Endpoint> poem::Middleware<E> for Edge {
    type Output = EdgeEndpoint<E>;

    fn transform(&self, inner: E) -> EdgeEndpoint<E> {
        EdgeEndpoint {
            inner,
            metrics: self.metrics.clone(),
            browser: self.browser.clone(),
        }
    }
}

struct EdgeEndpoint<E> {
    inner: E,
    metrics: Metrics,
    browser: Arc<Browser>,
}

impl<E: Endpoint> Endpoint for EdgeEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
        let span = tracing::info_span!("request", request_id, method = %req.method(), path = %req.uri().path());
        req.extensions_mut().insert(api::origin::RequestId(request_id.clone()));
        let started = Instant::now();
        let uri = req.uri().clone(); // shares the buffer: no copy per request
        let method = req.method().clone();
        let origin = self.browser.origin(&req);
        trim_trailing_slash(&mut req);
        async move {
            let mut response = match self.browser.preflight(&req, &origin) {
                Some(preflight) => preflight,
                None => self.inner.call(req).await.map(IntoResponse::into_response)?,
            };
            // RFC 9110 15.5.6: a 405 lists what is allowed.
            if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
                && let Some(allow) = api::spec::allowed_methods(uri.path()).and_then(|a| HeaderValue::from_str(a).ok())
            {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            let elapsed = started.elapsed();
            tracing::debug!(
                status = response.status().as_u16(),
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request finished"
            );
            if self.metrics.is_enabled() {
                let route = response
                    .extensions()
                    .get::<poem_openapi::OperationId>()
                    .and_then(|id| api::spec::route_of(id.0))
                    .unwrap_or_else(|| fixed_route(&method, uri.path()));
                self.metrics.http_request(route, &method, response.status(), elapsed);
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert("x-request-id", value);
            }
            self.browser.finish(&origin, &mut response);
            Ok(response)
        }
        .instrument(span)
        .await
    }
}

/// The metrics label of a request no operation answered: a fixed path, or `unmatched` (never
/// the raw path, which a client picks).
fn fixed_route(method: &poem::http::Method, path: &str) -> &'static str {
    match path {
        _ if method == poem::http::Method::OPTIONS => "cors_preflight",
        "/docs" => "/docs",
        "/openapi.json" => "/openapi.json",
        "/metrics" => "/metrics",
        _ => "unmatched",
    }
}

/// Django paths end with `/`, poem-openapi routes them without it (see `api::spec`): both forms
/// get the same answer, never a redirect (a redirected POST loses its body).
fn trim_trailing_slash(req: &mut Request) {
    let path = req.uri().path();
    if path.len() <= 1 || !path.ends_with('/') || !api::spec::is_django_path(path) {
        return;
    }
    let trimmed = path.trim_end_matches('/');
    let path_and_query = match req.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    if let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Deletes audit events older than `audit_retention` (kept forever when it is 0).
async fn purge_audit(state: &AppState) {
    let retention = state.settings.audit.retention;
    if retention.is_zero() {
        return;
    }
    let before = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    match crate::store::audit::purge_before(&state.db, before).await {
        Ok(purged) if purged > 0 => tracing::info!(purged, "old audit events purged"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging old audit events"),
    }
}

/// Reads the feed of standing changes every `cache_ttl`, from start-up on: until the first read
/// and whenever reads fail, token checks read standings from the database (`store::cache`).
async fn follow_standings(state: AppState) {
    let period = state.settings.database.cache_ttl;
    if period.is_zero() {
        return;
    }
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match state.cached.follow_standing_changes().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("reading standing changes again");
            }
            Ok(()) => {}
            // Once per outage, not once per `cache_ttl`.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "reading standing changes; token checks read the database meanwhile");
            }
            Err(_) => {}
        }
    }
}

/// Standing changes are read for a minute after they are made; an hour is ample.
async fn purge_standing_changes(state: &AppState) {
    let before = chrono::Utc::now() - chrono::Duration::hours(1);
    match crate::store::standing::purge_changes(&state.db, before).await {
        Ok(purged) if purged > 0 => tracing::debug!(purged, "old standing changes purged"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging old standing changes"),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = terminate => {} }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
