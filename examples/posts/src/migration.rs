//! The example's own schema (independent of authbridge's): one `posts` table.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreatePosts)]
    }
}

#[derive(DeriveMigrationName)]
struct CreatePosts;

#[async_trait::async_trait]
impl MigrationTrait for CreatePosts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Posts::Table)
                    .col(pk_auto(Posts::Id))
                    .col(big_integer(Posts::AuthorId))
                    .col(string_len(Posts::AuthorUsername, 150))
                    .col(string_len(Posts::Title, 200))
                    .col(text(Posts::Text))
                    .col(string_len_null(Posts::Photo, 100))
                    .col(timestamp_with_time_zone(Posts::CreatedAt))
                    .col(timestamp_with_time_zone(Posts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("posts_created_at")
                    .table(Posts::Table)
                    .col(Posts::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Posts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Posts {
    Table,
    Id,
    AuthorId,
    AuthorUsername,
    Title,
    Text,
    Photo,
    CreatedAt,
    UpdatedAt,
}
