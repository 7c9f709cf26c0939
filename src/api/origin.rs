//! Where a request came from: `ClientIp` (behind trusted proxies), what rate limits count, and
//! `Origin` for the audit trail (client IP, user agent, request id).

use std::net::{IpAddr, SocketAddr};

use poem::{FromRequest, Request, RequestBody};

use crate::{
    audit::Origin,
    ratelimit::{ClientIp, client_ip},
    state::AppState,
};

/// The request id the edge layer chose (or accepted from `x-request-id`).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<'a> FromRequest<'a> for ClientIp {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        // A Unix socket or an unknown peer: all such requests share one budget.
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), SocketAddr::ip);
        Ok(Self(match req.data::<AppState>() {
            Some(state) => client_ip(
                peer,
                req.headers(),
                &state.settings.proxies.trusted,
                state.settings.proxies.forwarded_header,
            ),
            None => peer.to_canonical(),
        }))
    }
}

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
