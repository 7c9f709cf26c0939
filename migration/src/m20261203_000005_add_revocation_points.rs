//! Revocation that needs no sweep: a per-user point (`users.tokens_valid_after`) before which every
//! token of the user is dead, a table of revoked sessions (refresh families), and a revoked state
//! for signing keys (`authbridge keys revoke`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::TokensValidAfter))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .add_column(timestamp_with_time_zone_null(SigningKeys::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedSessions::Table)
                    .col(string_len(RevokedSessions::Sid, 64).primary_key())
                    .col(integer(RevokedSessions::UserId))
                    .col(timestamp_with_time_zone(RevokedSessions::RevokedAt))
                    .col(timestamp_with_time_zone(RevokedSessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RevokedSessions::Table, RevokedSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_revoked_sessions_expires_at")
                    .table(RevokedSessions::Table)
                    .col(RevokedSessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevokedSessions::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .drop_column(SigningKeys::RevokedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::TokensValidAfter)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TokensValidAfter,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RevokedSessions {
    Table,
    Sid,
    UserId,
    RevokedAt,
    ExpiresAt,
}
