//! Deleting a user: unlinked at every provider first, then deleted with everything it owns.

use secrecy::ExposeSecret;

use super::{AccountError, Accounts, Actor};
use crate::{
    audit::{Entry, Origin, event},
    providers::{Providers, SocialApp},
    store::{self, cache::Cached},
};

/// Unlinks every provider account of the user at the provider (Kakao `/v1/user/unlink` with the
/// admin key), then deletes the user with its accounts, emails and tokens. A provider failure
/// stops before anything is deleted, so a retry later finishes the job (an already unlinked
/// account counts as done). The CLI calls this too, with caching off.
pub async fn delete_user(cached: &Cached, providers: &Providers, user_id: i32) -> Result<(), AccountError> {
    let db = cached.db();
    let apps = store::social::list_apps(db).await?;
    for account in store::social::list_accounts(db, user_id).await? {
        let Some(provider) = providers.get(&account.provider) else {
            continue;
        };
        // With the admin key of the app the account came through: Kakao ids are per app. An
        // account from before that was recorded: the provider's first app with an admin key.
        let has_admin_key = |a: &&SocialApp| a.provider == account.provider && !a.admin_key.expose_secret().is_empty();
        let app = match account.social_app_id {
            Some(id) => apps.iter().filter(has_admin_key).find(|a| a.id == id),
            None => apps.iter().find(has_admin_key),
        };
        match app {
            Some(app) => {
                let unlinked = provider.unlink(app, &account.uid).await;
                if let Err(e) = &unlinked {
                    super::error::log_provider_failure(&account.provider, e);
                }
                unlinked?;
            }
            None => tracing::warn!(provider = %account.provider, "no admin key to unlink with; deleting locally only"),
        }
    }
    cached.delete_user(user_id).await?;
    Ok(())
}

impl Accounts {
    /// A user deletes their own account (the caller checked a recent sign-in or the password),
    /// or an admin deletes one.
    pub async fn delete(&self, origin: &Origin, actor: Actor, user_id: i32) -> Result<(), AccountError> {
        if let Actor::Admin(_) = actor {
            // 404 for an unknown id, before any provider is called.
            store::users::get(&self.db, user_id).await?;
        }
        delete_user(&self.cached, &self.providers, user_id).await?;
        tracing::info!(user_id, "account deleted");
        let deleted = Entry::new(event::ACCOUNT_DELETED).user(user_id);
        self.audit.record(origin, actor.stamp(deleted));
        Ok(())
    }
}
