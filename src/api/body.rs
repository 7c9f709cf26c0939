//! Request bodies: `Body<T>` accepts JSON or a urlencoded form (api.md 1), bounded in size, and
//! turns a bad field into a DRF-style 400 that names it.

use std::{
    any::TypeId,
    collections::HashMap,
    sync::{Arc, LazyLock, RwLock},
};

use http_body_util::BodyExt;
use poem::{Request, RequestBody, Result, error::ReadBodyError, http::StatusCode};
use poem_openapi::{
    payload::{ParsePayload, Payload},
    registry::{MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use crate::{
    error::{ApiError, code},
    state::AppState,
};

/// A request body as JSON or as `application/x-www-form-urlencoded`, same fields either way.
/// The spec lists JSON only: generators given two media types for one schema pick the form
/// (openapi-python-client), so the form is documented in the description instead.
pub enum Body<T> {
    Json(JsonBody<T>),
    Form(FormBody<T>),
}

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        match self {
            Body::Json(JsonBody(v)) | Body::Form(FormBody(v)) => v,
        }
    }
}

impl<'a, T: Type + DeserializeOwned + Send + Sync + 'static> poem_openapi::ApiExtractor<'a> for Body<T> {
    const TYPES: &'static [poem_openapi::ApiExtractorType] = &[poem_openapi::ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        Some(poem_openapi::registry::MetaRequest {
            description: Some("JSON; `application/x-www-form-urlencoded` with the same fields is accepted too."),
            content: vec![poem_openapi::registry::MetaMediaType {
                content_type: <JsonBody<T> as Payload>::CONTENT_TYPE,
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _opts: poem_openapi::ExtractParamOptions<()>,
    ) -> Result<Self> {
        let content_type = request.content_type().unwrap_or_default();
        if <JsonBody<T> as Payload>::check_content_type(content_type) {
            Ok(Body::Json(JsonBody::from_request(request, body).await?))
        } else if <FormBody<T> as Payload>::check_content_type(content_type) {
            Ok(Body::Form(FormBody::from_request(request, body).await?))
        } else {
            Err(poem::Error::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE))
        }
    }
}

pub struct JsonBody<T>(pub T);
pub struct FormBody<T>(pub T);

impl<T: Type + Send> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + Send> Payload for FormBody<T> {
    const CONTENT_TYPE: &'static str = "application/x-www-form-urlencoded";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application" && m.subtype() == "x-www-form-urlencoded")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned + 'static> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let bytes = read_limited(request, body).await?;
        let value = parse_json(&bytes)?;
        let limits = limits_of::<T>();
        if !limits.is_empty() {
            // The body parsed as T, so it is a JSON object.
            let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).unwrap_or_default();
            check_lengths(
                &limits,
                fields.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))),
            )?;
        }
        Ok(Self(value))
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    // The path of a bad field is tracked only once parsing failed: tracking it on every body
    // cost ~4% of `token/verify`.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => Ok(value),
        Err(e) if e.inner().classify() != serde_json::error::Category::Data => {
            Err(ApiError::bad_request(code::PARSE_ERROR, format!("JSON parse error - {}", e.inner())).into())
        }
        Err(e) => Err(field_error(&e.path().to_string(), &e.inner().to_string()).into()),
    }
}

impl<T: Type + DeserializeOwned + 'static> ParsePayload for FormBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let bytes = read_limited(request, body).await?;
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&bytes));
        let value = serde_path_to_error::deserialize(de)
            .map_err(|e| field_error(&e.path().to_string(), &e.inner().to_string()))?;
        let limits = limits_of::<T>();
        if !limits.is_empty() {
            let pairs: Vec<_> = form_urlencoded::parse(&bytes).collect();
            check_lengths(&limits, pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))?;
        }
        Ok(Self(value))
    }
}

/// A string field's `minLength`/`maxLength` as the spec declares them (`#[oai(validator(…))]`).
/// serde parses the bodies, so poem-openapi's own validators never run: these are checked here.
#[derive(Debug, PartialEq)]
struct LengthLimit {
    field: &'static str,
    min: Option<usize>,
    max: Option<usize>,
}

static LIMITS: LazyLock<RwLock<HashMap<TypeId, Arc<[LengthLimit]>>>> = LazyLock::new(Default::default);

/// The length limits of `T`'s fields, read from its schema once per type.
fn limits_of<T: Type + 'static>() -> Arc<[LengthLimit]> {
    let id = TypeId::of::<T>();
    if let Some(limits) = LIMITS.read().unwrap_or_else(|e| e.into_inner()).get(&id) {
        return limits.clone();
    }
    let mut registry = Registry::new();
    T::register(&mut registry);
    let schema = match T::schema_ref() {
        MetaSchemaRef::Inline(schema) => Some(*schema),
        MetaSchemaRef::Reference(name) => registry.schemas.remove(&name),
    };
    let limits: Arc<[LengthLimit]> = schema
        .map(|s| s.properties)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(field, property)| match property {
            MetaSchemaRef::Inline(p) if p.min_length.is_some() || p.max_length.is_some() => Some(LengthLimit {
                field,
                min: p.min_length,
                max: p.max_length,
            }),
            _ => None,
        })
        .collect();
    LIMITS
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, limits.clone());
    limits
}

/// DRF's CharField texts; lengths in characters, as JSON Schema and Django count them.
fn check_lengths<'a>(limits: &[LengthLimit], fields: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), ApiError> {
    for (name, value) in fields {
        let Some(limit) = limits.iter().find(|l| l.field == name) else {
            continue;
        };
        let length = value.chars().count();
        if let Some(max) = limit.max.filter(|max| length > *max) {
            return Err(ApiError::field(
                code::INVALID,
                limit.field,
                format!("Ensure this field has no more than {max} characters."),
            ));
        }
        if let Some(min) = limit.min.filter(|min| length < *min) {
            let message = if length == 0 {
                "This field may not be blank.".to_owned()
            } else {
                format!("Ensure this field has at least {min} characters.")
            };
            return Err(ApiError::field(code::INVALID, limit.field, message));
        }
    }
    Ok(())
}

/// The whole body, refused with 413 past `max_body_bytes` (at once when `Content-Length` says so).
/// Collected as the chunks hyper hands over: a body that arrives in one chunk is not copied.
/// (poem's `into_bytes_limit` reads through a zeroed 4 KiB buffer into a second one: ~8% of
/// the CPU of `token/verify`.)
async fn read_limited(request: &Request, body: &mut RequestBody) -> Result<bytes::Bytes> {
    let limit = request
        .data::<AppState>()
        .map(|s| s.settings.server.max_body_bytes)
        .unwrap_or(64 * 1024);
    let body: http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error> = body.take()?.into();
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE))
        }
        Err(e) => Err(poem::Error::from(ReadBodyError::Io(std::io::Error::other(e)))),
    }
}

/// serde names a missing field only in its message; anything else is named by its path.
fn field_error(path: &str, message: &str) -> ApiError {
    let message = message.split(" at line ").next().unwrap_or(message);
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.trim_end_matches('`');
        return ApiError::field(code::INVALID, field, "This field is required.");
    }
    if path.is_empty() || path == "." {
        return ApiError::field(code::INVALID, "non_field_errors", format!("Invalid data: {message}."));
    }
    ApiError::field(code::INVALID, path, format!("Invalid value: {message}."))
}

/// For optional fields: absent means `None`, but an explicit `null` is refused ("This field may
/// not be null.", as DRF), since the schema does not allow it.
pub fn not_null<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A body that may be absent altogether (no `Content-Type`): dj-rest-auth's logout is posted
/// empty by clients that authenticate with a `Token` header.
pub struct MaybeBody<T>(pub Option<T>);

impl<'a, T: Type + DeserializeOwned + Send + Sync + 'static> poem_openapi::ApiExtractor<'a> for MaybeBody<T> {
    const TYPES: &'static [poem_openapi::ApiExtractorType] = &[poem_openapi::ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Body<T> as poem_openapi::ApiExtractor>::register(registry);
    }

    fn request_meta() -> Option<poem_openapi::registry::MetaRequest> {
        <Body<T> as poem_openapi::ApiExtractor>::request_meta().map(|mut meta| {
            meta.required = false;
            meta
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        opts: poem_openapi::ExtractParamOptions<()>,
    ) -> Result<Self> {
        if request.content_type().is_none() {
            return Ok(Self(None));
        }
        let parsed = <Body<T> as poem_openapi::ApiExtractor>::from_request(request, body, opts).await?;
        Ok(Self(Some(parsed.into_inner())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(e: ApiError) -> Vec<(String, Vec<String>)> {
        match e {
            ApiError::BadRequest(b) => b.0.fields.into_iter().collect(),
            _ => panic!("not a 400"),
        }
    }

    #[test]
    fn a_missing_field_is_named_with_drf_text() {
        let f = fields(field_error(".", "missing field `access_token` at line 1 column 2"));
        assert_eq!(
            f,
            vec![("access_token".to_owned(), vec!["This field is required.".to_owned()])]
        );
    }

    #[test]
    fn a_wrong_type_names_the_path() {
        let f = fields(field_error(
            "access_token",
            "invalid type: integer `5`, expected a string at line 1 column 19",
        ));
        assert_eq!(f[0].0, "access_token");
        assert!(f[0].1[0].contains("expected a string"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_non_field_error() {
        let f = fields(field_error(".", "invalid type: sequence, expected struct X"));
        assert_eq!(f[0].0, "non_field_errors");
    }
}
