//! A user's standing: what every token check needs of its user (that the user exists, is active,
//! and the revocation point), and the feed of changes to it (`standing_changes`). Every function
//! here that changes a standing records the change in the same transaction, so that other
//! instances, which keep standings for a minute, forget theirs within one `cache_ttl`.

use chrono::{DateTime, Utc};
use entity::{standing_change, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Deleted: its tokens are invalid.
    Gone,
    Present {
        active: bool,
        /// The revocation point, in whole seconds: tokens issued at or before it are dead.
        valid_after: Option<i64>,
    },
}

impl Standing {
    pub fn of(user: &user::Model) -> Self {
        Standing::Present {
            active: user.is_active,
            valid_after: user.tokens_valid_after.map(|point| point.timestamp()),
        }
    }

    /// Whether a token issued at `iat` (seconds) is dead by the revocation point. The point is
    /// kept to the second: a token issued in the very second of a revocation is dead too (new
    /// tokens are not issued in that second, see `Tokens::wait_past_revocation`).
    pub fn revokes(&self, iat: i64) -> bool {
        matches!(self, Standing::Present { valid_after: Some(point), .. } if iat <= *point)
    }
}

/// The standing of user `id`, read now: two columns of one row.
pub async fn read(db: &impl ConnectionTrait, id: i32) -> Result<Standing, StoreError> {
    let row: Option<(bool, Option<DateTime<Utc>>)> = user::Entity::find_by_id(id)
        .select_only()
        .column(user::Column::IsActive)
        .column(user::Column::TokensValidAfter)
        .into_tuple()
        .one(db)
        .await?;
    Ok(match row {
        None => Standing::Gone,
        Some((active, point)) => Standing::Present {
            active,
            valid_after: point.map(|p| p.timestamp()),
        },
    })
}

/// Records that the standing of each of `user_ids` changed `at`.
pub async fn record_changes(db: &impl ConnectionTrait, user_ids: &[i32], at: DateTime<Utc>) -> Result<(), StoreError> {
    for chunk in user_ids.chunks(super::BATCH) {
        standing_change::Entity::insert_many(chunk.iter().map(|&user_id| standing_change::ActiveModel {
            user_id: Set(user_id),
            changed_at: Set(at),
            ..Default::default()
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// The changes recorded at or after `since`, oldest first, as (change id, user id).
pub async fn changes_since(db: &impl ConnectionTrait, since: DateTime<Utc>) -> Result<Vec<(i64, i32)>, StoreError> {
    Ok(standing_change::Entity::find()
        .select_only()
        .column(standing_change::Column::Id)
        .column(standing_change::Column::UserId)
        .filter(standing_change::Column::ChangedAt.gte(since))
        .order_by_asc(standing_change::Column::Id)
        .into_tuple()
        .all(db)
        .await?)
}

/// Deletes the changes recorded before `before` (every instance has read them long since).
pub async fn purge_changes(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(standing_change::Entity::delete_many()
        .filter(standing_change::Column::ChangedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
