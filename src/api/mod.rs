//! The HTTP API: one `#[OpenApi]` impl per concern, shared request/response objects, and the
//! request authentication extractor.
//!
//! Naming: a body is `*Request` or `*Response` (an `Object`, a schema in the spec); what an
//! operation answers, its statuses each with a body, is `*Reply` (an `ApiResponse`).

pub mod accounts;
pub mod admin;
pub mod apple_notifications;
mod auth;
mod body;
pub mod compat;
mod cookies;
pub mod introspection;
pub mod local_accounts;
pub mod meta;
pub mod origin;
pub mod password;
pub mod social;
pub mod social_accounts;
pub mod spec;
pub mod step_up;
pub mod tokens;

use poem::Request;
use poem_openapi::{Object, Tags};

pub use auth::{CurrentUser, Presented};
pub use body::{Body, MaybeBody};

use crate::{state::AppState, store};

/// The type `Apis` and the function `apis()` making it, from one list (each API a unit struct).
macro_rules! api_list {
    ($($api:path),+ $(,)?) => {
        pub type Apis = ($($api,)+);

        pub fn apis() -> Apis {
            ($($api,)+)
        }
    };
}

api_list!(
    social::SocialApi,
    social_accounts::SocialAccountsApi,
    apple_notifications::AppleNotificationsApi,
    tokens::TokensApi,
    introspection::IntrospectionApi,
    compat::CompatApi,
    accounts::AccountsApi,
    local_accounts::LocalAccountsApi,
    password::PasswordApi,
    meta::MetaApi,
    admin::AdminUsersApi,
    admin::AdminSitesApi,
    admin::AdminKeysApi,
    admin::AdminAuditApi,
);

#[derive(Tags)]
pub enum ApiTags {
    /// Exchange a provider credential (Kakao first) for our tokens.
    SocialLogin,
    /// Verify our JWTs and publish the keys that sign them.
    Tokens,
    /// The signed-in user.
    Accounts,
    /// Health and readiness probes.
    Operations,
    /// Staff only (`is_staff`): users, sites, social apps, signing keys, the audit trail.
    Admin,
    /// For your own APIs (resource servers registered with `authbridge client add`): is this
    /// token good now, and whose is it? (RFC 7662)
    ResourceServers,
}

/// The user as dj-rest-auth's `UserDetailsSerializer` shows it.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct UserResponse {
    /// The user's primary key (the JWT `user_id` claim).
    pub pk: i32,
    pub username: String,
    /// Empty when the provider gave no email.
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

impl poem_openapi::types::Example for UserResponse {
    fn example() -> Self {
        Self {
            pk: 7,
            username: "kakao_3095134389".into(),
            email: "a@b.c".into(),
            first_name: String::new(),
            last_name: String::new(),
        }
    }
}

impl From<entity::user::Model> for UserResponse {
    fn from(u: entity::user::Model) -> Self {
        Self {
            pk: u.id,
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
        }
    }
}

/// Counts a login attempt by provider (`password` for local accounts) and result code.
pub(crate) fn count_login<T>(state: &AppState, provider: &'static str, result: &Result<T, crate::error::ApiError>) {
    state
        .metrics
        .login(provider, result.as_ref().map_or_else(|e| e.code(), |_| "ok"));
}

/// Django sites: the site whose domain is the request's Host (port dropped), else the default.
pub(crate) async fn current_site_id(state: &AppState, req: &Request) -> Result<i32, store::StoreError> {
    let host = req.uri().host().map(str::to_owned).or_else(|| {
        req.headers()
            .get(poem::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    });
    let Some(host) = host else {
        return Ok(state.settings.server.site_id);
    };
    let domain = host
        .rsplit_once(':')
        .filter(|(_, port)| port.parse::<u16>().is_ok())
        .map_or(host.as_str(), |(d, _)| d);
    Ok(state
        .cached
        .site_id_by_domain(&domain.to_lowercase())
        .await?
        .unwrap_or(state.settings.server.site_id))
}
