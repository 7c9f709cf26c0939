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
        unless_mariadb(manager, "CREATE INDEX ix_users_email_lower ON users (LOWER(email))").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        unless_mariadb(manager, "DROP INDEX ix_users_email_lower").await
    }
}

async fn unless_mariadb(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::MySql {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}
