//! The writes to rows that `Cached` keeps copies of: each forgets (or replaces) the copies it
//! changes, so no caller has to remember to. Other processes (another instance, the CLI) are
//! seen within `cache_ttl`, and standings through the feed of standing changes.

use entity::{site, social_account, user};
use sea_orm::DatabaseConnection;

use super::{StoreError, WriteTurn, admin, cache::Cached, sites, social, tokens, users};
use crate::{
    config::AppSettings,
    providers::{ProviderUser, SocialApp},
};

impl Cached {
    /// The write turn of the database (SQLite's one writer), for its other writers.
    pub fn write_turn(&self) -> WriteTurn {
        self.turn.clone()
    }

    /// The database behind the caches, for the reads nothing caches.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The user `id` as it is in the database now (a password check must not use a copy), kept
    /// as the cached copy too.
    pub async fn user_now(&self, id: i32) -> Result<user::Model, StoreError> {
        let epoch = self.user_epoch();
        let user = users::get(&self.db, id).await?;
        self.remember_user(&user, epoch);
        Ok(user)
    }

    /// `users::update_profile`, the copy replaced by the new row.
    pub async fn update_profile(
        &self,
        id: i32,
        username: Option<&str>,
        first_name: Option<&str>,
        last_name: Option<&str>,
    ) -> Result<user::Model, StoreError> {
        let epoch = self.user_epoch();
        let updated = users::update_profile(&self.db, id, username, first_name, last_name).await?;
        // Kept unless this process forgot the user while writing (a revocation, say).
        self.remember_user(&updated, epoch);
        Ok(updated)
    }

    pub async fn set_email_verified(&self, user_id: i32, email: &str) -> Result<(), StoreError> {
        users::set_email_verified(&self.db, user_id, email).await?;
        self.forget_user(user_id);
        Ok(())
    }

    /// `users::set_active`: disabling also revokes every token of the user.
    pub async fn set_active(&self, id: i32, active: bool) -> Result<(), StoreError> {
        let done = users::set_active(&self.db, id, active).await;
        self.forget_user(id);
        done
    }

    /// `users::delete`: the user with its accounts, emails and tokens.
    pub async fn delete_user(&self, id: i32) -> Result<(), StoreError> {
        let done = users::delete(&self.db, id).await;
        self.forget_user(id);
        done
    }

    /// `tokens::revoke_user`: moves the user's revocation point to now.
    pub async fn revoke_user(&self, id: i32) -> Result<(), StoreError> {
        let done = tokens::revoke_user(&self.db, id, chrono::Utc::now()).await;
        self.forget_user(id);
        done
    }

    /// `social::upsert_login`: the account's row changed (extra_data, last_login) or was made.
    pub async fn upsert_login(
        &self,
        provider: &str,
        account: &ProviderUser,
        existing: Option<social_account::Model>,
    ) -> Result<user::Model, StoreError> {
        let user = social::upsert_login(&self.db, &self.turn, provider, account, existing).await;
        self.forget_account(provider, &account.uid);
        user
    }

    /// `social::connect_account`.
    pub async fn connect_account(
        &self,
        user_id: i32,
        provider: &str,
        account: &ProviderUser,
    ) -> Result<(), StoreError> {
        let done = social::connect_account(&self.db, user_id, provider, account).await;
        self.forget_account(provider, &account.uid);
        done
    }

    /// `social::delete_account` of `account`.
    pub async fn delete_account(&self, account: &social_account::Model) -> Result<(), StoreError> {
        let done = social::delete_account(&self.db, account.id).await;
        self.forget_account(&account.provider, &account.uid);
        done
    }

    /// Every site, for the admin (not cached: admin pages read the table as it is).
    pub async fn list_sites(&self) -> Result<Vec<site::Model>, StoreError> {
        sites::list(&self.db).await
    }

    /// Every social app, for the admin (not cached).
    pub async fn list_apps(&self) -> Result<Vec<SocialApp>, StoreError> {
        social::list_apps(&self.db).await
    }

    /// Readiness: the database answers.
    pub async fn ping(&self) -> Result<(), sea_orm::DbErr> {
        super::ping(&self.db).await
    }

    /// `provider_tokens::merge_extra_data`: fields merged into the account's `extra_data`.
    pub async fn merge_extra_data(
        &self,
        account: &social_account::Model,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StoreError> {
        let done = super::provider_tokens::merge_extra_data(&self.db, account, fields).await;
        self.forget_account(&account.provider, &account.uid);
        done
    }

    pub async fn insert_site(&self, domain: &str, name: &str) -> Result<site::Model, StoreError> {
        let site = sites::insert(&self.db, domain, name).await;
        self.forget_sites_and_apps();
        site
    }

    pub async fn update_site(&self, id: i32, domain: &str, name: &str) -> Result<site::Model, StoreError> {
        let site = admin::update_site(&self.db, id, domain, name).await;
        self.forget_sites_and_apps();
        site
    }

    pub async fn delete_site(&self, id: i32) -> Result<(), StoreError> {
        let done = admin::delete_site(&self.db, id).await;
        self.forget_sites_and_apps();
        done
    }

    pub async fn upsert_app(&self, app: social::NewSocialApp) -> Result<SocialApp, StoreError> {
        let saved = social::upsert_app(&self.db, &self.turn, app).await;
        self.forget_sites_and_apps();
        saved
    }

    /// `provider_tokens::set_app_settings` of the app just saved; returns it with them.
    pub async fn set_app_settings(&self, mut app: SocialApp, settings: AppSettings) -> Result<SocialApp, StoreError> {
        let done = super::provider_tokens::set_app_settings(&self.db, app.id, &settings).await;
        self.forget_sites_and_apps();
        done?;
        app.settings = settings;
        Ok(app)
    }

    pub async fn delete_social_app(&self, id: i32) -> Result<(), StoreError> {
        let done = admin::delete_social_app(&self.db, id).await;
        self.forget_sites_and_apps();
        done
    }
}
