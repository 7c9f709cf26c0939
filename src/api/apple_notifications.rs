//! `POST /accounts/apple/notifications/`: Sign in with Apple's server-to-server notifications
//! (docs/providers.md 3.8), the Apple counterpart of Kakao's unlink webhook.

use poem_openapi::{Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{
    ApiTags, Body,
    tokens::{EmptyReply, EmptyResponse},
};
use crate::{audit::Origin, error::ApiError, state::AppState};

pub struct AppleNotificationsApi;

/// What Apple posts: one JWS signed with a key of Apple's JWKS.
#[derive(Object, Deserialize)]
pub struct AppleNotificationRequest {
    /// The signed notification (JWS): `iss` Apple, `aud` our client id, `events` one event.
    pub payload: String,
}

// By hand: the payload names an Apple user; it stays out of logs.
impl std::fmt::Debug for AppleNotificationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppleNotificationRequest").finish_non_exhaustive()
    }
}

#[OpenApi(tag = "ApiTags::SocialLogin")]
impl AppleNotificationsApi {
    /// Sign in with Apple server-to-server notification
    ///
    /// Apple calls this (one URL per primary App ID) when a user stops using Sign in with Apple
    /// with the app (`consent-revoked`) or deletes the Apple Account (`account-delete`): the
    /// social account is removed, the Apple token kept for it revoked and the user's tokens
    /// revoked, as Kakao's unlink webhook does. `email-disabled` / `email-enabled` are recorded in
    /// the account's `extra_data`. A notification not signed by Apple for one of our apps → 401;
    /// no Apple app configured → 404. Unknown user → 200 (idempotent: Apple may deliver twice).
    #[oai(
        path = "/accounts/apple/notifications/",
        method = "post",
        operation_id = "apple_server_notification"
    )]
    async fn notify(
        &self,
        state: poem::web::Data<&AppState>,
        origin: Origin,
        body: Body<AppleNotificationRequest>,
    ) -> Result<EmptyReply, ApiError> {
        let payload = body.into_inner().payload;
        state.accounts.apple_notification(&origin, &payload).await?;
        Ok(EmptyReply::Ok(Json(EmptyResponse {})))
    }
}
