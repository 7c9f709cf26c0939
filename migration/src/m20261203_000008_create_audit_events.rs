//! The audit trail: one row per security event (sign-ins, revocations, account changes, admin
//! actions), never holding a secret.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(string_len(AuditEvents::Event, 64))
                    // No foreign keys: the trail outlives the users it names.
                    .col(integer_null(AuditEvents::UserId))
                    .col(integer_null(AuditEvents::ActorId))
                    .col(string_len_null(AuditEvents::Provider, 32))
                    .col(string_len_null(AuditEvents::Method, 32))
                    .col(string_len_null(AuditEvents::Outcome, 64))
                    .col(string_len_null(AuditEvents::ClientIp, 45))
                    .col(string_len_null(AuditEvents::UserAgent, 255))
                    .col(string_len_null(AuditEvents::RequestId, 64))
                    .col(text_null(AuditEvents::Detail))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("ix_audit_events_at", AuditEvents::At),
            ("ix_audit_events_user_id", AuditEvents::UserId),
            ("ix_audit_events_event", AuditEvents::Event),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Event,
    UserId,
    ActorId,
    Provider,
    Method,
    Outcome,
    ClientIp,
    UserAgent,
    RequestId,
    Detail,
}
