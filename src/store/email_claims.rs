//! Who an address belongs to when two accounts claim it: a verified claim wins over an unverified
//! one (the verified owner is never locked out by someone who typed their address), and
//! registrations nobody confirmed expire with their confirmation key.

use chrono::{DateTime, Utc};
use entity::{email_address, one_time_key, social_account, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, TransactionSession,
    TransactionTrait,
    sea_query::{Expr, ExprTrait, Func},
};

use super::{StoreError, one_time};

/// Removes the unverified claim `row` from its account, for a verified owner who signs in. An
/// account left without any address that never signed in (a registration nobody confirmed) is
/// deleted with it: without an address it could otherwise sign in unconfirmed.
pub async fn release_unverified(
    db: &(impl ConnectionTrait + TransactionTrait),
    row: &email_address::Model,
) -> Result<(), StoreError> {
    email_address::Entity::delete_by_id(row.id).exec(db).await?;
    let other = super::users::get(db, row.user_id).await?;
    let addresses_left = email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(other.id))
        .count(db)
        .await?;
    let social_accounts = social_account::Entity::find()
        .filter(social_account::Column::UserId.eq(other.id))
        .count(db)
        .await?;
    if addresses_left == 0 && social_accounts == 0 && other.last_login.is_none() {
        tracing::info!(
            user_id = other.id,
            "unconfirmed registration removed: its address was verified by another login"
        );
        super::users::delete(db, other.id).await?;
        return Ok(());
    }
    user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(""))
        .filter(user::Column::Id.eq(other.id))
        .filter(Expr::expr(Func::lower(Expr::col(user::Column::Email))).eq(row.email.to_lowercase()))
        .exec(db)
        .await?;
    tracing::info!(
        user_id = other.id,
        "unverified address removed: another login verified it"
    );
    Ok(())
}

/// Deletes the users who registered, never confirmed an address nor signed in, and whose last
/// confirmation key expired before `now` (a resent key extends it). Imported or social users
/// have no such key and are never touched. Returns how many were deleted.
pub async fn delete_expired_registrations(
    db: &(impl ConnectionTrait + TransactionTrait),
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let expired: Vec<i32> = one_time_key::Entity::find()
        .select_only()
        .column(one_time_key::Column::UserId)
        .filter(one_time_key::Column::Purpose.eq(one_time::CONFIRM_EMAIL))
        .group_by(one_time_key::Column::UserId)
        .having(Expr::col(one_time_key::Column::ExpiresAt).max().lt(now))
        .into_tuple()
        .all(db)
        .await?;
    let mut deleted = 0;
    for chunk in expired.chunks(super::BATCH) {
        let unconfirmed: Vec<i32> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.is_in(chunk.iter().copied()))
            .filter(user::Column::LastLogin.is_null())
            .into_tuple()
            .all(db)
            .await?;
        let verified: Vec<i32> = email_address::Entity::find()
            .select_only()
            .column(email_address::Column::UserId)
            .filter(email_address::Column::UserId.is_in(unconfirmed.iter().copied()))
            .filter(email_address::Column::Verified.eq(true))
            .into_tuple()
            .all(db)
            .await?;
        let social: Vec<i32> = social_account::Entity::find()
            .select_only()
            .column(social_account::Column::UserId)
            .filter(social_account::Column::UserId.is_in(unconfirmed.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        let doomed: Vec<i32> = unconfirmed
            .into_iter()
            .filter(|id| !verified.contains(id) && !social.contains(id))
            .collect();
        if doomed.is_empty() {
            continue;
        }
        let txn = db.begin().await?;
        deleted += user::Entity::delete_many()
            .filter(user::Column::Id.is_in(doomed.iter().copied()))
            .exec(&txn)
            .await?
            .rows_affected;
        super::standing::record_changes(&txn, &doomed, now).await?;
        txn.commit().await?;
    }
    Ok(deleted)
}
