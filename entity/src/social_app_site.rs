//! `social_app_sites`: which sites a social app is enabled on (allauth's `SocialApp.sites`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_app_sites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub social_app_id: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
