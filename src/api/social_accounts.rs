//! A signed-in user's provider links (dj-rest-auth `SocialConnectView`, `SocialAccountListView`,
//! `SocialAccountDisconnectView`) and Kakao's unlink webhook.

use poem::Request;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use serde::Deserialize;

use super::{
    ApiTags, Body, CurrentUser, MaybeBody, current_site_id,
    social::{TokenPairResponse, rfc3339},
    step_up::{ConnectRequest, CurrentPasswordRequest},
    tokens::{EmptyReply, EmptyResponse},
};
use crate::{
    accounts::{AccountError, Connected, Credential, UnlinkNotice},
    audit::Origin,
    error::{ApiError, code},
    ratelimit::{Action, ClientIp},
    state::AppState,
};

pub struct SocialAccountsApi;

/// One provider account linked to the user.
#[derive(Debug, Object)]
pub struct SocialAccountResponse {
    pub id: i32,
    /// `kakao`, `naver`, `apple` or `google`.
    pub provider: String,
    /// The account's id at the provider (Kakao: the decimal user id; Naver: its per-app id;
    /// Apple and Google: `sub`).
    pub uid: String,
    pub last_login: String,
    pub date_joined: String,
}

/// Kakao's unlink notification (kakao-api.md 6.3): all fields are strings.
#[derive(Debug, Object, Deserialize)]
pub struct UnlinkNotification {
    /// The Kakao app id.
    pub app_id: String,
    /// The Kakao user id.
    pub user_id: String,
    /// Why: `UNLINK_FROM_APPS`, `UNLINK_FROM_ADMIN`, …
    pub referrer_type: Option<String>,
}

#[derive(ApiResponse)]
pub enum ConnectReply {
    /// Linked: a fresh session for the caller, as after a login.
    #[oai(status = 200)]
    Ok(Json<TokenPairResponse>),
    /// The provider account is linked to another user.
    #[oai(status = 409)]
    Conflict(Json<crate::error::ErrorBody>),
}

impl From<entity::social_account::Model> for SocialAccountResponse {
    fn from(a: entity::social_account::Model) -> Self {
        Self {
            id: a.id,
            provider: a.provider,
            uid: a.uid,
            last_login: rfc3339(a.last_login),
            date_joined: rfc3339(a.date_joined),
        }
    }
}

#[derive(ApiResponse)]
pub enum SocialAccountList {
    #[oai(status = 200)]
    Ok(Json<Vec<SocialAccountResponse>>),
}

/// Checks `Authorization: KakaoAK <admin key>` against the admin key of an app trusting
/// `app_id`, in constant time, then unlinks: the social account goes, the user's tokens die.
async fn handle_unlink(
    state: &AppState,
    req: &Request,
    origin: &Origin,
    note: UnlinkNotification,
) -> Result<EmptyReply, ApiError> {
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("KakaoAK "))
        .ok_or(AccountError::BadAdminKey)?;
    let notice = UnlinkNotice {
        provider: "kakao",
        app_id: note.app_id,
        user_id: note.user_id,
        referrer_type: note.referrer_type,
    };
    state.accounts.provider_unlinked(origin, presented, notice).await?;
    Ok(EmptyReply::Ok(Json(EmptyResponse {})))
}

#[OpenApi(tag = "ApiTags::SocialLogin")]
impl SocialAccountsApi {
    /// Link a provider account to the signed-in user
    ///
    /// dj-rest-auth `SocialConnectView`: the same credentials as login. A new way to sign in,
    /// so it needs the current `password` or a sign-in within the last 10 minutes (else 403
    /// `reauthentication_required`). Linked to another user already → 409 `social_account_taken`.
    #[oai(
        path = "/accounts/rest-auth/:provider/connect/",
        method = "post",
        operation_id = "connect_provider"
    )]
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per extractor, as operations take them"
    )]
    async fn connect(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        caller: CurrentUser,
        client: ClientIp,
        origin: Origin,
        /// The provider: `kakao`, `naver`, `apple` or `google`.
        provider: Path<super::social::ProviderName>,
        body: Body<ConnectRequest>,
    ) -> Result<ConnectReply, ApiError> {
        let provider = provider.0.as_str();
        let body = body.into_inner();
        caller.step_up(&state, &client, body.password).await?;
        let credential = Credential::try_from(body.credential)?;
        // As a login: each attempt costs calls on the app's provider quota.
        state.limits.check(Action::SocialLogin, &client, None).await?;
        let site_id = current_site_id(&state, req).await?;
        let connected = state
            .accounts
            .connect(&origin, caller.user, site_id, provider, credential);
        match connected.await? {
            Connected::Linked(linked) => {
                let (user, pair) = *linked;
                Ok(ConnectReply::Ok(Json(TokenPairResponse::new(pair, user))))
            }
            Connected::TakenByAnother => Ok(ConnectReply::Conflict(Json(crate::error::ErrorBody {
                detail: "This account is already linked to another user.".into(),
                code: code::SOCIAL_ACCOUNT_TAKEN.into(),
            }))),
        }
    }

    /// The signed-in user's provider accounts
    ///
    /// dj-rest-auth `SocialAccountListView`.
    #[oai(
        path = "/rest-auth/socialaccounts/",
        method = "get",
        operation_id = "list_social_accounts"
    )]
    async fn list(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
    ) -> Result<SocialAccountList, ApiError> {
        let accounts = state.accounts.linked_accounts(caller.user.id).await?;
        Ok(SocialAccountList::Ok(Json(
            accounts.into_iter().map(Into::into).collect(),
        )))
    }

    /// Unlink one of the signed-in user's provider accounts
    ///
    /// dj-rest-auth `SocialAccountDisconnectView`. Needs the current `password` or a sign-in
    /// within the last 10 minutes (else 403 `reauthentication_required`). Refused (400
    /// `last_login_method`) when it is the user's only way to sign in: no usable password and no
    /// other provider account.
    #[oai(
        path = "/rest-auth/socialaccounts/:id/disconnect/",
        method = "post",
        operation_id = "disconnect_social_account"
    )]
    async fn disconnect(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        client: ClientIp,
        origin: Origin,
        id: Path<i32>,
        body: MaybeBody<CurrentPasswordRequest>,
    ) -> Result<EmptyReply, ApiError> {
        caller.step_up(&state, &client, body.0.and_then(|b| b.password)).await?;
        state.accounts.disconnect(&origin, &caller.user, *id).await?;
        Ok(EmptyReply::Ok(Json(EmptyResponse {})))
    }

    /// Kakao unlink notification (webhook, GET form)
    ///
    /// Kakao calls this when a user unlinks the app; `Authorization: KakaoAK <admin key>`. The
    /// social account is removed and the user's tokens revoked. Unknown user → 200 (idempotent).
    #[oai(
        path = "/accounts/kakao/unlink/",
        method = "get",
        operation_id = "kakao_unlink_callback_get"
    )]
    async fn unlink_get(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        app_id: Query<String>,
        user_id: Query<String>,
        referrer_type: Query<Option<String>>,
        origin: Origin,
    ) -> Result<EmptyReply, ApiError> {
        let note = UnlinkNotification {
            app_id: app_id.0,
            user_id: user_id.0,
            referrer_type: referrer_type.0,
        };
        handle_unlink(&state, req, &origin, note).await
    }

    /// Kakao unlink notification (webhook, POST form)
    #[oai(
        path = "/accounts/kakao/unlink/",
        method = "post",
        operation_id = "kakao_unlink_callback_post"
    )]
    async fn unlink_post(
        &self,
        state: poem::web::Data<&AppState>,
        req: &Request,
        origin: Origin,
        body: Body<UnlinkNotification>,
    ) -> Result<EmptyReply, ApiError> {
        handle_unlink(&state, req, &origin, body.into_inner()).await
    }
}
