//! Provider accounts linked to a user: connect one more (allauth's "connect"), list, disconnect,
//! and the provider's own unlink notice (Kakao's unlink webhook).

use entity::{social_account, user};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::{AccountError, Accounts, Credential};
use crate::{
    audit::{Entry, Origin, event},
    providers::{AppleEvent, ProviderError},
    store::{self, StoreError},
    tokens::IssuedPair,
};

/// A provider says one of its users unlinked our app (Kakao: `app_id`, `user_id`,
/// `referrer_type`), authenticated by the app's admin key.
pub struct UnlinkNotice {
    pub provider: &'static str,
    pub app_id: String,
    pub user_id: String,
    pub referrer_type: Option<String>,
}

/// What a connect did.
pub enum Connected {
    /// Linked (or already linked to this user): a new session.
    Linked(Box<(user::Model, IssuedPair)>),
    /// The provider account is linked to another user; nothing changed.
    TakenByAnother,
}

/// What an unlink notice did.
pub enum Unlinked {
    /// The account was ours: deleted, and its user's tokens revoked.
    Account { user_id: i32 },
    /// No account of a trusted app has that id (unlinked before, or never linked).
    Unknown,
}

impl Accounts {
    /// Links the account `credential` proves to `user` and starts a session for it.
    pub async fn connect(
        &self,
        origin: &Origin,
        user: user::Model,
        site_id: i32,
        provider: &str,
        credential: Credential,
    ) -> Result<Connected, AccountError> {
        let method = credential.kind();
        let account = self.verify_credential(site_id, provider, credential).await?;
        match self.cached.connect_account(user.id, provider, &account).await {
            Err(StoreError::Taken { .. }) => return Ok(Connected::TakenByAnother),
            other => other?,
        }
        self.keep_provider_token(provider, &account).await?;
        let linked = Entry::new(event::ACCOUNT_LINKED).user(user.id).provider(provider);
        self.audit.record(origin, linked.method(method));
        let pair = self.tokens.start_session(&user).await?;
        Ok(Connected::Linked(Box::new((user, pair))))
    }

    pub async fn linked_accounts(&self, user_id: i32) -> Result<Vec<social_account::Model>, AccountError> {
        Ok(store::social::list_accounts(&self.db, user_id).await?)
    }

    /// Unlinks one of `user`'s provider accounts; refused when it is the last way to sign in
    /// (no password, no other account).
    pub async fn disconnect(&self, origin: &Origin, user: &user::Model, account_id: i32) -> Result<(), AccountError> {
        let accounts = store::social::list_accounts(&self.db, user.id).await?;
        let gone = accounts
            .iter()
            .find(|a| a.id == account_id)
            .ok_or(AccountError::NoSuchSocialAccount)?;
        let has_password = !user.password.starts_with('!');
        if !has_password && accounts.len() == 1 {
            return Err(AccountError::LastLoginMethod);
        }
        // The provider token kept at login dies first (Naver, Apple, Google): a provider that
        // cannot be reached answers 502 and the link stays, for a retry.
        super::deletion::revoke_kept_token(&self.db, &self.providers, gone).await?;
        self.cached.delete_account(gone).await?;
        let unlinked = Entry::new(event::ACCOUNT_UNLINKED)
            .user(user.id)
            .provider(&gone.provider);
        self.audit.record(origin, unlinked.method("disconnect"));
        Ok(())
    }

    /// The provider's notice that a user unlinked our app: the account goes and its user's tokens
    /// are revoked. Only an app whose admin key was `presented` is trusted, and only the account
    /// that came through that app (Kakao ids are per app).
    pub async fn provider_unlinked(
        &self,
        origin: &Origin,
        presented: &str,
        notice: UnlinkNotice,
    ) -> Result<Unlinked, AccountError> {
        let apps = store::social::find_apps_by_app_id(&self.db, notice.provider, &notice.app_id).await?;
        let trusted: Vec<i32> = apps
            .iter()
            .filter(|app| {
                let key = app.admin_key.expose_secret().as_bytes();
                !key.is_empty() && bool::from(key.ct_eq(presented.trim().as_bytes()))
            })
            .map(|app| app.id)
            .collect();
        if trusted.is_empty() {
            return Err(AccountError::BadAdminKey);
        }
        let found = store::social::find_account_of_apps(&self.db, notice.provider, &notice.user_id, &trusted);
        let Some(account) = found.await? else {
            return Ok(Unlinked::Unknown);
        };
        tracing::info!(referrer_type = ?notice.referrer_type, "unlink notice");
        self.unlinked_by_provider(origin, &account).await?;
        Ok(Unlinked::Account {
            user_id: account.user_id,
        })
    }

    /// Sign in with Apple's server-to-server notification (`payload`: a JWS Apple signed for
    /// one of our Apple apps). `consent-revoked` and `account-delete` unlink as Kakao's notice
    /// does, revoking the Apple token kept for the account; the email events are recorded in the
    /// account's `extra_data`. An unknown user is done already (Apple may deliver twice).
    pub async fn apple_notification(&self, origin: &Origin, payload: &str) -> Result<(), AccountError> {
        let apps: Vec<_> = store::social::list_apps(&self.db)
            .await?
            .into_iter()
            .filter(|a| a.provider == "apple")
            .collect();
        if apps.is_empty() {
            return Err(AccountError::ProviderNotConfigured);
        }
        let note = match self.providers.apple().verify_notification(&apps, payload).await {
            Ok(note) => note,
            // Not Apple speaking (bad signature, unknown key, another app's `aud`): the caller
            // failed to authenticate, as with a wrong admin key at Kakao's notice.
            Err(ProviderError::InvalidToken | ProviderError::AppMismatch) => return Err(AccountError::UnsignedNotice),
            Err(e) => return Err(e.into()),
        };
        let app_ids = [note.app_id];
        let found = store::social::find_account_of_apps(&self.db, "apple", &note.sub, &app_ids);
        let Some(account) = found.await? else {
            return Ok(());
        };
        match note.event {
            AppleEvent::ConsentRevoked | AppleEvent::AccountDelete => {
                // Consent is gone at Apple already; revoking our token is tidiness, not a condition.
                if let Err(e) = super::deletion::revoke_kept_token(&self.db, &self.providers, &account).await {
                    tracing::warn!(error = %e, "revoking the Apple token of an unlinked account failed");
                }
                self.unlinked_by_provider(origin, &account).await?;
            }
            AppleEvent::EmailForwarding { disabled, email } => {
                let mut fields = serde_json::Map::new();
                fields.insert("email_forwarding_disabled".into(), disabled.into());
                if let Some(email) = email {
                    fields.insert("email".into(), email.into());
                }
                self.cached.merge_extra_data(&account, fields).await?;
            }
            AppleEvent::Other(kind) => tracing::info!(kind, "apple notification ignored"),
        }
        Ok(())
    }

    /// The provider says `account` is no longer linked: it goes, and its user's tokens die.
    async fn unlinked_by_provider(&self, origin: &Origin, account: &social_account::Model) -> Result<(), AccountError> {
        self.cached.delete_account(account).await?;
        self.tokens.revoke_user(account.user_id).await?;
        let unlinked = Entry::new(event::ACCOUNT_UNLINKED)
            .user(account.user_id)
            .provider(&account.provider);
        self.audit.record(origin, unlinked.method("provider_webhook"));
        tracing::info!(user_id = account.user_id, provider = %account.provider, "account unlinked by its provider");
        Ok(())
    }
}
