//! `one_time_keys`: email-confirmation and password-reset keys, stored as SHA-256 hashes, each
//! usable once before it expires.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "one_time_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// `confirm_email` or `reset_password`.
    pub purpose: String,
    pub user_id: i32,
    /// The address being confirmed (confirm_email only).
    pub email: Option<String>,
    #[sea_orm(unique)]
    pub key_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
