//! The signed-in user's own details: changes to them, and everything stored about the user.

use entity::{auth_token, email_address, refresh_token, social_account, user};

use super::{AccountError, Accounts};
use crate::store::{self, StoreError};

/// Fields of `PUT/PATCH /rest-auth/user/`; `None` leaves a field as it is.
pub struct ProfileChange {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// Everything stored about a user (`GET /rest-auth/user/export/`).
pub struct UserRecord {
    pub emails: Vec<email_address::Model>,
    pub social_accounts: Vec<social_account::Model>,
    pub sessions: Vec<refresh_token::Model>,
    pub opaque_tokens: Vec<auth_token::Model>,
}

impl Accounts {
    pub async fn update_profile(&self, user_id: i32, change: ProfileChange) -> Result<user::Model, AccountError> {
        if let Some(username) = &change.username {
            self.check_new_username(username, Some(user_id)).await?;
        }
        let updated = self.cached.update_profile(
            user_id,
            change.username.as_deref(),
            change.first_name.as_deref(),
            change.last_name.as_deref(),
        );
        updated.await.map_err(|e| match e {
            StoreError::Taken { .. } => AccountError::invalid("username", "A user with that username already exists."),
            e => e.into(),
        })
    }

    pub async fn record_of(&self, user_id: i32) -> Result<UserRecord, AccountError> {
        Ok(UserRecord {
            emails: store::users::list_emails(&self.db, user_id).await?,
            social_accounts: store::social::list_accounts(&self.db, user_id).await?,
            sessions: store::tokens::list_user_refresh(&self.db, user_id).await?,
            opaque_tokens: store::tokens::list_user_auth_tokens(&self.db, user_id).await?,
        })
    }
}
