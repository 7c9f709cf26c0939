//! `refresh_tokens`: every refresh token issued (simplejwt's OutstandingToken + BlacklistedToken),
//! grouped in families: all tokens descended by rotation from one login.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub jti: String,
    pub user_id: i32,
    pub family: String,
    pub issued_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set when the token was spent by a refresh with rotation.
    pub rotated_at: Option<DateTimeUtc>,
    /// The jti of the token that replaced it.
    pub replaced_by: Option<String>,
    /// Set when blacklisted (logout, reuse detection, password change, disabling the user).
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
