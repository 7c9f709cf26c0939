//! `revoked_sessions`: sessions (refresh families, the `sid` claim) ended by logout or by reuse
//! detection. A token naming a revoked `sid` is dead, whatever its own row says.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revoked_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sid: String,
    pub user_id: i32,
    pub revoked_at: DateTimeUtc,
    /// When no token of the session can be alive any more; the row is purged after.
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
