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
    mail::{MailError, Outgoing},
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
        let detail = match e {
            MailError::Recipient => {
                return ApiError::field(code::INVALID, "email", "Enter a valid email address.");
            }
            // Our configuration, not the client's input: an operator must act.
            MailError::BadSender => {
                tracing::error!(error = %e, "mail cannot be sent");
                "Mail cannot be sent: the server's mail configuration is broken."
            }
            MailError::NotConfigured => "Mail cannot be sent: mail is not configured on this server.",
            MailError::QueueFull | MailError::Transport(_) => "Mail cannot be sent right now; retry later.",
        };
        ApiError::Unavailable(poem_openapi::payload::Json(crate::error::ErrorBody {
            detail: detail.into(),
            code: code::SERVICE_UNAVAILABLE.into(),
        }))
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

/// `check_username`, and a name with an `@` may not be another user's email address: logins look
/// such a name up as an email first, and the name would pass for that user's address elsewhere.
/// `user_id` is the account being renamed (`None` for a registration).
pub async fn check_new_username(state: &AppState, name: &str, user_id: Option<i32>) -> Result<(), ApiError> {
    check_username(name)?;
    if name.contains('@')
        && let Some(owner) = store::users::email_owner(&state.db, name).await?
        && Some(owner) != user_id
    {
        return Err(ApiError::field(
            code::INVALID,
            "username",
            "A user with that username already exists.",
        ));
    }
    Ok(())
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

/// Queues a mail with a new email-confirmation key for `email` of `user_id`.
pub async fn send_confirmation(state: &AppState, user_id: i32, email: &str) -> Result<(), ApiError> {
    state.mailer.ready()?;
    let (key, hash) = new_key();
    store::one_time::insert(
        &state.db,
        one_time::NewKey {
            purpose: one_time::CONFIRM_EMAIL,
            user_id,
            email: Some(email),
            key_hash: &hash,
            expires_at: jwt_at(Utc::now(), state.settings.accounts.email_confirmation_lifetime),
        },
    )
    .await?;
    let mail = confirmation_mail(&state.settings.accounts, email, &key);
    state.mailer.submit(async move { Ok(Some(mail)) })?;
    Ok(())
}

fn confirmation_mail(settings: &crate::config::AccountSettings, email: &str, key: &str) -> Outgoing {
    let link = settings.email_confirm_url.replace("{key}", key);
    Outgoing {
        to: email.to_owned(),
        subject: "Confirm your email address",
        body: format!(
            "Hello,\n\nconfirm that {email} is your address by opening\n\n{link}\n\nor by sending this key to \
             /rest-auth/registration/verify-email/:\n\n{key}\n\nIf you did not sign up, ignore this mail.\n"
        ),
    }
}

/// allauth's "account already exists" mail: sent instead of an error when someone registers
/// with an address that has an account (`ACCOUNT_PREVENT_ENUMERATION`).
fn account_exists_mail(settings: &crate::config::AccountSettings, email: &str) -> Outgoing {
    let reset = settings
        .password_reset_url
        .split('{')
        .next()
        .unwrap_or_default()
        .to_owned();
    Outgoing {
        to: email.to_owned(),
        subject: "Account already exists",
        body: format!(
            "Hello,\n\nsomeone tried to sign up with {email}, but an account with this address already \
             exists. If it was you and you forgot your password, ask for a reset ({reset}).\n\n\
             If it was not you, ignore this mail: nothing changes.\n"
        ),
    }
}

/// Queues a new confirmation mail for `email` when it belongs to an unverified address; silent
/// otherwise. The lookup runs in the queue too, so the answer's timing tells nothing.
pub fn resend_confirmation(state: &AppState, email: &str) -> Result<(), ApiError> {
    let (job_state, email) = (state.clone(), email.to_owned());
    state.mailer.submit(async move {
        let Some(row) = store::users::find_email(&job_state.db, &email).await? else {
            return Ok(None);
        };
        if row.verified {
            return Ok(None);
        }
        let (key, hash) = new_key();
        store::one_time::insert(
            &job_state.db,
            one_time::NewKey {
                purpose: one_time::CONFIRM_EMAIL,
                user_id: row.user_id,
                email: Some(&row.email),
                key_hash: &hash,
                expires_at: jwt_at(Utc::now(), job_state.settings.accounts.email_confirmation_lifetime),
            },
        )
        .await?;
        Ok(Some(confirmation_mail(&job_state.settings.accounts, &row.email, &key)))
    })?;
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

/// Queues a reset link for the active user owning `email`, if any. Everything (the lookup, the
/// key, the mail) happens in the mail queue after the answer, so a registered and an unknown
/// address get the same answer in the same time, and SMTP's failures never reach the client.
pub fn send_password_reset(state: &AppState, email: &str) -> Result<(), ApiError> {
    if email.parse::<lettre::Address>().is_err() {
        return Err(ApiError::field(code::INVALID, "email", "Enter a valid email address."));
    }
    let (job_state, email) = (state.clone(), email.to_owned());
    state
        .mailer
        .submit(async move { password_reset_mail(&job_state, &email).await })?;
    Ok(())
}

async fn password_reset_mail(state: &AppState, email: &str) -> anyhow::Result<Option<Outgoing>> {
    let owner = match store::users::find_email(&state.db, email).await? {
        Some(row) => Some(store::users::get(&state.db, row.user_id).await?),
        None => store::users::find_by_user_email(&state.db, email).await?,
    };
    let Some(user) = owner.filter(|u| u.is_active) else {
        return Ok(None);
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
            expires_at: jwt_at(now, state.settings.accounts.password_reset_lifetime),
        },
    )
    .await?;
    let uid = encode_uid(user.id);
    let link = state
        .settings
        .accounts
        .password_reset_url
        .replace("{uid}", &uid)
        .replace("{token}", &token);
    Ok(Some(Outgoing {
        to: email.to_owned(),
        subject: "Reset your password",
        body: format!(
            "Hello {},\n\nsomeone asked to reset your password. To choose a new one, open\n\n{link}\n\n\
             (uid {uid}, token {token}). If it was not you, ignore this mail: nothing changes.\n",
            user.username
        ),
    }))
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

/// What a registration did.
pub enum Registration {
    Created(user::Model),
    /// The address has an account: its owner was mailed (`ACCOUNT_PREVENT_ENUMERATION`), and
    /// the client gets the same answer as for a new account.
    OwnerNotified,
}

/// A new local user with an unverified email row, in one transaction. An address that has an
/// account is a 400 on `email`, or, with `prevent_enumeration`, a mail to its owner and the
/// same answer as a new account; the password is hashed either way, so the timing matches too.
pub async fn register(
    state: &AppState,
    username: &str,
    email: &str,
    password: &SecretString,
) -> Result<Registration, ApiError> {
    let password_hash = crate::password::hash(password)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if store::users::find_email(&state.db, email).await?.is_some()
        || store::users::find_by_user_email(&state.db, email).await?.is_some()
    {
        return address_taken(state, email);
    }
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
        Err(StoreError::Taken { .. }) => {
            return Err(ApiError::field(
                code::INVALID,
                "username",
                "A user with that username already exists.",
            ));
        }
        other => other?,
    };
    if let Err(e) = store::users::insert_email(&txn, user.id, email, false).await {
        return match e {
            // Registered concurrently by someone else.
            StoreError::Taken { .. } => {
                txn.rollback().await.map_err(StoreError::from)?;
                address_taken(state, email)
            }
            e => Err(e.into()),
        };
    }
    txn.commit().await.map_err(StoreError::from)?;
    Ok(Registration::Created(user))
}

fn address_taken(state: &AppState, email: &str) -> Result<Registration, ApiError> {
    if !state.settings.accounts.prevent_enumeration {
        return Err(ApiError::field(
            code::EMAIL_IN_USE,
            "email",
            "A user is already registered with this e-mail address.",
        ));
    }
    if state.settings.accounts.email_verification != crate::config::EmailVerification::None {
        let mail = account_exists_mail(&state.settings.accounts, email);
        state.mailer.submit(async move { Ok(Some(mail)) })?;
    }
    Ok(Registration::OwnerNotified)
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
        // With the app the account came through (Kakao ids are per app, and so are its admin
        // keys). An account from before that was recorded: the provider's first app that can.
        let can_unlink = |a: &&crate::providers::SocialApp| a.provider == account.provider && provider.can_unlink(a);
        let app = match account.social_app_id {
            Some(id) => apps.iter().filter(can_unlink).find(|a| a.id == id),
            None => apps.iter().find(can_unlink),
        };
        let kept = store::provider_tokens::find_kept(db, account.id).await?;
        match app {
            Some(app) => provider.unlink(app, &account.uid, kept.as_ref()).await?,
            None => {
                tracing::warn!(provider = %account.provider, "no app credentials to unlink with; deleting locally only")
            }
        }
    }
    store::users::delete(db, user_id).await?;
    Ok(())
}

/// Revokes the provider token kept for `account` (a disconnect), with the app it came through;
/// nothing kept (Kakao, an id_token-only Apple login): nothing to do.
pub async fn revoke_kept_token(
    db: &sea_orm::DatabaseConnection,
    providers: &crate::providers::Providers,
    account: &entity::social_account::Model,
) -> Result<(), DeleteError> {
    let Some(kept) = store::provider_tokens::find_kept(db, account.id).await? else {
        return Ok(());
    };
    let Some(provider) = providers.get(&account.provider) else {
        return Ok(());
    };
    let apps = store::social::list_apps(db).await?;
    let app = apps
        .iter()
        .filter(|a| a.provider == account.provider)
        .find(|a| account.social_app_id.is_none_or(|id| id == a.id));
    match app {
        Some(app) => provider.revoke(app, &kept).await?,
        None => tracing::warn!(provider = %account.provider, "the app of a kept token is gone; not revoked"),
    }
    Ok(())
}
