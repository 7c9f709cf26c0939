//! What a database error means for the caller, read from its SQLSTATE (PostgreSQL), its error
//! number (MySQL/MariaDB) or its result code (SQLite); never from its message, whose wording
//! changes with versions, drivers and locales.

use std::ops::Deref;

use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A unique index refused the row: the value is taken (or a concurrent writer took it).
    UniqueViolation,
    /// Writers collided (deadlock, serialization failure, lock timeout, busy SQLite file): the
    /// same transaction may succeed if run again.
    Contention,
    Other,
}

pub(crate) fn fault(e: &DbErr) -> Fault {
    if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return Fault::UniqueViolation;
    }
    let Some(error) = database_error(e) else {
        return Fault::Other;
    };
    if let Some(mysql) = error.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT.
        return match mysql.number() {
            1213 | 1205 => Fault::Contention,
            _ => Fault::Other,
        };
    }
    let code = error.code().unwrap_or_default();
    if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // The primary result code is the low byte of the extended one: SQLITE_BUSY (5, with
        // BUSY_SNAPSHOT, BUSY_TIMEOUT…) and SQLITE_LOCKED (6).
        return match code.parse::<i32>().map(|c| c & 0xff) {
            Ok(5 | 6) => Fault::Contention,
            _ => Fault::Other,
        };
    }
    // PostgreSQL: serialization_failure, deadlock_detected, lock_not_available.
    match code.deref() {
        "40001" | "40P01" | "55P03" => Fault::Contention,
        _ => Fault::Other,
    }
}

fn database_error(e: &DbErr) -> Option<&(dyn sqlx::error::DatabaseError + 'static)> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match e.deref() {
            sqlx::Error::Database(error) => Some(error.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

    use super::*;

    async fn open(path: &std::path::Path) -> DatabaseConnection {
        let mut options = ConnectOptions::new(format!("sqlite:{}?mode=rwc", path.display()));
        options
            .max_connections(1)
            .map_sqlx_sqlite_opts(|o| o.busy_timeout(Duration::ZERO));
        Database::connect(options).await.unwrap()
    }

    #[tokio::test]
    async fn sqlite_faults_are_told_by_their_result_codes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults.db");
        let (first, second) = (open(&path).await, open(&path).await);
        first
            .execute_unprepared("CREATE TABLE t (name TEXT UNIQUE)")
            .await
            .unwrap();
        first.execute_unprepared("INSERT INTO t VALUES ('a')").await.unwrap();

        let taken = first
            .execute_unprepared("INSERT INTO t VALUES ('a')")
            .await
            .unwrap_err();
        assert_eq!(fault(&taken), Fault::UniqueViolation, "{taken}");

        first.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
        let busy = second
            .execute_unprepared("INSERT INTO t VALUES ('b')")
            .await
            .unwrap_err();
        assert_eq!(fault(&busy), Fault::Contention, "{busy}");
        first.execute_unprepared("ROLLBACK").await.unwrap();

        let other = first
            .execute_unprepared("INSERT INTO nowhere VALUES (1)")
            .await
            .unwrap_err();
        assert_eq!(fault(&other), Fault::Other, "{other}");
    }
}
