//! `ApiError`: the one error type handlers return, mapped to api.md's JSON bodies, and the
//! `From` impls that decide each failure's status in one place.

use std::{borrow::Cow, collections::BTreeMap};

use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    payload::Json,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde_json::Value;

use crate::{
    accounts::AccountError, mail::MailError, providers::ProviderError, ratelimit::Throttled, store::StoreError,
    tokens::TokenError,
};

/// Stable machine codes of api.md; clients switch on these (`crate::codes`).
pub use crate::codes as code;

/// Error body of every non-400 error.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct ErrorBody {
    /// Human-readable text.
    pub detail: String,
    /// Stable machine code, such as `token_not_valid`.
    pub code: String,
}

/// 400 body: `detail` and `code`, plus DRF-style field errors (`{"email": ["…"]}`) and
/// `non_field_errors` beside them.
#[derive(Debug, Clone)]
pub struct ValidationErrorBody {
    pub detail: String,
    pub code: String,
    pub fields: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is invalid: see `code` and the field errors.
    #[oai(status = 400)]
    BadRequest(Json<ValidationErrorBody>),
    /// Missing, invalid or expired credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// The user is disabled or may not do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Not found, or the provider is not configured for this site.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The body is larger than the configured limit.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Too many attempts from this client or for this account; retry after `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// A bug on our side; `detail` holds an id to find it in the logs.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// The identity provider failed or could not be reached.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// The database is unreachable or busy; retry.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
    /// The identity provider did not answer in time.
    #[oai(status = 504)]
    GatewayTimeout(Json<ErrorBody>),
}

fn body(code: &str, detail: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        detail: detail.into(),
        code: code.into(),
    })
}

impl ApiError {
    /// A 400 with one field error (`field` = `non_field_errors` for the body as a whole).
    pub fn field(code: &str, field: &str, message: impl Into<String>) -> Self {
        let mut message = message.into();
        let mut field = field;
        // A body field named like a key of the error body itself cannot be listed beside them.
        if field == "code" || field == "detail" {
            message = format!("{field}: {message}");
            field = "non_field_errors";
        }
        let detail = if field == "non_field_errors" {
            message.clone()
        } else {
            format!("{field}: {message}")
        };
        Self::BadRequest(Json(ValidationErrorBody {
            detail,
            code: code.into(),
            fields: BTreeMap::from([(field.to_owned(), vec![message])]),
        }))
    }

    /// A 400 without field errors.
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::BadRequest(Json(ValidationErrorBody {
            detail: detail.into(),
            code: code.into(),
            fields: BTreeMap::new(),
        }))
    }

    pub fn unauthorized(code: &str, detail: impl Into<String>) -> Self {
        Self::Unauthorized(body(code, detail), r#"Bearer realm="api""#.into())
    }

    /// A resource server's client id or secret is missing or wrong (RFC 6749 5.2 `invalid_client`).
    pub fn invalid_client() -> Self {
        Self::Unauthorized(
            body(code::INVALID_CLIENT, "Client authentication failed."),
            r#"Basic realm="authbridge""#.into(),
        )
    }

    pub fn token_not_valid() -> Self {
        Self::unauthorized(code::TOKEN_NOT_VALID, "Token is invalid or expired")
    }

    pub fn forbidden(code: &str, detail: impl Into<String>) -> Self {
        Self::Forbidden(body(code, detail))
    }

    pub fn not_found(code: &str, detail: impl Into<String>) -> Self {
        Self::NotFound(body(code, detail))
    }

    /// The body's machine code (`token_not_valid`, `throttled`…).
    pub fn code(&self) -> &str {
        match self {
            Self::BadRequest(Json(b)) => &b.code,
            Self::Unauthorized(Json(b), _)
            | Self::TooManyRequests(Json(b), _)
            | Self::Forbidden(Json(b))
            | Self::NotFound(Json(b))
            | Self::PayloadTooLarge(Json(b))
            | Self::Internal(Json(b))
            | Self::BadGateway(Json(b))
            | Self::Unavailable(Json(b))
            | Self::GatewayTimeout(Json(b)) => &b.code,
        }
    }

    /// Logs the cause once with a short id and returns only the id to the client.
    pub fn internal(cause: &dyn std::fmt::Debug) -> Self {
        let error_id = &uuid::Uuid::new_v4().simple().to_string()[..12];
        tracing::error!(error_id, error.chain = ?cause, "internal error");
        Self::Internal(body(code::SERVER_ERROR, format!("Internal error (id {error_id})")))
    }

    /// Logs the cause once (warn: the outside world misbehaves) and answers 503.
    pub fn unavailable(cause: &dyn std::fmt::Debug) -> Self {
        tracing::warn!(error.chain = ?cause, "database unavailable");
        Self::Unavailable(body(
            code::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable; retry.",
        ))
    }
}

impl From<ProviderError> for ApiError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::InvalidToken => {
                ApiError::field(code::INVALID_PROVIDER_TOKEN, "non_field_errors", "Incorrect value")
            }
            ProviderError::AppMismatch => ApiError::field(
                code::PROVIDER_APP_MISMATCH,
                "non_field_errors",
                "The token was issued to another application.",
            ),
            ProviderError::Timeout => ApiError::GatewayTimeout(body(
                code::PROVIDER_TIMEOUT,
                "The identity provider did not answer in time.",
            )),
            ProviderError::CodeRejected(message) => {
                ApiError::field(code::INVALID_PROVIDER_CODE, "non_field_errors", message)
            }
            ProviderError::IdTokenMismatch => ApiError::field(
                code::INVALID_PROVIDER_TOKEN,
                "non_field_errors",
                "The id_token and the access_token belong to different accounts.",
            ),
            ProviderError::Misconfigured(_) => ApiError::BadGateway(body(
                code::PROVIDER_MISCONFIGURED,
                "The identity provider refused this server's credentials.",
            )),
            ProviderError::Unavailable(_) => ApiError::BadGateway(body(
                code::PROVIDER_UNAVAILABLE,
                "The identity provider is unavailable.",
            )),
        }
    }
}

impl From<Throttled> for ApiError {
    fn from(e: Throttled) -> Self {
        // Whole seconds, rounded up: a client that waits that long is let in.
        let secs = e.retry_after.as_secs() + u64::from(e.retry_after.subsec_nanos() > 0);
        let secs = secs.max(1);
        // DRF's `Throttled` wording, so clients that show `detail` read the same.
        let unit = if secs == 1 { "second" } else { "seconds" };
        ApiError::TooManyRequests(
            body(
                code::THROTTLED,
                format!("Request was throttled. Expected available in {secs} {unit}."),
            ),
            secs,
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::EmailInUse => ApiError::field(
                code::EMAIL_IN_USE,
                "non_field_errors",
                "User is already registered with this e-mail address.",
            ),
            StoreError::NotFound(what) => ApiError::not_found(code::NOT_FOUND, format!("{what} not found.")),
            // Lock contention is the database's weather, not our bug: ask for a retry.
            StoreError::Contended(_) | StoreError::Unavailable(_) => ApiError::unavailable(&e),
            StoreError::Taken { field } => ApiError::field(code::INVALID, field, "This value is already taken."),
            StoreError::Db(_) | StoreError::Corrupt(_) => ApiError::internal(&e),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid | TokenError::Expired | TokenError::WrongType => ApiError::token_not_valid(),
            TokenError::Revoked | TokenError::ReuseDetected { .. } => {
                ApiError::unauthorized(code::TOKEN_NOT_VALID, "Token is blacklisted")
            }
            TokenError::UserGone => ApiError::unauthorized(code::TOKEN_NOT_VALID, "User not found"),
            TokenError::UserInactive => ApiError::unauthorized(code::USER_INACTIVE, "User is inactive"),
            TokenError::Store(e) => e.into(),
            TokenError::Signing(_) => ApiError::internal(&e),
        }
    }
}

impl From<MailError> for ApiError {
    fn from(e: MailError) -> Self {
        let detail = match e {
            MailError::Recipient => {
                return ApiError::field(code::INVALID, "email", "Enter a valid email address.");
            }
            MailError::BadSender => "Mail cannot be sent: the server's mail configuration is broken.",
            MailError::NotConfigured => "Mail cannot be sent: mail is not configured on this server.",
            MailError::QueueFull | MailError::Transport(_) => "Mail cannot be sent right now; retry later.",
        };
        ApiError::Unavailable(body(code::SERVICE_UNAVAILABLE, detail))
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid { field, message } => ApiError::field(code::INVALID, field, message),
            AccountError::WeakPassword { field, problems } => {
                let mut error = ApiError::field(code::INVALID, field, problems[0].clone());
                if let ApiError::BadRequest(body) = &mut error {
                    body.0.fields.insert(field.into(), problems);
                }
                error
            }
            AccountError::EmailInUse => ApiError::field(
                code::EMAIL_IN_USE,
                "email",
                "A user is already registered with this e-mail address.",
            ),
            AccountError::InvalidCredentials => ApiError::field(
                code::INVALID_CREDENTIALS,
                "non_field_errors",
                "Unable to log in with provided credentials.",
            ),
            AccountError::EmailNotVerified => {
                ApiError::field(code::EMAIL_NOT_VERIFIED, "non_field_errors", "E-mail is not verified.")
            }
            AccountError::UserInactive => ApiError::forbidden(code::USER_INACTIVE, "User account is disabled."),
            AccountError::ProviderNotConfigured => ApiError::not_found(
                code::PROVIDER_NOT_CONFIGURED,
                "This provider is not configured for this site.",
            ),
            AccountError::NoSuchSocialAccount => {
                ApiError::not_found(code::NOT_FOUND, "No such social account of yours.")
            }
            AccountError::LastLoginMethod => ApiError::field(
                code::LAST_LOGIN_METHOD,
                "non_field_errors",
                "Your account has no password set up: this is your last way to sign in.",
            ),
            AccountError::BadAdminKey => ApiError::unauthorized(code::NOT_AUTHENTICATED, "Invalid admin key."),
            AccountError::UnsignedNotice => ApiError::unauthorized(
                code::NOT_AUTHENTICATED,
                "Not a notification signed by the provider for this server.",
            ),
            AccountError::Provider(e) => e.into(),
            AccountError::Store(e) => e.into(),
            AccountError::Token(e) => e.into(),
            AccountError::Mail(e) => e.into(),
            AccountError::Throttled(e) => e.into(),
            AccountError::Hashing(e) => ApiError::internal(&e),
        }
    }
}

/// Turns errors raised outside operations (routing, body parsing, size limits) into JSON bodies.
/// Installed with `catch_all_error` on the whole app.
pub async fn render_poem_error(err: poem::Error) -> Response {
    if err.is_from_response() {
        return err.into_response();
    }
    // The operation that refused the request, kept for the metrics' route label.
    let operation = err.data::<poem_openapi::OperationId>().cloned();
    let mut response = render(err);
    if let Some(operation) = operation {
        response.extensions_mut().insert(operation);
    }
    response
}

fn render(err: poem::Error) -> Response {
    let status = err.status();
    let api_error = match status {
        StatusCode::NOT_FOUND => ApiError::not_found(code::NOT_FOUND, "Not found."),
        StatusCode::METHOD_NOT_ALLOWED => {
            let resp = Response::builder().status(status).content_type("application/json");
            return resp.body(
                serde_json::json!({"detail": "Method not allowed.", "code": code::METHOD_NOT_ALLOWED}).to_string(),
            );
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge(body(code::PAYLOAD_TOO_LARGE, "Request body is too large."))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::bad_request(
            code::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type: send application/json or application/x-www-form-urlencoded.",
        ),
        StatusCode::UNAUTHORIZED => {
            ApiError::unauthorized(code::NOT_AUTHENTICATED, "Authentication credentials were not provided.")
        }
        s if s.is_client_error() => ApiError::bad_request(code::INVALID, err.to_string()),
        _ => ApiError::internal(&err),
    };
    api_error.into_response()
}

impl Type for ValidationErrorBody {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "ValidationErrorBody".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(Self::name().into_owned())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(Self::name().into_owned(), |_| MetaSchema {
            description: Some(
                "DRF-style 400 body: `detail`, `code`, and for each invalid field its name mapped to a list \
                 of messages (`non_field_errors` for the body as a whole).",
            ),
            required: vec!["detail", "code"],
            properties: vec![
                ("detail", String::schema_ref()),
                ("code", String::schema_ref()),
                ("non_field_errors", Vec::<String>::schema_ref()),
            ],
            additional_properties: Some(Box::new(Vec::<String>::schema_ref())),
            ..MetaSchema::new("object")
        });
    }

    fn as_raw_value(&self) -> Option<&Self> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl ToJSON for ValidationErrorBody {
    fn to_json(&self) -> Option<Value> {
        let mut map = serde_json::Map::new();
        for (field, messages) in &self.fields {
            map.insert(field.clone(), Value::from(messages.clone()));
        }
        map.insert("detail".into(), Value::from(self.detail.clone()));
        map.insert("code".into(), Value::from(self.code.clone()));
        Some(Value::Object(map))
    }
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        Self {
            detail: "Token is invalid or expired".into(),
            code: "token_not_valid".into(),
        }
    }
}
