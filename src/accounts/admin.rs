//! What the admin API does to users: list and look them up, enable, disable, end their
//! sessions (deletion is in `deletion`).

use entity::{social_account, user};

use super::{AccountError, Accounts, Actor};
use crate::{
    audit::{Entry, Origin, event},
    store,
};

/// A user and the provider accounts linked to it.
pub struct UserDetail {
    pub user: user::Model,
    pub social_accounts: Vec<social_account::Model>,
}

impl Accounts {
    /// One page of users (`search` in username and email), and how many match in all.
    pub async fn page_users(
        &self,
        search: Option<&str>,
        page: u64,
        size: u64,
    ) -> Result<(Vec<user::Model>, u64), AccountError> {
        Ok(store::admin::page_users(&self.db, search, page, size).await?)
    }

    pub async fn user_detail(&self, id: i32) -> Result<UserDetail, AccountError> {
        let user = store::users::get(&self.db, id).await?;
        let social_accounts = store::social::list_accounts(&self.db, id).await?;
        Ok(UserDetail { user, social_accounts })
    }

    /// Enables or disables a user; disabling revokes every token it holds.
    pub async fn set_active(&self, origin: &Origin, actor: Actor, id: i32, active: bool) -> Result<(), AccountError> {
        store::users::get(&self.db, id).await?;
        self.cached.set_active(id, active).await?;
        let what = match active {
            true => event::USER_ENABLED,
            false => event::USER_DISABLED,
        };
        self.audit.record(origin, actor.stamp(Entry::new(what).user(id)));
        Ok(())
    }

    /// Ends every session of the user (logout everywhere, by an admin).
    pub async fn revoke_sessions(&self, origin: &Origin, actor: Actor, id: i32) -> Result<(), AccountError> {
        store::users::get(&self.db, id).await?;
        self.tokens.revoke_user(id).await?;
        let revoked = Entry::new(event::SESSIONS_REVOKED).user(id);
        self.audit.record(origin, actor.stamp(revoked));
        Ok(())
    }
}
