//! What browsers need on every answer: CORS for the configured origins (preflights are answered
//! here) and the security headers. Clients that send no `Origin` (mobile apps) only see the
//! headers. Decides nothing about who the caller is.

use poem::{
    Request, Response,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
};

use crate::config::BrowserSettings;

/// Headers a browser script may send cross-origin, besides the CORS-safelisted ones.
const ALLOWED_HEADERS: [&str; 4] = ["authorization", "content-type", "x-csrftoken", "x-request-id"];
/// Headers a browser script may read cross-origin, besides the safelisted ones.
const EXPOSED_HEADERS: &str = "x-request-id, retry-after, www-authenticate";
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";

/// Built once from the settings; every response passes through `finish`.
pub struct Browser {
    cors: Option<Cors>,
    hsts: Option<HeaderValue>,
}

struct Cors {
    origins: Vec<HeaderValue>,
    any_origin: bool,
    credentials: bool,
    allow_headers: HeaderValue,
    max_age: HeaderValue,
}

/// `Origin` of a request, kept only when CORS is configured.
pub struct Origin(Option<HeaderValue>);

impl Browser {
    /// `auth_header` is the configured credentials header, which preflights must allow.
    pub fn from_settings(settings: &BrowserSettings, auth_header: &str) -> Self {
        let cors = (!settings.cors_allowed_origins.is_empty()).then(|| {
            let mut headers: Vec<String> = ALLOWED_HEADERS.iter().map(|h| (*h).to_owned()).collect();
            let auth_header = auth_header.to_ascii_lowercase();
            if !headers.contains(&auth_header) {
                headers.push(auth_header);
            }
            Cors {
                origins: settings
                    .cors_allowed_origins
                    .iter()
                    .filter(|o| o.as_str() != "*")
                    .filter_map(|o| HeaderValue::from_str(o).ok())
                    .collect(),
                any_origin: settings.cors_allowed_origins.iter().any(|o| o == "*"),
                credentials: settings.cors_allow_credentials,
                allow_headers: HeaderValue::from_str(&headers.join(", ")).unwrap_or(HeaderValue::from_static("")),
                max_age: HeaderValue::from(settings.cors_max_age.as_secs()),
            }
        });
        let hsts = settings
            .hsts_max_age
            .and_then(|age| HeaderValue::from_str(&format!("max-age={}", age.as_secs())).ok());
        Self { cors, hsts }
    }

    /// The request's `Origin`, read before the request moves on.
    pub fn origin(&self, req: &Request) -> Origin {
        Origin(self.cors.as_ref().and(req.headers().get(header::ORIGIN).cloned()))
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) when CORS is configured; `None` passes the request on.
    /// Any origin gets a 204, but only an allowed one gets the `Access-Control-Allow-*` headers
    /// that let the browser go on: a refused preflight is the browser's to report.
    pub fn preflight(&self, req: &Request, origin: &Origin) -> Option<Response> {
        let cors = self.cors.as_ref()?;
        let origin = origin.0.as_ref()?;
        if req.method() != Method::OPTIONS || !req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
            return None;
        }
        let mut response = Response::builder().status(StatusCode::NO_CONTENT).finish();
        let headers = response.headers_mut();
        // `finish` adds `Vary: Origin` to this answer as to every other.
        headers.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Method"));
        headers.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
        if cors.allow_origin(origin, headers) {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOWED_METHODS),
            );
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, cors.allow_headers.clone());
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, cors.max_age.clone());
        }
        Some(response)
    }

    /// Adds the security headers, and the CORS headers for an allowed origin.
    pub fn finish(&self, origin: &Origin, response: &mut Response) {
        let headers = response.headers_mut();
        if let Some(cors) = &self.cors {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = &origin.0
                && cors.allow_origin(origin, headers)
            {
                headers.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSED_HEADERS),
                );
            }
        }
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // RFC 6749 5.1: answers carrying tokens must not be stored by any cache. Nearly every
        // answer here is per user, so all are `no-store` unless a handler chose otherwise.
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        if let Some(hsts) = &self.hsts {
            headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
    }
}

impl Cors {
    /// Sets `Access-Control-Allow-Origin` (and `-Credentials`) when `origin` may call; says so.
    fn allow_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) -> bool {
        if self.origins.contains(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            // Credentials only ever go with an origin named in the settings (never `*`).
            if self.credentials {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            true
        } else if self.any_origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            true
        } else {
            false
        }
    }
}
