//! `signing_keys`: JWT signing keys, each with a `kid`; the newest active one signs.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub kid: String,
    /// JOSE algorithm name, `EdDSA`.
    pub algorithm: String,
    /// Base64 PKCS#8 DER of the private key.
    #[sea_orm(column_type = "Text")]
    pub private_key: String,
    /// Base64url raw public key (the JWK `x`).
    pub public_key: String,
    pub created_at: DateTimeUtc,
    /// Set when a newer key took over signing; the key stays published until tokens expire.
    pub retired_at: Option<DateTimeUtc>,
    /// Set by `authbridge keys revoke`: the key neither signs nor verifies any more.
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
