//! Probes and the JWKS: no authentication, no body.

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{error::ApiError, state::AppState};

pub struct MetaApi;

#[derive(Debug, Object)]
pub struct StatusResponse {
    /// `ok`.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum StatusReply {
    #[oai(status = 200)]
    Ok(Json<StatusResponse>),
}

fn ok() -> StatusReply {
    StatusReply::Ok(Json(StatusResponse { status: "ok".into() }))
}

#[OpenApi(tag = "ApiTags::Operations")]
impl MetaApi {
    /// Liveness: the process is up
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> StatusReply {
        ok()
    }

    /// Readiness: the database answers
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: poem::web::Data<&AppState>) -> Result<StatusReply, ApiError> {
        state.cached.ping().await.map_err(|e| ApiError::unavailable(&e))?;
        Ok(ok())
    }
}
