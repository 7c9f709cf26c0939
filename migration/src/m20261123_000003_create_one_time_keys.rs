//! Email-confirmation and password-reset keys (hashed, single use, expiring).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OneTimeKeys::Table)
                    .col(pk_auto(OneTimeKeys::Id))
                    .col(string_len(OneTimeKeys::Purpose, 32))
                    .col(integer(OneTimeKeys::UserId))
                    .col(string_null(OneTimeKeys::Email))
                    .col(string_len_uniq(OneTimeKeys::KeyHash, 64))
                    .col(timestamp_with_time_zone(OneTimeKeys::CreatedAt))
                    .col(timestamp_with_time_zone(OneTimeKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OneTimeKeys::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OneTimeKeys::Table, OneTimeKeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OneTimeKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum OneTimeKeys {
    Table,
    Id,
    Purpose,
    UserId,
    Email,
    KeyHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
