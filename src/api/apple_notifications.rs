//! `POST /accounts/apple/notifications/`: Sign in with Apple's server-to-server notifications
//! (docs/providers.md 3.8), the Apple counterpart of Kakao's unlink webhook.

use poem_openapi::{Object, OpenApi, payload::Json};
use serde::Deserialize;

use super::{
    ApiTags, Body,
    tokens::{EmptyReply, EmptyResponse},
};
use crate::{
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    providers::{AppleEvent, ProviderError},
    state::AppState,
    store,
};

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
        let apps: Vec<_> = store::social::list_apps(&state.db)
            .await?
            .into_iter()
            .filter(|a| a.provider == "apple")
            .collect();
        if apps.is_empty() {
            return Err(crate::login::not_configured());
        }
        let note = match state
            .providers
            .apple()
            .verify_notification(&apps, &body.into_inner().payload)
            .await
        {
            Ok(note) => note,
            // Not Apple speaking (bad signature, unknown key, another app's `aud`): the caller
            // failed to authenticate, as a wrong admin key at Kakao's webhook.
            Err(ProviderError::InvalidToken | ProviderError::AppMismatch) => {
                return Err(ApiError::unauthorized(
                    code::NOT_AUTHENTICATED,
                    "Not a notification signed by Apple for this server.",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(account) = store::social::find_account_of_apps(&state.db, "apple", &note.sub, &[note.app_id]).await?
        else {
            return Ok(EmptyReply::Ok(Json(EmptyResponse {})));
        };
        match note.event {
            AppleEvent::ConsentRevoked | AppleEvent::AccountDelete => {
                // Consent is gone at Apple already; revoking our token is tidiness, not a condition.
                if let Err(e) = crate::accounts::revoke_kept_token(&state.db, &state.providers, &account).await {
                    tracing::warn!(error = %e, "revoking the Apple token of an unlinked account failed");
                }
                store::social::delete_account(&state.db, account.id).await?;
                state.cached.forget_account(&account.provider, &account.uid);
                state.tokens.revoke_user(account.user_id).await?;
                let unlinked = Entry::new(event::ACCOUNT_UNLINKED)
                    .user(account.user_id)
                    .provider("apple");
                state.audit.record(&origin, unlinked.method("provider_webhook"));
                tracing::info!(user_id = account.user_id, "apple account unlinked by apple");
            }
            AppleEvent::EmailForwarding { disabled, email } => {
                let mut fields = serde_json::Map::new();
                fields.insert("email_forwarding_disabled".into(), disabled.into());
                if let Some(email) = email {
                    fields.insert("email".into(), email.into());
                }
                store::provider_tokens::merge_extra_data(&state.db, &account, fields).await?;
                state.cached.forget_account(&account.provider, &account.uid);
            }
            AppleEvent::Other(kind) => tracing::info!(kind, "apple notification ignored"),
        }
        Ok(EmptyReply::Ok(Json(EmptyResponse {})))
    }
}
