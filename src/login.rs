//! Social login, the core flow (api.md 3): find the site's app → verify the credential with the
//! provider → upsert the account → refuse disabled users → issue our tokens.

use entity::user;
use secrecy::SecretString;

use crate::{
    error::{ApiError, code},
    state::AppState,
    store,
    tokens::IssuedPair,
};

/// What the client proved it holds, parsed once at the edge.
pub enum Credential {
    AccessToken(SecretString),
}

#[tracing::instrument(skip_all, fields(provider = provider_id, site_id, user_id = tracing::field::Empty))]
pub async fn social_login(
    state: &AppState,
    site_id: i32,
    provider_id: &str,
    credential: Credential,
) -> Result<(user::Model, IssuedPair), ApiError> {
    let provider = state.providers.get(provider_id).ok_or_else(not_configured)?;
    let app = store::social::find_app_for_site(&state.db, provider_id, site_id)
        .await?
        .ok_or_else(not_configured)?;
    let account = match credential {
        Credential::AccessToken(token) => provider.verify_access_token(&app, &token).await?,
    };
    let user = store::social::upsert_login(&state.db, provider_id, &account).await?;
    tracing::Span::current().record("user_id", user.id);
    if !user.is_active {
        return Err(ApiError::forbidden(code::USER_INACTIVE, "User account is disabled."));
    }
    let pair = state.tokens.issue_pair(user.id)?;
    tracing::info!("social login");
    Ok((user, pair))
}

fn not_configured() -> ApiError {
    ApiError::not_found(
        code::PROVIDER_NOT_CONFIGURED,
        "This provider is not configured for this site.",
    )
}
