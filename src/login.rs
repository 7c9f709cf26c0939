//! Social login, the core flow (api.md 3): find the site's app → verify the credential with the
//! provider → upsert the account → refuse disabled users → issue our tokens.

use entity::user;
use secrecy::SecretString;

use crate::{
    audit::{Entry, Origin, event},
    error::{ApiError, code},
    providers::{CodeGrant, ProviderUser},
    ratelimit::{Action, ClientIp},
    state::AppState,
    store,
    tokens::IssuedPair,
};

/// What the client proved it holds, parsed once at the edge.
pub enum Credential {
    /// A provider access token, optionally with the id_token of the same login.
    AccessToken {
        token: SecretString,
        id_token: Option<SecretString>,
        nonce: Option<String>,
    },
    /// An authorization code to exchange at the provider.
    Code { grant: CodeGrant, nonce: Option<String> },
    /// An OIDC id_token alone, verified locally against the provider's keys.
    IdToken { token: SecretString, nonce: Option<String> },
}

impl Credential {
    /// How the client proved it: the audit trail's `method`.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::AccessToken { .. } => "access_token",
            Credential::Code { .. } => "code",
            Credential::IdToken { .. } => "id_token",
        }
    }
}

#[tracing::instrument(skip_all, fields(provider = provider_id, site_id, user_id = tracing::field::Empty))]
pub async fn social_login(
    state: &AppState,
    site_id: i32,
    provider_id: &str,
    credential: Credential,
) -> Result<(user::Model, IssuedPair), ApiError> {
    let account = verify_credential(state, site_id, provider_id, credential).await?;
    let user = login_user(state, provider_id, &account).await?;
    keep_provider_token(state, provider_id, &account).await?;
    tracing::Span::current().record("user_id", user.id);
    if !user.is_active {
        return Err(ApiError::forbidden(code::USER_INACTIVE, "User account is disabled."));
    }
    let pair = state.tokens.start_session(&user).await?;
    tracing::info!("social login");
    Ok((user, pair))
}

/// How stale `last_login` may get before a login writes it again: a returning user whose
/// provider data did not change is then signed in without any write.
const LAST_LOGIN_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The user a verified provider account signs in as, created or linked on first login.
async fn login_user(state: &AppState, provider_id: &str, account: &ProviderUser) -> Result<user::Model, ApiError> {
    let epoch = state.cached.user_epoch();
    let mut existing = state.cached.account(provider_id, &account.uid).await?;
    if let Some(known) = &existing
        && known.extra_data == account.extra_data
        && chrono::Utc::now() - known.last_login < LAST_LOGIN_RESOLUTION
    {
        match state.cached.user(known.user_id).await {
            Ok(user) => return Ok(user),
            // Deleted since the account was read: decide on the rows as they are now.
            Err(store::StoreError::NotFound(_)) => {
                state.cached.forget_account(provider_id, &account.uid);
                existing = store::social::find_account(&state.db, provider_id, &account.uid).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let user = match existing {
        None if batches_signup(state, account).await => {
            let signup = crate::write_queue::Signup {
                provider: provider_id.to_owned(),
                account: account.clone(),
                now: chrono::Utc::now(),
            };
            match state.queue.sign_up(signup).await? {
                Some(user) => user,
                None => {
                    // The batch may have just made this account (the same uid twice at once).
                    let existing = store::social::find_account(&state.db, provider_id, &account.uid).await?;
                    store::social::upsert_login(&state.db, provider_id, account, existing).await?
                }
            }
        }
        existing => store::social::upsert_login(&state.db, provider_id, account, existing).await?,
    };
    // The account row changed (extra_data, last_login) or was made: read it afresh next time.
    state.cached.forget_account(provider_id, &account.uid);
    state.cached.remember_user(&user, epoch);
    Ok(user)
}

/// Whether a first login goes to the write queue's batches (`write_queue::signups`): the database
/// returns inserted rows (SQLite, PostgreSQL) and the account makes a new user. Otherwise it goes
/// the one-login way (linking by email, MariaDB).
async fn batches_signup(state: &AppState, account: &ProviderUser) -> bool {
    use sea_orm::ConnectionTrait;
    state.db.support_returning() && store::social::makes_new_user(&state.db, account).await
}

/// The provider account a credential proves, checked by the site's app for that provider.
pub async fn verify_credential(
    state: &AppState,
    site_id: i32,
    provider_id: &str,
    credential: Credential,
) -> Result<ProviderUser, ApiError> {
    let provider = state.providers.get(provider_id).ok_or_else(not_configured)?;
    let app = state
        .cached
        .app_for_site(provider_id, site_id)
        .await?
        .ok_or_else(not_configured)?;
    Ok(match credential {
        Credential::AccessToken { token, id_token, nonce } => {
            provider
                .login_with_access_token(&app, &token, id_token.as_ref(), nonce.as_deref())
                .await?
        }
        Credential::Code { grant, nonce } => provider.login_with_code(&app, &grant, nonce.as_deref()).await?,
        Credential::IdToken { token, nonce } => {
            // Alone, an id_token is a bearer credential that anyone who saw it could replay until
            // it expires (hours); the nonce ties it to the login the client started.
            if nonce.is_none() && state.settings.kakao.require_nonce {
                return Err(ApiError::field(
                    code::INVALID,
                    "nonce",
                    "This field is required when id_token is sent alone.",
                ));
            }
            provider.verify_id_token(&app, &token, nonce.as_deref()).await?
        }
    })
}

/// Keeps the token a provider wants for revoking the link later (Naver, Apple, Google), once
/// the account is linked.
pub async fn keep_provider_token(state: &AppState, provider_id: &str, account: &ProviderUser) -> Result<(), ApiError> {
    if let Some(kept) = &account.kept {
        store::provider_tokens::keep(&state.db, provider_id, &account.uid, kept).await?;
    }
    Ok(())
}

/// Stores the name an app sent beside the credential (Apple gives it on the first authorization
/// only) when the user has none yet; a name the user set is never overwritten.
pub async fn remember_names(
    state: &AppState,
    user: user::Model,
    names: Option<(String, String)>,
) -> Result<user::Model, ApiError> {
    let Some((first, last)) = names else { return Ok(user) };
    if !user.first_name.is_empty() || !user.last_name.is_empty() {
        return Ok(user);
    }
    let updated = store::users::update_profile(&state.db, user.id, None, Some(&first), Some(&last)).await?;
    state.cached.forget_user(user.id);
    Ok(updated)
}

pub(crate) fn not_configured() -> ApiError {
    ApiError::not_found(
        code::PROVIDER_NOT_CONFIGURED,
        "This provider is not configured for this site.",
    )
}

/// Username-or-email + password, as Django's ModelBackend: `None` for a wrong password, an
/// unknown user or a disabled one, all after one argon2 verification (no user enumeration by
/// timing). A Django-format or weaker hash is upgraded to our argon2id on success.
///
/// The attempt first spends the client IP's login budget, then the account's, named by the
/// user's username when the name is a known username or email (both names of one account share
/// one budget), else by the name as sent. A refusal is a 429 before any password work.
#[tracing::instrument(skip_all, fields(user_id = tracing::field::Empty))]
pub async fn authenticate_password(
    state: &AppState,
    client: &ClientIp,
    origin: &Origin,
    login: &str,
    password: &SecretString,
) -> Result<Option<user::Model>, ApiError> {
    let user = store::users::find_by_login(&state.db, login.trim()).await?;
    let account = user.as_ref().map_or(login, |u| u.username.as_str());
    state.limits.check(Action::Login, client, Some(account)).await?;
    let matches = crate::password::verify(user.as_ref().map(|u| u.password.as_str()), password).await;
    let attempt = Entry::new(event::LOGIN_SUCCEEDED).method("password");
    let known = user.as_ref().map(|u| u.id);
    let Some(user) = user.filter(|u| matches && u.is_active) else {
        let mut failed = Entry {
            event: event::LOGIN_FAILED,
            ..attempt
        }
        .outcome(code::INVALID_CREDENTIALS);
        failed.user_id = known;
        state.audit.record(origin, failed);
        return Ok(None);
    };
    state.audit.record(origin, attempt.user(user.id));
    tracing::Span::current().record("user_id", user.id);
    if crate::password::needs_rehash(&user.password) {
        match crate::password::hash(password).await {
            Ok(hash) => store::users::update_password(&state.db, user.id, &hash).await?,
            Err(e) => tracing::warn!(error = %e, "password rehash failed; keeping the old hash"),
        }
    }
    store::users::touch_last_login(&state.db, user.id, chrono::Utc::now()).await?;
    Ok(Some(user))
}
