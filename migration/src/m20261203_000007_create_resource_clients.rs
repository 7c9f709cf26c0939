//! Resource-server clients allowed to introspect tokens (`authbridge client add`); secrets hashed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ResourceClients::Table)
                    .col(pk_auto(ResourceClients::Id))
                    .col(string_len_uniq(ResourceClients::ClientId, 64))
                    .col(string_len(ResourceClients::Name, 150))
                    .col(string_len(ResourceClients::SecretHash, 64))
                    .col(timestamp_with_time_zone(ResourceClients::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ResourceClients::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ResourceClients {
    Table,
    Id,
    ClientId,
    Name,
    SecretHash,
    CreatedAt,
}
