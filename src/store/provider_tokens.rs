//! What Naver, Apple and Google need stored beside allauth's tables: per-app provider settings
//! (`social_apps.settings`) and the provider token kept per social account (`social_tokens`) to
//! revoke the link later. A kept token is a secret: it leaves this module as a `SecretString`.

use chrono::Utc;
use entity::{social_account, social_app, social_token};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr, sea_query::OnConflict};
use secrecy::{ExposeSecret, SecretString};

use super::StoreError;
use crate::providers::{AppSettings, KeptToken};

/// Replaces the provider settings of app `app_id`.
pub async fn set_app_settings(
    db: &impl ConnectionTrait,
    app_id: i32,
    settings: &AppSettings,
) -> Result<(), StoreError> {
    let done = social_app::Entity::update_many()
        .col_expr(social_app::Column::Settings, Expr::value(settings.to_json()))
        .filter(social_app::Column::Id.eq(app_id))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound("social app"));
    }
    Ok(())
}

/// Keeps `kept` for the account `uid` of `provider` (replacing an older one). No such account
/// (deleted meanwhile): nothing to keep.
pub async fn keep(db: &impl ConnectionTrait, provider: &str, uid: &str, kept: &KeptToken) -> Result<(), StoreError> {
    let Some(account) = super::social::find_account(db, provider, uid).await? else {
        return Ok(());
    };
    let row = social_token::ActiveModel {
        account_id: Set(account.id),
        token: Set(kept.token.expose_secret().to_owned()),
        token_type_hint: Set(kept.hint.to_owned()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    social_token::Entity::insert(row)
        .on_conflict(
            OnConflict::column(social_token::Column::AccountId)
                .update_columns([
                    social_token::Column::Token,
                    social_token::Column::TokenTypeHint,
                    social_token::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The token kept for social account `account_id`, if any.
pub async fn find_kept(db: &impl ConnectionTrait, account_id: i32) -> Result<Option<KeptToken>, StoreError> {
    let row = social_token::Entity::find()
        .filter(social_token::Column::AccountId.eq(account_id))
        .one(db)
        .await?;
    Ok(row.map(|r| KeptToken {
        token: SecretString::from(r.token),
        hint: if r.token_type_hint == "access_token" {
            "access_token"
        } else {
            "refresh_token"
        },
    }))
}

/// Merges `fields` into the `extra_data` of account `account_id` (Apple's email notifications).
pub async fn merge_extra_data(
    db: &impl ConnectionTrait,
    account: &social_account::Model,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Result<(), StoreError> {
    let mut extra = account.extra_data.clone();
    if let Some(object) = extra.as_object_mut() {
        object.extend(fields);
    } else {
        extra = serde_json::Value::Object(fields);
    }
    social_account::Entity::update_many()
        .col_expr(social_account::Column::ExtraData, Expr::value(extra))
        .filter(social_account::Column::Id.eq(account.id))
        .exec(db)
        .await?;
    Ok(())
}
