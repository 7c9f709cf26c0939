//! The OpenAPI document: what `/openapi.json` and `/docs` serve, `authbridge openapi` prints and
//! `openapi/openapi.json` holds.
//!
//! poem-openapi drops trailing slashes from operation paths, so operations are routed without
//! them; `add_django_slashes` puts them back in the document (Django clients and generated SDKs
//! then call the same URLs) and the router accepts both forms.

use std::sync::LazyLock;

use poem_openapi::OpenApiService;
use serde_json::Value;

use super::{Apis, apis};

/// Path prefixes of Django-style endpoints, whose paths end with `/` (api.md 1).
pub const DJANGO_PREFIXES: [&str; 6] = [
    "/accounts/",
    "/rest-auth/",
    "/api/",
    "/api-jwt-auth",
    "/api-token-auth",
    "/admin/",
];

pub fn is_django_path(path: &str) -> bool {
    DJANGO_PREFIXES.iter().any(|p| path.starts_with(p))
}

pub type ApiService = OpenApiService<Apis, ()>;

pub fn service() -> ApiService {
    OpenApiService::new(apis(), "authbridge", env!("CARGO_PKG_VERSION")).description(
        "Turns a social login (Kakao first) into this service's own JWTs. Wire-compatible with \
         dj-rest-auth + django-allauth + djangorestframework-simplejwt: every API path ends with `/` \
         (the same path without it is answered too). Errors are JSON `{detail, code}`; 400s add \
         DRF-style field errors.",
    )
}

/// The document as served, with Django's trailing slashes. Made once per process, at its first
/// use (`/openapi.json`, `/docs`, the routes' templates), not at start.
pub fn spec_json() -> &'static str {
    static SPEC: LazyLock<String> = LazyLock::new(|| {
        let mut spec: Value = serde_json::from_str(&service().spec()).expect("poem-openapi emits valid JSON");
        add_django_slashes(&mut spec);
        serde_json::to_string_pretty(&spec).expect("a Value serializes")
    });
    &SPEC
}

/// Swagger UI with the document above embedded (~3 MB with the UI's bundle), made once at its
/// first request.
pub fn swagger_html() -> &'static str {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        let service = service();
        service.swagger_ui_html().replacen(&service.spec(), spec_json(), 1)
    });
    &PAGE
}

fn add_django_slashes(spec: &mut Value) {
    if let Some(Value::Object(paths)) = spec.get_mut("paths") {
        *paths = std::mem::take(paths)
            .into_iter()
            .map(|(path, item)| {
                if is_django_path(&path) && !path.ends_with('/') {
                    (format!("{path}/"), item)
                } else {
                    (path, item)
                }
            })
            .collect();
    }
}

/// Path templates as the served document shows them (Django's slash included), by operation id.
static ROUTES: LazyLock<std::collections::HashMap<String, String>> = LazyLock::new(|| {
    let spec: Value = serde_json::from_str(spec_json()).unwrap_or_default();
    let mut routes = std::collections::HashMap::new();
    for (path, item) in spec["paths"].as_object().into_iter().flatten() {
        for operation in item.as_object().into_iter().flat_map(|ops| ops.values()) {
            if let Some(id) = operation["operationId"].as_str() {
                routes.insert(id.to_owned(), path.clone());
            }
        }
    }
    routes
});

/// The path template of an operation (`/rest-auth/socialaccounts/{id}/disconnect/`): a bounded
/// label for metrics, without the ids a raw path carries.
pub fn route_of(operation_id: &str) -> Option<&'static str> {
    ROUTES.get(operation_id).map(String::as_str)
}

/// Path templates of the document with their methods, for the `Allow` header of a 405.
static ALLOWED: std::sync::LazyLock<Vec<(Vec<String>, String)>> = std::sync::LazyLock::new(|| {
    let spec: Value = serde_json::from_str(&service().spec()).unwrap_or_default();
    let Some(paths) = spec["paths"].as_object() else {
        return Vec::new();
    };
    paths
        .iter()
        .map(|(path, item)| {
            let methods: Vec<String> = item
                .as_object()
                .map(|ops| ops.keys().map(|m| m.to_uppercase()).collect())
                .unwrap_or_default();
            (segments(path), methods.join(", "))
        })
        .collect()
});

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/').split('/').map(str::to_owned).collect()
}

/// The methods the document allows on `path` (`{param}` segments match anything).
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let wanted = segments(path);
    ALLOWED
        .iter()
        .find(|(template, _)| {
            template.len() == wanted.len()
                && template
                    .iter()
                    .zip(&wanted)
                    .all(|(t, w)| t == w || (t.starts_with('{') && t.ends_with('}')))
        })
        .map(|(_, methods)| methods.as_str())
}
