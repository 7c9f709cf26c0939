//! `Authenticated`: a poem extractor for `Authorization: Bearer <access JWT>` (or `JWT <…>`),
//! verified by the `Verifier` put in the route's `.data()`. Failures answer as authbridge does:
//! 401 `{"detail", "code"}` with `WWW-Authenticate: Bearer realm="api"`.

use poem::{
    FromRequest, IntoResponse, Request, RequestBody, Response,
    http::{StatusCode, header},
};

use crate::{Claims, Verifier, VerifyError};

/// The verified caller of a request.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// The credential of `Authorization: <scheme> <credential>`, with the scheme as sent.
pub fn credential(req: &Request) -> Option<(&str, &str)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credential) = value.split_once(' ')?;
    Some((scheme, credential.trim()))
}

/// A 401 or 503 in authbridge's error shape.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct Rejection {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: &'static str,
}

impl Rejection {
    pub fn not_authenticated() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "not_authenticated",
            detail: "Authentication credentials were not provided.",
        }
    }

    pub fn token_not_valid() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "token_not_valid",
            detail: "Token is invalid or expired",
        }
    }

    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "service_unavailable",
            detail: "The token cannot be checked now; retry.",
        }
    }
}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::KeysUnavailable => Self::unavailable(),
            VerifyError::Invalid | VerifyError::Expired | VerifyError::WrongType => Self::token_not_valid(),
        }
    }
}

impl poem::error::ResponseError for Rejection {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let body = serde_json::json!({ "detail": self.detail, "code": self.code });
        let mut response = poem::web::Json(body).with_status(self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Bearer realm="api""#),
            );
        }
        response
    }
}

impl<'a> FromRequest<'a> for Authenticated {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let verifier = req.data::<Verifier>().ok_or_else(|| {
            poem::Error::from_string("Verifier missing from .data()", StatusCode::INTERNAL_SERVER_ERROR)
        })?;
        let Some((scheme, token)) = credential(req) else {
            return Err(Rejection::not_authenticated().into());
        };
        if scheme != "Bearer" && scheme != "JWT" {
            return Err(Rejection::not_authenticated().into());
        }
        let claims = verifier.verify(token).await.map_err(Rejection::from)?;
        Ok(Self(claims))
    }
}
