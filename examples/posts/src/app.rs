//! Builds the service (database, media folder, token checks) and binds first, so port 0 works;
//! then serves until the shutdown future completes.

use std::{future::Future, ops::Deref, sync::Arc};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler,
    http::{Uri, header, uri::PathAndQuery},
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    web::{Data, Path},
};
use poem_openapi::OpenApiService;
use sea_orm::DatabaseConnection;

use crate::{api::PostsApi, auth::Auth, config::Settings, error, photos::Photos, store};

/// What every request may use; cheap to clone.
#[derive(Clone)]
pub struct State(Arc<Shared>);

pub struct Shared {
    pub db: DatabaseConnection,
    pub settings: Settings,
    /// `public_url`, or `http://<bound address>`, without a trailing slash.
    pub public_url: String,
    pub auth: Auth,
    pub photos: Photos,
}

impl Deref for State {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct App {
    acceptor: TcpAcceptor,
    port: u16,
    state: State,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = store::connect(&settings.database_url)
            .await
            .context("connecting to the database (POSTS_DATABASE_URL)")?;
        tokio::fs::create_dir_all(&settings.media_dir)
            .await
            .with_context(|| format!("creating the media folder {}", settings.media_dir.display()))?;
        let acceptor = TcpListener::bind(settings.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("binding {} (POSTS_LISTEN)", settings.listen))?;
        let bound = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no TCP address")?;
        let public_url = match &settings.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        };
        let state = State(Arc::new(Shared {
            db,
            auth: Auth::new(&settings),
            photos: Photos::new(settings.media_dir.clone(), settings.max_image_side, &public_url),
            public_url,
            settings,
        }));
        let port = bound.port();
        Ok(Self { acceptor, port, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(port = self.port, "listening");
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(route(self.state), shutdown, None)
            .await
    }
}

pub fn spec() -> OpenApiService<PostsApi, ()> {
    OpenApiService::new(PostsApi, "Posts (authbridge example)", env!("CARGO_PKG_VERSION"))
}

pub fn route(state: State) -> impl Endpoint {
    let max_body = state.settings.max_upload_bytes;
    let service = spec().server(state.public_url.clone());
    let spec_json = service.spec_endpoint();
    Route::new()
        .at("/media/:name", get(media))
        .at("/openapi.json", spec_json)
        .nest("/", service)
        .around(move |next, req| edge(next, req, max_body))
        .data(state)
        .catch_all_error(error::render)
}

/// Every request: a trailing slash trimmed (Django paths end with `/`; poem-openapi routes them
/// without), and bodies over `max_upload_bytes` → 413, whether or not they say their length.
async fn edge<E: Endpoint>(next: E, mut req: Request, max: usize) -> poem::Result<Response> {
    trim_trailing_slash(&mut req);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || error::PostsError::too_large(max).into_response();
    match declared {
        Some(length) if length > max => return Ok(too_large()),
        Some(_) => {}
        None => match req.take_body().into_bytes_limit(max).await {
            Ok(bytes) => req.set_body(bytes),
            Err(poem::error::ReadBodyError::PayloadTooLarge) => return Ok(too_large()),
            Err(e) => return Err(e.into()),
        },
    }
    next.call(req).await.map(IntoResponse::into_response)
}

fn trim_trailing_slash(req: &mut Request) {
    let path = req.uri().path();
    if path.len() <= 1 || !path.ends_with('/') {
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

/// A stored photo, by the random name the API gave it. Public: whoever has the URL sees it.
#[handler]
async fn media(state: Data<&State>, Path(name): Path<String>) -> Response {
    match state.photos.read(&name).await {
        Some((bytes, content_type)) => Response::builder()
            .content_type(content_type)
            .header("x-content-type-options", "nosniff")
            .header(header::CACHE_CONTROL, "public, max-age=31536000, immutable")
            .body(bytes),
        None => error::PostsError::not_found().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_operation_of_the_spec_asks_for_a_jwt_or_a_token_key() {
        let spec: Value = serde_json::from_str(&super::spec().spec()).unwrap();
        assert!(spec["components"]["securitySchemes"]["Bearer"].is_object());
        assert!(spec["components"]["securitySchemes"]["Token"].is_object());
        let operations: Vec<&Value> = spec["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .collect();
        assert_eq!(operations.len(), 6);
        for operation in operations {
            assert_eq!(
                operation["security"],
                serde_json::json!([{"Bearer": []}, {"Token": []}]),
                "{operation}"
            );
        }
    }
}
