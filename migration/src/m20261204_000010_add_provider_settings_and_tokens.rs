//! Naver, Apple and Google (issue 22): per-app provider settings (`social_apps.settings`, allauth's
//! `SocialApp.settings`: Apple's team and key ids, Naver's email-linking opt-in) and the provider
//! tokens kept to revoke a link later (`social_tokens`, allauth's `SocialToken`): Apple's refresh
//! token, Naver's token. One row per social account; it goes with the account (ON DELETE CASCADE).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SocialApps {
    Table,
    Settings,
}

#[derive(DeriveIden)]
enum SocialAccounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SocialTokens {
    Table,
    Id,
    AccountId,
    Token,
    TokenTypeHint,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SocialApps::Table)
                    // A bounded string, not TEXT: MySQL gives TEXT no default.
                    .add_column(string_len(SocialApps::Settings, 2000).default("{}"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SocialTokens::Table)
                    .col(pk_auto(SocialTokens::Id))
                    .col(integer_uniq(SocialTokens::AccountId))
                    .col(text(SocialTokens::Token))
                    .col(string_len(SocialTokens::TokenTypeHint, 32))
                    .col(timestamp_with_time_zone(SocialTokens::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SocialTokens::Table, SocialTokens::AccountId)
                            .to(SocialAccounts::Table, SocialAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SocialTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SocialApps::Table)
                    .drop_column(SocialApps::Settings)
                    .to_owned(),
            )
            .await
    }
}
