//! Local-account flows shared by the HTTP handlers: registration, email confirmation and
//! password reset, each with its single-use key sent by mail.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use entity::user;
use rand::RngCore;
use sea_orm::TransactionTrait;
use secrecy::SecretString;

use crate::{
    error::{ApiError, code},
    mail::MailError,
    state::AppState,
    store::{self, StoreError, one_time},
    tokens::jwt_at,
};

/// A random key for a mail link and the hash that is stored instead of it.
fn new_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = URL_SAFE_NO_PAD.encode(bytes);
    let hash = key_hash(&key);
    (key, hash)
}

pub fn key_hash(key: &str) -> String {
    crate::tokens::secret_digest(key)
}

/// Django's `urlsafe_base64_encode(force_bytes(pk))`.
pub fn encode_uid(pk: i32) -> String {
    URL_SAFE_NO_PAD.encode(pk.to_string())
}

pub fn decode_uid(uid: &str) -> Option<i32> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?)
        .ok()?
        .parse()
        .ok()
}

impl From<MailError> for ApiError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Address(_) => ApiError::field(code::INVALID, "email", "Enter a valid email address."),
            e => ApiError::Unavailable(poem_openapi::payload::Json(crate::error::ErrorBody {
                detail: format!("Mail could not be sent: {e}"),
                code: code::SERVICE_UNAVAILABLE.into(),
            })),
        }
    }
}

/// The 400 for a username outside Django's rule.
pub fn check_username(name: &str) -> Result<(), ApiError> {
    if store::users::is_valid_username(name) {
        return Ok(());
    }
    Err(ApiError::field(
        code::INVALID,
        "username",
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
    ))
}

/// Where a new password's errors go: (mismatch field, validator field). dj-rest-auth's password
/// views report both on `new_password2`; registration uses `password2` and `password1`.
pub const NEW_PASSWORD_FIELDS: (&str, &str) = ("new_password2", "new_password2");
pub const REGISTER_PASSWORD_FIELDS: (&str, &str) = ("password2", "password1");

/// Field errors of a new password pair, Django's validators included.
pub fn check_new_password(
    password1: &str,
    password2: &str,
    attributes: &[&str],
    (mismatch_field, rules_field): (&str, &str),
) -> Result<(), ApiError> {
    if password1 != password2 {
        return Err(ApiError::field(
            code::INVALID,
            mismatch_field,
            "The two password fields didn't match.",
        ));
    }
    let problems = crate::password_rules::problems(password1, attributes);
    if problems.is_empty() {
        return Ok(());
    }
    let mut error = ApiError::field(code::INVALID, rules_field, problems[0].clone());
    if let ApiError::BadRequest(body) = &mut error {
        body.0.fields.insert(rules_field.into(), problems);
    }
    Err(error)
}

/// Sends an email-confirmation key for `email` of `user_id`.
pub async fn send_confirmation(state: &AppState, user_id: i32, email: &str) -> Result<(), ApiError> {
    let (key, hash) = new_key();
    store::one_time::insert(
        &state.db,
        one_time::NewKey {
            purpose: one_time::CONFIRM_EMAIL,
            user_id,
            email: Some(email),
            key_hash: &hash,
            expires_at: jwt_at(Utc::now(), state.settings.email_confirmation_lifetime),
        },
    )
    .await?;
    let link = state.settings.email_confirm_url.replace("{key}", &key);
    let body = format!(
        "Hello,\n\nconfirm that {email} is your address by opening\n\n{link}\n\nor by sending this key to \
         /rest-auth/registration/verify-email/:\n\n{key}\n\nIf you did not sign up, ignore this mail.\n"
    );
    state.mailer.send(email, "Confirm your email address", body).await?;
    Ok(())
}

/// Marks the address of a valid, unused confirmation key verified; returns its user. `None` when
/// the key is unknown, used or expired.
pub async fn confirm_email(state: &AppState, key: &str) -> Result<Option<i32>, ApiError> {
    let Some(row) = store::one_time::consume(&state.db, one_time::CONFIRM_EMAIL, &key_hash(key), Utc::now()).await?
    else {
        return Ok(None);
    };
    let email = row.email.unwrap_or_default();
    store::users::set_email_verified(&state.db, row.user_id, &email).await?;
    state.cached.forget_user(row.user_id);
    Ok(Some(row.user_id))
}

/// Sends a reset link to the active user owning `email`, if any; silent otherwise, so the
/// answer does not tell whether the address is registered.
pub async fn send_password_reset(state: &AppState, email: &str) -> Result<(), ApiError> {
    let owner = match store::users::find_email(&state.db, email).await? {
        Some(row) => Some(store::users::get(&state.db, row.user_id).await?),
        None => store::users::find_by_user_email(&state.db, email).await?,
    };
    let Some(user) = owner.filter(|u| u.is_active) else {
        return Ok(());
    };
    let now = Utc::now();
    store::one_time::void_for_user(&state.db, one_time::RESET_PASSWORD, user.id, now).await?;
    let (token, hash) = new_key();
    store::one_time::insert(
        &state.db,
        one_time::NewKey {
            purpose: one_time::RESET_PASSWORD,
            user_id: user.id,
            email: None,
            key_hash: &hash,
            expires_at: jwt_at(now, state.settings.password_reset_lifetime),
        },
    )
    .await?;
    let uid = encode_uid(user.id);
    let link = state
        .settings
        .password_reset_url
        .replace("{uid}", &uid)
        .replace("{token}", &token);
    let body = format!(
        "Hello {},\n\nsomeone asked to reset your password. To choose a new one, open\n\n{link}\n\n\
         (uid {uid}, token {token}). If it was not you, ignore this mail: nothing changes.\n",
        user.username
    );
    state.mailer.send(email, "Reset your password", body).await?;
    Ok(())
}

/// Sets a new password from a reset link; revokes every token of the user, and returns it.
/// `None` when the link is not valid.
pub async fn reset_password(
    state: &AppState,
    uid: &str,
    token: &str,
    password: &SecretString,
) -> Result<Option<i32>, ApiError> {
    let Some(user_id) = decode_uid(uid) else {
        return Ok(None);
    };
    let Some(row) = store::one_time::consume(&state.db, one_time::RESET_PASSWORD, &key_hash(token), Utc::now()).await?
    else {
        return Ok(None);
    };
    if row.user_id != user_id {
        return Ok(None);
    }
    set_password(state, user_id, password).await?;
    Ok(Some(user_id))
}

/// Stores a new password hash and revokes the user's refresh and opaque tokens.
pub async fn set_password(state: &AppState, user_id: i32, password: &SecretString) -> Result<(), ApiError> {
    let hash = crate::password::hash(password)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    store::users::update_password(&state.db, user_id, &hash).await?;
    state.tokens.revoke_user(user_id).await?;
    Ok(())
}

/// A new local user with an unverified email row, in one transaction.
pub async fn register(
    state: &AppState,
    username: &str,
    email: &str,
    password: &SecretString,
) -> Result<user::Model, ApiError> {
    if store::users::find_email(&state.db, email).await?.is_some()
        || store::users::find_by_user_email(&state.db, email).await?.is_some()
    {
        return Err(ApiError::field(
            code::EMAIL_IN_USE,
            "email",
            "A user is already registered with this e-mail address.",
        ));
    }
    let password_hash = crate::password::hash(password)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let txn = state.db.begin().await.map_err(StoreError::from)?;
    let user = match store::users::insert_local(
        &txn,
        store::users::NewLocalUser {
            username,
            email,
            password_hash,
            is_staff: false,
            is_superuser: false,
        },
    )
    .await
    {
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::field(
                code::INVALID,
                "username",
                "A user with that username already exists.",
            ));
        }
        other => other?,
    };
    if let Err(e) = store::users::insert_email(&txn, user.id, email, false).await {
        return Err(match e {
            StoreError::Conflict(_) => ApiError::field(
                code::EMAIL_IN_USE,
                "email",
                "A user is already registered with this e-mail address.",
            ),
            e => e.into(),
        });
    }
    txn.commit().await.map_err(StoreError::from)?;
    Ok(user)
}

/// Why a deletion stopped; nothing was deleted in either case.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    Provider(#[from] crate::providers::ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DeleteError> for ApiError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::Provider(e) => e.into(),
            DeleteError::Store(e) => e.into(),
        }
    }
}

/// Unlinks every provider account of the user at the provider (Kakao `/v1/user/unlink` with the
/// admin key), then deletes the user with its accounts, emails and tokens. A provider failure
/// stops before anything is deleted, so a retry later finishes the job (an already unlinked
/// account counts as done).
pub async fn delete_user(
    db: &sea_orm::DatabaseConnection,
    providers: &crate::providers::Providers,
    user_id: i32,
) -> Result<(), DeleteError> {
    let apps = store::social::list_apps(db).await?;
    for account in store::social::list_accounts(db, user_id).await? {
        let Some(provider) = providers.get(&account.provider) else {
            continue;
        };
        let app = apps.iter().find(|a| {
            use secrecy::ExposeSecret;
            a.provider == account.provider && !a.admin_key.expose_secret().is_empty()
        });
        match app {
            Some(app) => provider.unlink(app, &account.uid).await?,
            None => tracing::warn!(provider = %account.provider, "no admin key to unlink with; deleting locally only"),
        }
    }
    store::users::delete(db, user_id).await?;
    Ok(())
}
