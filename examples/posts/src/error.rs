//! `PostsError`: every error an operation returns, in authbridge's shape `{"detail", "code"}`
//! (400s name the `field`), and the renderer for errors raised outside operations.

use authbridge_verify::Rejection;
use poem::{IntoResponse, Response, error::ResponseError, http::StatusCode};
use poem_openapi::{ApiResponse, Object, payload::Json};

#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Human-readable text.
    pub detail: String,
    /// Stable machine code: `invalid`, `not_authenticated`, `permission_denied`…
    pub code: String,
    /// The request field at fault, on a 400.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

#[derive(Debug, ApiResponse)]
pub enum PostsError {
    /// Invalid input: see `field`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No token, or a token that is not valid now.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Only the author may change or delete a post.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The upload is larger than the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// A bug here; `detail` holds an id to find the cause in the logs.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The database or authbridge cannot be reached; retry.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(code: &str, detail: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        detail: detail.into(),
        code: code.into(),
        field: None,
    })
}

impl PostsError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::BadRequest(Json(ErrorBody {
            detail: format!("{field}: {message}"),
            code: "invalid".into(),
            field: Some(field.into()),
        }))
    }

    pub fn forbidden() -> Self {
        Self::Forbidden(body(
            "permission_denied",
            "You do not have permission to perform this action.",
        ))
    }

    pub fn not_found() -> Self {
        Self::NotFound(body("not_found", "Not found."))
    }

    pub fn too_large(limit: usize) -> Self {
        Self::PayloadTooLarge(body(
            "payload_too_large",
            format!("The request body is larger than {limit} bytes."),
        ))
    }

    /// Logs the cause once with a short id and returns only the id.
    pub fn internal(cause: &dyn std::fmt::Debug) -> Self {
        let error_id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        tracing::error!(error_id, error.chain = ?cause, "internal error");
        Self::Internal(body("server_error", format!("Internal error (id {error_id})")))
    }

    pub fn unavailable(cause: &dyn std::fmt::Debug) -> Self {
        tracing::warn!(error.chain = ?cause, "a dependency is unavailable");
        Self::Unavailable(body(
            "service_unavailable",
            "The service is temporarily unavailable; retry.",
        ))
    }
}

impl From<sea_orm::DbErr> for PostsError {
    fn from(e: sea_orm::DbErr) -> Self {
        match e {
            sea_orm::DbErr::ConnectionAcquire(_) | sea_orm::DbErr::Conn(_) => Self::unavailable(&e),
            e => Self::internal(&e),
        }
    }
}

/// Errors raised outside operations (the token extractor, parse errors, unknown paths, 405):
/// the same JSON shape.
pub async fn render(err: poem::Error) -> Response {
    if let Some(rejection) = err.downcast_ref::<Rejection>() {
        return rejection.as_response();
    }
    // An operation's own `PostsError`, already rendered.
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found.".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed.".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large.".to_owned()),
        s if s.is_client_error() => ("invalid", err.to_string()),
        _ => return PostsError::internal(&err).into_response(),
    };
    poem::web::Json(serde_json::json!({ "detail": detail, "code": code }))
        .with_status(status)
        .into_response()
}
