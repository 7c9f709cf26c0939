//! `standing_changes`: one row each time a user's standing changes (revocation point moved,
//! disabled or enabled, deleted). Every instance reads the rows of the last minute once per
//! `cache_ttl` and forgets its copies of those users, so the standing behind each token check can
//! be kept for a minute instead of being read again every `cache_ttl`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StandingChanges::Table)
                    .col(big_pk_auto(StandingChanges::Id))
                    // No foreign key: a deletion is a change too, recorded after the user is gone.
                    .col(integer(StandingChanges::UserId))
                    .col(timestamp_with_time_zone(StandingChanges::ChangedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_standing_changes_changed_at")
                    .table(StandingChanges::Table)
                    .col(StandingChanges::ChangedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StandingChanges::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum StandingChanges {
    Table,
    Id,
    UserId,
    ChangedAt,
}
