//! Single-use keys (email confirmation, password reset), looked up by hash.

use chrono::{DateTime, Utc};
use entity::one_time_key;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};

use super::StoreError;

pub const CONFIRM_EMAIL: &str = "confirm_email";
pub const RESET_PASSWORD: &str = "reset_password";

pub struct NewKey<'a> {
    pub purpose: &'a str,
    pub user_id: i32,
    pub email: Option<&'a str>,
    pub key_hash: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: &impl ConnectionTrait, new: NewKey<'_>) -> Result<(), StoreError> {
    one_time_key::ActiveModel {
        purpose: Set(new.purpose.to_owned()),
        user_id: Set(new.user_id),
        email: Set(new.email.map(str::to_owned)),
        key_hash: Set(new.key_hash.to_owned()),
        created_at: Set(Utc::now()),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Marks the key used and returns it, only if it is unused, unexpired and for `purpose`: of two
/// concurrent uses exactly one succeeds.
pub async fn consume(
    db: &impl ConnectionTrait,
    purpose: &str,
    key_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<one_time_key::Model>, StoreError> {
    let claimed = one_time_key::Entity::update_many()
        .col_expr(one_time_key::Column::UsedAt, Expr::value(now))
        .filter(one_time_key::Column::KeyHash.eq(key_hash))
        .filter(one_time_key::Column::Purpose.eq(purpose))
        .filter(one_time_key::Column::UsedAt.is_null())
        .filter(one_time_key::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    Ok(one_time_key::Entity::find()
        .filter(one_time_key::Column::KeyHash.eq(key_hash))
        .one(db)
        .await?)
}

/// Voids a user's unused keys of `purpose` (a new reset mail makes older ones useless).
pub async fn void_for_user(
    db: &impl ConnectionTrait,
    purpose: &str,
    user_id: i32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    one_time_key::Entity::update_many()
        .col_expr(one_time_key::Column::UsedAt, Expr::value(now))
        .filter(one_time_key::Column::UserId.eq(user_id))
        .filter(one_time_key::Column::Purpose.eq(purpose))
        .filter(one_time_key::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
