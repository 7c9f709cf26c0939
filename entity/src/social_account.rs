//! `social_accounts`: allauth's `SocialAccount`, unique on (provider, uid).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "social_accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub provider: String,
    pub uid: String,
    /// The provider's full user-info JSON from the last login.
    pub extra_data: Json,
    pub date_joined: DateTimeUtc,
    pub last_login: DateTimeUtc,
    /// The social app (`social_apps.id`) the account last signed in through; `None` for rows
    /// older than the column.
    pub social_app_id: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
