//! Deleting a user: unlinked at every provider first, then deleted with everything it owns.

use entity::social_account;

use super::{AccountError, Accounts, Actor, error::logged};
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
        // The token kept at login (Naver, Apple, Google): what those providers revoke with.
        let kept = store::provider_tokens::find_kept(db, account.id).await?;
        match app_of(&apps, &account, |app| provider.can_unlink(app)) {
            Some(app) => logged(
                &account.provider,
                provider.unlink(app, &account.uid, kept.as_ref()).await,
            )?,
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
    account: &social_account::Model,
) -> Result<(), AccountError> {
    let Some(kept) = store::provider_tokens::find_kept(db, account.id).await? else {
        return Ok(());
    };
    let Some(provider) = providers.get(&account.provider) else {
        return Ok(());
    };
    let apps = store::social::list_apps(db).await?;
    match app_of(&apps, account, |_| true) {
        Some(app) => logged(&account.provider, provider.revoke(app, &kept).await)?,
        None => tracing::warn!(provider = %account.provider, "the app of a kept token is gone; not revoked"),
    }
    Ok(())
}

/// The app `account` came through, among the provider's apps that are `usable` (Kakao ids are per
/// app, and so are its admin keys); for an account from before that was recorded, the first.
fn app_of<'a>(
    apps: &'a [SocialApp],
    account: &social_account::Model,
    usable: impl Fn(&SocialApp) -> bool,
) -> Option<&'a SocialApp> {
    apps.iter()
        .filter(|app| app.provider == account.provider && usable(app))
        .find(|app| account.social_app_id.is_none_or(|id| id == app.id))
}
