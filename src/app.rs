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
    web::Html,
};
use tracing::Instrument;

use crate::{
    api,
    config::Settings,
    error::render_poem_error,
    providers,
    ratelimit::RateLimiter,
    state::{AppState, Shared},
    store,
    tokens::{KeyRing, Tokens},
};

/// How long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub struct App {
    acceptor: TcpAcceptor,
    port: u16,
    state: AppState,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = store::connect(
            &settings.database_url,
            settings.database_max_connections,
            store::Checkpoints::Background,
        )
        .await
        .context("connecting to the database (AUTHBRIDGE_DATABASE_URL)")?;
        if settings.migrate_on_start {
            store::migrate(&db).await.context("running migrations")?;
        }
        for app in &settings.social_apps {
            store::social::upsert_app(&db, app.clone().into())
                .await
                .context("applying [[social_apps]] from the config file")?;
        }
        let http = providers::http_client(&settings)?;
        let keys = KeyRing::load(db.clone(), &settings)
            .await
            .context("loading JWT signing keys")?;
        let limits = RateLimiter::from_settings(&settings)?;
        let cached = store::cache::Cached::new(db.clone(), settings.cache_ttl);
        let writer_db = store::connect_writer(&settings.database_url, &db)
            .await
            .context("connecting the token writer to the database")?;
        let state = AppState::new(Shared {
            limits,
            tokens: Tokens::new(Arc::new(keys), db.clone(), writer_db, cached.clone(), &settings),
            cached,
            providers: providers::Providers::from_settings(&settings, http),
            mailer: crate::mail::Mailer::from_settings(&settings)?,
            db,
            settings: Arc::new(settings),
        });
        let acceptor = TcpListener::bind(state.settings.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {} (AUTHBRIDGE_LISTEN)", state.settings.listen))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or_default();
        Ok(Self { acceptor, port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The group-commit writer, for the test hook that stops it (`stop_for_tests`).
    #[doc(hidden)]
    pub fn token_writer(&self) -> crate::store::token_writer::TokenWriter {
        self.state.tokens.writer().clone()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(port = self.port, "listening");
        let db = self.state.db.clone();
        let maintenance = tokio::spawn(maintain(self.state.clone()));
        let checkpoints = tokio::spawn(store::checkpoint::run(db.clone()));
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(route(self.state), shutdown, Some(SHUTDOWN_GRACE))
            .await;
        maintenance.abort();
        checkpoints.abort();
        if let Err(e) = db.close().await {
            tracing::warn!(error = %e, "closing the database pool");
        }
        tracing::info!("stopped");
        result
    }
}

/// Background upkeep: re-read signing keys every minute (another instance or the CLI may have
/// rotated them), forget full rate-limit buckets every minute, and purge expired refresh-token
/// rows and registrations whose confirmation key expired unused every `maintenance_interval`.
async fn maintain(state: AppState) {
    // First ticks one period from now: at start-up the keys were just loaded.
    let every = |period| tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut keys = every(Duration::from_secs(60));
    let mut purge = every(state.settings.maintenance_interval);
    loop {
        tokio::select! {
            _ = keys.tick() => {
                if let Err(e) = state.tokens.keys().reload().await {
                    tracing::warn!(error = %e, "reloading signing keys");
                }
                state.limits.retain_recent();
            }
            _ = purge.tick() => {
                match state.tokens.purge_expired().await {
                    Ok(purged) if purged > 0 => tracing::info!(purged, "expired refresh tokens purged"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired refresh tokens"),
                }
                match store::email_claims::delete_expired_registrations(&state.db, chrono::Utc::now()).await {
                    Ok(deleted) if deleted > 0 => tracing::info!(deleted, "unconfirmed registrations expired"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "deleting expired registrations"),
                }
            }
        }
    }
}

pub fn route(state: AppState) -> impl Endpoint {
    let sensitive = SensitiveHeader::new()
        .header(header::AUTHORIZATION)
        .header(header::COOKIE)
        .header(header::SET_COOKIE)
        .header(state.settings.auth_header_name.to_lowercase());
    Front {
        docs: api::spec::swagger_html(),
        spec: api::spec::spec_json(),
        api: api::spec::service().into_endpoint(),
    }
    .with(sensitive)
    .with(CatchPanic::new().with_handler(PanicToJson))
    // Cookies are read only in cookie mode (api/cookies.rs checks it first): no jar otherwise.
    .with_if(state.settings.jwt_auth_cookie.is_some(), CookieJarManager::new())
    .catch_all_error(render_poem_error)
    .around(edge)
    .data(state)
}

/// Swagger UI and the spec beside the OpenAPI service. Matched here rather than by a `Route` with
/// the service nested at `/`: the nest rebuilt every request's URI and matched its path twice.
struct Front<A> {
    docs: String,
    spec: String,
    api: A,
}

impl<A: Endpoint> Endpoint for Front<A> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        match req.uri().path() {
            "/docs" => Ok(Html(self.docs.clone()).into_response()),
            "/openapi.json" => Ok(self.spec.clone().with_content_type("application/json").into_response()),
            _ => self.api.call(req).await.map(IntoResponse::into_response),
        }
    }
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

/// The outermost layer, one `around` for what every request needs (each layer is a future and a
/// move of the request): a span with a request id, echoed in `x-request-id`; Django's trailing
/// slash trimmed; `Allow` on a 405.
async fn edge<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let span = tracing::info_span!("request", request_id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let uri = req.uri().clone(); // shares the buffer: no copy per request
    trim_trailing_slash(&mut req);
    async move {
        let mut response = next.call(req).await.map(IntoResponse::into_response)?;
        // RFC 9110 15.5.6: a 405 lists what is allowed.
        if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
            && let Some(allow) = api::spec::allowed_methods(uri.path()).and_then(|a| HeaderValue::from_str(a).ok())
        {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(status = response.status().as_u16(), elapsed_ms, "request finished");
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
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
