//! Which social app (`social_apps.id`) an account came through: Kakao user ids are per app, so
//! the unlink webhook and account deletion must act with that app's admin key. Nullable: rows
//! made before this column are filled at their next login. No foreign key (SQLite cannot add one
//! to an existing table); a deleted app leaves an id that matches no app.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SocialAccounts {
    Table,
    SocialAppId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialAccounts::Table)
                    .add_column(ColumnDef::new(SocialAccounts::SocialAppId).integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialAccounts::Table)
                    .drop_column(SocialAccounts::SocialAppId)
                    .to_owned(),
            )
            .await
    }
}
