//! An index for the case-insensitive lookup of `users.email` (`LOWER(email) = ?`), which every
//! new social login with an email and every password reset makes: without it, each one scanned
//! the whole users table. SQLite and PostgreSQL index the expression itself; MariaDB cannot
//! (an expression index needs a generated column there) and keeps the scan.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::MySql {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX ix_users_email_lower ON users (LOWER(email))")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::MySql {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX ix_users_email_lower")
            .await?;
        Ok(())
    }
}
