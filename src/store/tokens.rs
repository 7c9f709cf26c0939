//! Refresh-token rows (rotation, families, blacklist) and hashed opaque tokens. A refresh token
//! gets its row when it is spent (rotation) or blacklisted, never when it is issued: a token
//! without a row is live unless its session or its user's revocation point says otherwise.

use chrono::{DateTime, Utc};
use entity::{auth_token, refresh_token, revoked_session, user};
use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
    TransactionSession, TransactionTrait,
    sea_query::{Expr, OnConflict, Query, SimpleExpr},
};

use super::{StoreError, is_unique_violation, standing::Standing};

pub struct NewRefresh<'a> {
    pub jti: &'a str,
    pub user_id: i32,
    pub family: &'a str,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The row of a new, live refresh token.
pub(crate) fn new_row(new: &NewRefresh<'_>) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        jti: Set(new.jti.to_owned()),
        user_id: Set(new.user_id),
        family: Set(new.family.to_owned()),
        issued_at: Set(new.issued_at),
        expires_at: Set(new.expires_at),
        rotated_at: Set(None),
        replaced_by: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
}

/// The row of a token spent by rotation to `successor`, issued at `rotated_at`: the row a token
/// without one is claimed with (the jti's unique index lets exactly one rotation have it).
pub(crate) fn spent_row(
    token: &NewRefresh<'_>,
    successor: &str,
    rotated_at: DateTime<Utc>,
) -> refresh_token::ActiveModel {
    let mut row = new_row(token);
    row.rotated_at = Set(Some(rotated_at));
    row.replaced_by = Set(Some(successor.to_owned()));
    row
}

pub async fn insert_refresh(
    db: &impl ConnectionTrait,
    new: NewRefresh<'_>,
) -> Result<refresh_token::Model, StoreError> {
    Ok(new_row(&new).insert(db).await?)
}

/// Records a refresh token we signed but never stored (one made by a simplejwt deployment sharing
/// the HS256 key): a family of its own. A concurrent insert of the same jti is not an error.
pub async fn adopt_refresh(db: &impl ConnectionTrait, new: NewRefresh<'_>) -> Result<refresh_token::Model, StoreError> {
    let jti = new.jti.to_owned();
    match insert_refresh(db, new).await {
        Err(StoreError::Db(e)) if is_unique_violation(&e) => find_refresh(db, &jti)
            .await?
            .ok_or(StoreError::NotFound("refresh token")),
        other => other,
    }
}

pub async fn find_refresh(db: &impl ConnectionTrait, jti: &str) -> Result<Option<refresh_token::Model>, StoreError> {
    Ok(super::unique(
        refresh_token::Entity::find().filter(refresh_token::Column::Jti.eq(jti)),
        db,
    )
    .await?)
}

/// True for a refresh row whose session was not revoked: a claim carries it, so a rotation that
/// raced a revocation and stored a successor cannot have that successor claimed later.
pub(crate) fn session_not_revoked() -> SimpleExpr {
    refresh_token::Column::Family.not_in_subquery(
        Query::select()
            .column(revoked_session::Column::Sid)
            .from(revoked_session::Entity)
            .to_owned(),
    )
}

/// Those of `sids` whose session was revoked.
pub async fn revoked_among(db: &impl ConnectionTrait, sids: &[&str]) -> Result<HashSet<String>, StoreError> {
    if sids.is_empty() {
        return Ok(HashSet::new());
    }
    Ok(revoked_session::Entity::find()
        .select_only()
        .column(revoked_session::Column::Sid)
        .filter(revoked_session::Column::Sid.is_in(sids.iter().copied()))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The standing of those of `user_ids` that exist, read now: a rotation's own check, which the
/// cached standing of the request may be up to `cache_ttl` behind.
pub async fn standings(db: &impl ConnectionTrait, user_ids: &[i32]) -> Result<HashMap<i32, Standing>, StoreError> {
    let rows: Vec<(i32, bool, Option<DateTime<Utc>>)> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column(user::Column::IsActive)
        .column(user::Column::TokensValidAfter)
        .filter(user::Column::Id.is_in(user_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, active, point)| {
            let valid_after = point.map(|p| p.timestamp());
            (id, Standing::Present { active, valid_after })
        })
        .collect())
}

/// Blacklists one token (simplejwt's `BlacklistedToken`): a revoked row for a token that had
/// none; a token that has a row keeps it (its session's revocation covers it).
pub async fn record_revoked(
    db: &impl ConnectionTrait,
    token: NewRefresh<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut row = new_row(&token);
    row.revoked_at = Set(Some(now));
    // "Update jti to itself": the one upsert spelling SQLite, PostgreSQL and MariaDB all take.
    refresh_token::Entity::insert(row)
        .on_conflict(
            OnConflict::column(refresh_token::Column::Jti)
                .update_column(refresh_token::Column::Jti)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Marks the live row `jti` as spent by rotation to `successor`, only if it is still live. True
/// when this call won: of concurrent refreshes of one token exactly one gets `true`.
pub async fn claim_rotation(
    db: &impl ConnectionTrait,
    jti: &str,
    successor: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .col_expr(refresh_token::Column::ReplacedBy, Expr::value(successor))
        .filter(refresh_token::Column::Jti.eq(jti))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .filter(session_not_revoked())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

fn revoke(condition: Condition, now: DateTime<Utc>) -> sea_orm::UpdateMany<refresh_token::Entity> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(condition)
        .filter(refresh_token::Column::RevokedAt.is_null())
}

pub async fn revoke_refresh(db: &impl ConnectionTrait, jti: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    revoke(Condition::all().add(refresh_token::Column::Jti.eq(jti)), now)
        .exec(db)
        .await?;
    Ok(())
}

pub async fn revoke_family(db: &impl ConnectionTrait, family: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(
        revoke(Condition::all().add(refresh_token::Column::Family.eq(family)), now)
            .exec(db)
            .await?
            .rows_affected,
    )
}

/// Moves the user's revocation point to `now` (every token issued up to this second dies), then
/// blacklists the refresh rows and deletes the opaque keys. The point alone is what makes it
/// hold: a successor a concurrent rotation stores after the sweep was issued before the point.
pub async fn revoke_user(
    db: &(impl ConnectionTrait + TransactionTrait),
    user_id: i32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // The point and its change record commit together; the sweep after is not in that
    // transaction: holding the user row while taking refresh rows deadlocked (MariaDB) with a
    // rotation, which holds its refresh row while its successor's foreign key reads the user.
    let txn = db.begin().await?;
    user::Entity::update_many()
        .col_expr(user::Column::TokensValidAfter, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    super::standing::record_changes(&txn, &[user_id], now).await?;
    txn.commit().await?;
    sweep_user(db, user_id, now).await
}

/// Blacklists the user's refresh rows and deletes its opaque keys, after its revocation point
/// moved (`revoke_user`, or `users::set_active` disabling).
pub(crate) async fn sweep_user(db: &impl ConnectionTrait, user_id: i32, now: DateTime<Utc>) -> Result<(), StoreError> {
    revoke(Condition::all().add(refresh_token::Column::UserId.eq(user_id)), now)
        .exec(db)
        .await?;
    delete_user_auth_tokens(db, user_id).await
}

/// Ends the session `sid` (one login's refresh family): a row in `revoked_sessions`, which every
/// later use of its tokens reads, then its refresh rows blacklisted. Revoking twice is fine.
pub async fn revoke_session(
    db: &impl ConnectionTrait,
    sid: &str,
    user_id: i32,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = revoked_session::ActiveModel {
        sid: Set(sid.to_owned()),
        user_id: Set(user_id),
        revoked_at: Set(now),
        expires_at: Set(expires_at),
    };
    // "Update sid to itself": the one upsert spelling SQLite, PostgreSQL and MariaDB all take.
    revoked_session::Entity::insert(row)
        .on_conflict(
            OnConflict::column(revoked_session::Column::Sid)
                .update_column(revoked_session::Column::Sid)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    revoke_family(db, sid, now).await?;
    Ok(())
}

pub async fn is_session_revoked(db: &impl ConnectionTrait, sid: &str) -> Result<bool, StoreError> {
    Ok(revoked_session::Entity::find()
        .select_only()
        .column(revoked_session::Column::Sid)
        .filter(revoked_session::Column::Sid.eq(sid))
        .into_tuple::<String>()
        .one(db)
        .await?
        .is_some())
}

/// Deletes refresh rows that expired before `before`: a token that old fails on `exp` anyway.
/// Revoked sessions whose tokens have all expired go too.
pub async fn purge_expired(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    revoked_session::Entity::delete_many()
        .filter(revoked_session::Column::ExpiresAt.lt(before))
        .exec(db)
        .await?;
    Ok(refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::ExpiresAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

pub async fn insert_auth_token(db: &impl ConnectionTrait, key_hash: &str, user_id: i32) -> Result<(), StoreError> {
    auth_token::ActiveModel {
        key_hash: Set(key_hash.to_owned()),
        user_id: Set(user_id),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn find_auth_token(
    db: &impl ConnectionTrait,
    key_hash: &str,
) -> Result<Option<auth_token::Model>, StoreError> {
    Ok(auth_token::Entity::find()
        .filter(auth_token::Column::KeyHash.eq(key_hash))
        .one(db)
        .await?)
}

pub async fn delete_auth_token(db: &impl ConnectionTrait, key_hash: &str) -> Result<(), StoreError> {
    auth_token::Entity::delete_many()
        .filter(auth_token::Column::KeyHash.eq(key_hash))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete_user_auth_tokens(db: &impl ConnectionTrait, user_id: i32) -> Result<(), StoreError> {
    auth_token::Entity::delete_many()
        .filter(auth_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn list_user_refresh(
    db: &impl ConnectionTrait,
    user_id: i32,
) -> Result<Vec<refresh_token::Model>, StoreError> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::UserId.eq(user_id))
        .all(db)
        .await?)
}

pub async fn list_user_auth_tokens(
    db: &impl ConnectionTrait,
    user_id: i32,
) -> Result<Vec<auth_token::Model>, StoreError> {
    Ok(auth_token::Entity::find()
        .filter(auth_token::Column::UserId.eq(user_id))
        .all(db)
        .await?)
}
