//! The audit trail's rows: batched inserts, filtered pages, purge by age.

use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{StoreError, pow2_chunks};

/// In one transaction, cut into a few statement sizes (`pow2_chunks`): a batch of any size
/// then reuses the statements already prepared.
pub async fn insert_many(db: &DatabaseConnection, rows: &[audit_event::ActiveModel]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let txn = db.begin().await?;
    for chunk in pow2_chunks(rows) {
        audit_event::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// What to read back; every part optional.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub user_id: Option<i32>,
    pub event: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One page (1-based) of matching events, newest first, and how many match in all.
pub async fn page(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    page: u64,
    page_size: u64,
) -> Result<(Vec<audit_event::Model>, u64), StoreError> {
    let mut query = audit_event::Entity::find();
    if let Some(user_id) = filter.user_id {
        query = query.filter(audit_event::Column::UserId.eq(user_id));
    }
    if let Some(event) = &filter.event {
        query = query.filter(audit_event::Column::Event.eq(event.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_event::Column::At.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_event::Column::At.lt(until));
    }
    let pages = query
        .order_by_desc(audit_event::Column::At)
        .order_by_desc(audit_event::Column::Id)
        .paginate(db, page_size);
    let total = pages.num_items().await?;
    let rows = pages.fetch_page(page.saturating_sub(1)).await?;
    Ok((rows, total))
}

/// Deletes events older than `before` (the retention task).
pub async fn purge_before(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(audit_event::Entity::delete_many()
        .filter(audit_event::Column::At.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
