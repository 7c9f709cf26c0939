//! Admin: signing keys (list, rotate, revoke). A change takes effect on this instance at once and
//! on the others within `key_reload_interval`.

use chrono::Utc;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{record, staff};
use crate::{
    api::{ApiTags, CurrentUser, social::rfc3339},
    audit::{Entry, Origin, event},
    config::JwtAlgorithm,
    error::{ApiError, code},
    state::AppState,
    store::StoreError,
    tokens::{KeyState, TokenError},
};

pub struct AdminKeysApi;

/// A signing key (public part and state only).
#[derive(Debug, Object)]
pub struct SigningKeyResponse {
    pub kid: String,
    /// `signing`, `retired` (still verifying its tokens), `expired` or `revoked`.
    pub state: String,
    pub created_at: String,
    #[oai(skip_serializing_if_is_none)]
    pub retired_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<String>,
}

/// The kid a rotation or revocation made sign.
#[derive(Debug, Object)]
pub struct KeyChangeResponse {
    /// The key that signs from now on.
    pub signing_kid: String,
}

#[derive(ApiResponse)]
pub enum SigningKeyListReply {
    #[oai(status = 200)]
    Ok(Json<Vec<SigningKeyResponse>>),
}

#[derive(ApiResponse)]
pub enum KeyChangeReply {
    #[oai(status = 200)]
    Ok(Json<KeyChangeResponse>),
}

fn eddsa_only(state: &AppState) -> Result<(), ApiError> {
    match state.settings.jwt.algorithm {
        JwtAlgorithm::EdDSA => Ok(()),
        JwtAlgorithm::HS256 => Err(ApiError::bad_request(
            code::INVALID,
            "Signing keys apply to EdDSA; with HS256 change AUTHBRIDGE_SIGNING_KEY instead.",
        )),
    }
}

/// The newest active kid, after reloading this instance's key ring.
async fn reload(state: &AppState) -> Result<String, ApiError> {
    state.tokens.keys().reload().await?;
    let keys = state.tokens.keys().list_all().await?;
    let now = Utc::now();
    let signing = keys
        .iter()
        .rev()
        .find(|k| KeyState::of(k, &state.settings.jwt, now) == KeyState::Signing);
    Ok(signing.map(|k| k.kid.clone()).unwrap_or_default())
}

#[OpenApi(tag = "ApiTags::Admin", prefix_path = "/admin/api")]
impl AdminKeysApi {
    /// List signing keys
    #[oai(path = "/keys/", method = "get", operation_id = "admin_list_keys")]
    async fn list(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
    ) -> Result<SigningKeyListReply, ApiError> {
        staff(&caller)?;
        let now = Utc::now();
        let keys = state.tokens.keys().list_all().await?;
        Ok(SigningKeyListReply::Ok(Json(
            keys.into_iter()
                .map(|k| SigningKeyResponse {
                    state: KeyState::of(&k, &state.settings.jwt, now).name().into(),
                    kid: k.kid,
                    created_at: rfc3339(k.created_at),
                    retired_at: k.retired_at.map(rfc3339),
                    revoked_at: k.revoked_at.map(rfc3339),
                })
                .collect(),
        )))
    }

    /// Rotate the signing key
    ///
    /// As `authbridge keys rotate`: a new key signs; older keys keep verifying their tokens.
    #[oai(path = "/keys/rotate/", method = "post", operation_id = "admin_rotate_key")]
    async fn rotate(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
    ) -> Result<KeyChangeReply, ApiError> {
        let admin = staff(&caller)?;
        eddsa_only(&state)?;
        let kid = crate::tokens::rotate_signing_key(&state.db).await?;
        reload(&state).await?;
        record(
            &state,
            &origin,
            admin,
            Entry::new(event::KEY_ROTATED).detail(serde_json::json!({"kid": kid})),
        );
        Ok(KeyChangeReply::Ok(Json(KeyChangeResponse { signing_kid: kid })))
    }

    /// Revoke a signing key (it leaked)
    ///
    /// As `authbridge keys revoke`: every token it signed is refused at once here and within the
    /// key-reload interval elsewhere; a signing key is replaced by a new one first.
    #[oai(path = "/keys/:kid/revoke/", method = "post", operation_id = "admin_revoke_key")]
    async fn revoke(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        kid: Path<String>,
    ) -> Result<KeyChangeReply, ApiError> {
        let admin = staff(&caller)?;
        eddsa_only(&state)?;
        crate::tokens::revoke_signing_key(&state.db, &kid)
            .await
            .map_err(|e| match e {
                TokenError::Store(StoreError::NotFound(_)) => ApiError::not_found(code::NOT_FOUND, "No such key."),
                e => e.into(),
            })?;
        let signing_kid = reload(&state).await?;
        record(
            &state,
            &origin,
            admin,
            Entry::new(event::KEY_REVOKED).detail(serde_json::json!({"kid": *kid})),
        );
        Ok(KeyChangeReply::Ok(Json(KeyChangeResponse { signing_kid })))
    }
}
