//! Probes and the JWKS: no authentication, no body.

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::ApiTags;
use crate::{error::ApiError, state::AppState, store};

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

/// One public key (RFC 8037 OKP, Ed25519).
#[derive(Debug, Object)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id, as in the tokens' `kid` header.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[oai(rename = "use")]
    pub use_: String,
}

/// RFC 7517 JSON Web Key Set.
#[derive(Debug, Object)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

#[derive(ApiResponse)]
pub enum JwksReply {
    /// The public keys that verify our tokens: the signing key and retired keys whose tokens may
    /// still be alive. Empty with HS256.
    #[oai(status = 200)]
    Ok(Json<JwkSet>),
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
        store::ping(&state.db).await.map_err(|e| ApiError::unavailable(&e))?;
        Ok(ok())
    }

    /// Public signing keys (JWKS)
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "jwks",
        tag = "ApiTags::Tokens"
    )]
    async fn jwks(&self, state: poem::web::Data<&AppState>) -> JwksReply {
        let keys = state.tokens.keys().public_keys().into_iter().map(|(kid, x)| Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            kid,
            alg: "EdDSA".into(),
            use_: "sig".into(),
        });
        JwksReply::Ok(Json(JwkSet { keys: keys.collect() }))
    }
}
