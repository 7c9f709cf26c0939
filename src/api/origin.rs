//! `Origin`: where a request came from, for the audit trail (client IP behind trusted proxies,
//! user agent, request id).

use poem::{FromRequest, Request, RequestBody};

use crate::{audit::Origin, ratelimit::ClientIp};

/// The request id the edge layer chose (or accepted from `x-request-id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<'a> FromRequest<'a> for Origin {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let client = ClientIp::from_request(req, body).await?;
        Ok(Origin {
            client_ip: Some(client.0.to_string()),
            user_agent: req
                .headers()
                .get(poem::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
        })
    }
}
