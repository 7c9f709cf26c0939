//! JWT signing keys.

use chrono::{DateTime, Utc};
use entity::signing_key;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::StoreError;

/// Keys that still verify tokens: active ones, and retired ones retired after `retired_after`;
/// never revoked ones.
pub async fn list_usable(
    db: &impl ConnectionTrait,
    retired_after: DateTime<Utc>,
) -> Result<Vec<signing_key::Model>, StoreError> {
    Ok(signing_key::Entity::find()
        .filter(
            Condition::any()
                .add(signing_key::Column::RetiredAt.is_null())
                .add(signing_key::Column::RetiredAt.gt(retired_after)),
        )
        .filter(signing_key::Column::RevokedAt.is_null())
        .order_by_asc(signing_key::Column::Id)
        .all(db)
        .await?)
}

pub struct NewSigningKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key: String,
    pub public_key: String,
}

pub async fn insert(db: &impl ConnectionTrait, key: NewSigningKey) -> Result<signing_key::Model, StoreError> {
    Ok(signing_key::ActiveModel {
        kid: Set(key.kid),
        algorithm: Set(key.algorithm),
        private_key: Set(key.private_key),
        public_key: Set(key.public_key),
        created_at: Set(Utc::now()),
        retired_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Retires every active key except `kid`.
pub async fn retire_all_but(db: &impl ConnectionTrait, kid: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetiredAt, sea_orm::sea_query::Expr::value(now))
        .filter(signing_key::Column::RetiredAt.is_null())
        .filter(signing_key::Column::Kid.ne(kid))
        .exec(db)
        .await?
        .rows_affected)
}

/// Every key, oldest first (`authbridge keys list`).
pub async fn list_all(db: &impl ConnectionTrait) -> Result<Vec<signing_key::Model>, StoreError> {
    Ok(signing_key::Entity::find()
        .order_by_asc(signing_key::Column::Id)
        .all(db)
        .await?)
}

pub async fn find(db: &impl ConnectionTrait, kid: &str) -> Result<Option<signing_key::Model>, StoreError> {
    Ok(signing_key::Entity::find()
        .filter(signing_key::Column::Kid.eq(kid))
        .one(db)
        .await?)
}

/// Revokes `kid` (retiring it too, if it was signing); revoking twice is fine.
pub async fn revoke(db: &impl ConnectionTrait, kid: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RevokedAt, sea_orm::sea_query::Expr::value(now))
        .filter(signing_key::Column::Kid.eq(kid))
        .filter(signing_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetiredAt, sea_orm::sea_query::Expr::value(now))
        .filter(signing_key::Column::Kid.eq(kid))
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
