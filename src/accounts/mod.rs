//! The domain layer: what can happen to an account, whoever asks (the HTTP API, the CLI).
//! Social and password login, registration and email confirmation, password reset and change,
//! linking and unlinking provider accounts, profile changes, deletion, and the admin's actions on
//! users. It returns `AccountError`, never an HTTP answer; `api/` parses requests, calls these
//! functions and maps their errors in `error.rs`.

mod admin;
mod deletion;
mod error;
mod keys;
mod linking;
mod mail;
mod password_login;
mod profile;
mod registration;
mod reset;
mod social_login;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

pub use admin::UserDetail;
pub use deletion::delete_user;
pub use error::AccountError;
pub use keys::encode_uid;
pub use linking::{Connected, UnlinkNotice, Unlinked};
pub use profile::{ProfileChange, UserRecord};
use registration::NEW_PASSWORD_FIELDS;
pub use registration::{NewAccount, Registered};
pub use reset::NewPassword;
pub use social_login::Credential;

use crate::{
    audit::{Audit, Entry},
    config::AccountSettings,
    mail::Mailer,
    providers::Providers,
    ratelimit::RateLimiter,
    store::cache::Cached,
    tokens::Tokens,
    write_queue::WriteQueue,
};

/// What the account operations work with; built once at start-up, cheap to clone (a mail job
/// takes a clone).
#[derive(Clone)]
pub struct Accounts {
    pub db: DatabaseConnection,
    /// Reads through the short-lived caches; writes that forget the copies they change.
    pub cached: Cached,
    pub tokens: Tokens,
    /// First social logins are batched through it (`write_queue::signups`).
    pub queue: WriteQueue,
    pub providers: Providers,
    pub mailer: Mailer,
    pub limits: RateLimiter,
    pub audit: Audit,
    pub settings: Arc<AccountSettings>,
    /// `AUTHBRIDGE_KAKAO_REQUIRE_NONCE`: an id_token alone must come with its nonce.
    pub require_nonce: bool,
}

/// Who asks for an action on a user: the user itself, or a staff user through the admin API
/// (the trail then names the admin as the actor).
#[derive(Debug, Clone, Copy)]
pub enum Actor {
    Owner,
    Admin(i32),
}

impl Actor {
    fn stamp(self, entry: Entry) -> Entry {
        match self {
            Actor::Owner => entry,
            Actor::Admin(id) => entry.actor(id).method("admin_api"),
        }
    }
}
