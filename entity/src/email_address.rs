//! `email_addresses`: allauth's `EmailAddress`, one row per address of a user.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_addresses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    /// Stored lower-cased; unique, as allauth's `ACCOUNT_UNIQUE_EMAIL`.
    #[sea_orm(unique)]
    pub email: String,
    pub verified: bool,
    pub primary: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
