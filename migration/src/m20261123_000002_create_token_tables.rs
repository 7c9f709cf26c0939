//! Refresh-token families (rotation, blacklist) and hashed DRF opaque tokens.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(pk_auto(RefreshTokens::Id))
                    .col(string_len_uniq(RefreshTokens::Jti, 64))
                    .col(integer(RefreshTokens::UserId))
                    .col(string_len(RefreshTokens::Family, 64))
                    .col(timestamp_with_time_zone(RefreshTokens::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RotatedAt))
                    .col(string_len_null(RefreshTokens::ReplacedBy, 64))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_refresh_tokens_user_id", RefreshTokens::UserId),
            ("ix_refresh_tokens_family", RefreshTokens::Family),
            ("ix_refresh_tokens_expires_at", RefreshTokens::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RefreshTokens::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuthTokens::Table)
                    .col(pk_auto(AuthTokens::Id))
                    .col(string_len_uniq(AuthTokens::KeyHash, 64))
                    .col(integer(AuthTokens::UserId))
                    .col(timestamp_with_time_zone(AuthTokens::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthTokens::Table, AuthTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_auth_tokens_user_id")
                    .table(AuthTokens::Table)
                    .col(AuthTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    Jti,
    UserId,
    Family,
    IssuedAt,
    ExpiresAt,
    RotatedAt,
    ReplacedBy,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuthTokens {
    Table,
    Id,
    KeyHash,
    UserId,
    CreatedAt,
}
