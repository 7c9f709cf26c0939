//! `KauthError`: the `kauth` host's error body, shared by the OAuth and OIDC endpoints and the
//! control API (kakao-api.md 4.4).

use poem::{Response, error::ResponseError, http::StatusCode};
use serde_json::json;

use crate::json_response;

/// A kauth error: `{"error", "error_description"[, "error_code": "KOE…"]}` (kakao-api.md 4.4).
#[derive(Debug)]
pub(super) struct KauthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    code: Option<&'static str>,
}

impl KauthError {
    pub fn new(status: StatusCode, error: &'static str, description: &str, code: Option<&'static str>) -> Self {
        Self {
            status,
            error,
            description: description.to_owned(),
            code,
        }
    }

    pub fn invalid_request(description: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description, None)
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
            None,
        )
    }
}

impl std::fmt::Display for KauthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.error, self.code.unwrap_or_default())
    }
}

impl std::error::Error for KauthError {}

impl ResponseError for KauthError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut body = json!({"error": self.error, "error_description": self.description});
        if let Some(code) = self.code {
            body["error_code"] = json!(code);
        }
        json_response(self.status, &body)
    }
}
