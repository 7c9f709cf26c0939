//! `social_apps`: allauth's `SocialApp`, one registered provider application.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_apps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub provider: String,
    pub name: String,
    /// Kakao: the REST API key.
    pub client_id: String,
    pub secret: String,
    /// Kakao: the admin key, used by the unlink webhook and admin calls.
    pub admin_key: String,
    /// JSON array of strings: provider app ids a token may be issued to (Kakao `app_id`).
    #[sea_orm(column_type = "Text")]
    pub app_ids: String,
    /// JSON array of strings: further client keys accepted as id_token audience.
    #[sea_orm(column_type = "Text")]
    pub client_keys: String,
    /// JSON object: provider-specific settings (allauth `SocialApp.settings`): Apple `team_id`,
    /// `key_id`; Naver `link_by_email`.
    pub settings: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
