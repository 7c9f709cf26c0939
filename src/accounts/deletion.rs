//! Deleting a user: unlinked at every provider first, then deleted with everything it owns.

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
        // With the app the account came through (Kakao ids are per app, and so are its admin
        // keys). An account from before that was recorded: the provider's first app that can.
        let can_unlink = |a: &&SocialApp| a.provider == account.provider && provider.can_unlink(a);
        let app = match account.social_app_id {
            Some(id) => apps.iter().filter(can_unlink).find(|a| a.id == id),
            None => apps.iter().find(can_unlink),
        };
        // The token kept at login (Naver, Apple, Google): what those providers revoke with.
        let kept = store::provider_tokens::find_kept(db, account.id).await?;
        match app {
            Some(app) => {
                let unlinked = provider.unlink(app, &account.uid, kept.as_ref()).await;
                if let Err(e) = &unlinked {
                    super::error::log_provider_failure(&account.provider, e);
                }
                unlinked?;
            }
            None => {
                tracing::warn!(provider = %account.provider, "no app credentials to unlink with; deleting locally only")
            }
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

/// Revokes the provider token kept for `account` (a disconnect, a provider's unlink notice), with
/// the app it came through; nothing kept (Kakao, an id_token-only Apple login): nothing to do.
pub(super) async fn revoke_kept_token(
    db: &sea_orm::DatabaseConnection,
    providers: &Providers,
    account: &entity::social_account::Model,
) -> Result<(), AccountError> {
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
        Some(app) => {
            let revoked = provider.revoke(app, &kept).await;
            if let Err(e) = &revoked {
                super::error::log_provider_failure(&account.provider, e);
            }
            revoked?;
        }
        None => tracing::warn!(provider = %account.provider, "the app of a kept token is gone; not revoked"),
    }
    Ok(())
}
