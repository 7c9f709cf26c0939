//! SQLite checkpoints off the write path. A WAL checkpoint copies the log's pages back into the
//! database file and syncs both files. Left to SQLite, whichever connection commits once the log
//! has grown past 1,000 pages runs one inside that commit: in the server, the token writer, so
//! every ~4 MiB of log held up every queued login and refresh for the copy and the `fsync`
//! (25-30 ms each; about half the writer's time under the refresh benchmark,
//! docs/performance.md). The server's connections therefore never checkpoint on commit
//! (`Checkpoints::Background`); this task does it beside them.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

use super::WriteTurn;

/// Who copies SQLite's write-ahead log back into the database file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoints {
    /// SQLite itself, on the commit that passes 1,000 pages of log (one-shot CLI commands).
    OnCommit,
    /// `run`, beside the writers (the server).
    Background,
}

impl Checkpoints {
    /// The connection's `wal_autocheckpoint` pragma.
    pub(super) fn autocheckpoint_pages(self) -> &'static str {
        match self {
            Checkpoints::OnCommit => "1000",
            Checkpoints::Background => "0",
        }
    }
}

/// How often the log is copied back. Also the longest a commit waits to be synced to disk
/// (`synchronous = NORMAL` syncs the log at checkpoints); SQLite's own rhythm was ~150 ms under
/// load and unbounded when idle. In two A/B pairs, 50 ms gave a lower p99 @256 than 100 ms in
/// every row, 500 ms a higher one (longer copies, more in each); idle, a round is one query.
const INTERVAL: Duration = Duration::from_millis(50);

/// Log length (pages) at which the log is started again from its beginning. SQLite restarts it
/// only when a write begins with every page of it copied back, which never happens while writes
/// never pause: the file grew to 1.3 GB in a 45 s benchmark. A restart holds the writers for one
/// more copy and `fsync` (~40 ms here whatever the size; the sync is most of it), so it is rare:
/// every 64 MiB of log (4 KiB pages), ~1-2 s of the heaviest benchmark load.
const RESTART_AT_PAGES: i64 = 16_384;

/// Runs until aborted; only on a SQLite database with a log (not on other backends, nor on an
/// in-memory database, which has none: a round there would be a query every 50 ms for nothing).
pub async fn run(db: DatabaseConnection, turn: WriteTurn) {
    if db.get_database_backend() != DbBackend::Sqlite || passive(&db).await.is_ok_and(|pages| pages < 0) {
        return;
    }
    let mut ticks = tokio::time::interval(INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        match checkpoint(&db, &turn, RESTART_AT_PAGES).await {
            // Once per failing spell, not every round.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying every {INTERVAL:?}");
                failing = true;
            }
            Err(_) => {}
            Ok(()) if failing => {
                tracing::info!("SQLite checkpoints work again");
                failing = false;
            }
            Ok(()) => {}
        }
    }
}

/// One round: copy back what is in the log without holding anyone up; once the log is long,
/// copy the little that was written meanwhile while holding the write turn, so the next write
/// finds it all copied back and starts the log again.
async fn checkpoint(db: &DatabaseConnection, turn: &WriteTurn, restart_at_pages: i64) -> Result<(), DbErr> {
    let started = Instant::now();
    let log_pages = passive(db).await?;
    if log_pages >= restart_at_pages {
        let held_turn = turn.take().await;
        let held = Instant::now();
        passive(db).await?;
        drop(held_turn);
        tracing::debug!(
            log_pages,
            until_turn_ms = (held - started).as_secs_f64() * 1e3,
            writers_held_ms = held.elapsed().as_secs_f64() * 1e3,
            "SQLite log copied back; it restarts with the next write"
        );
    }
    Ok(())
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: copies back every page no reader still needs, waiting for
/// no lock. Returns the log's length in pages (-1 when the database is not in WAL mode).
async fn passive(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?;
    // Columns: busy, pages in the log, pages copied back.
    Ok(row.map(|row| row.try_get_by_index::<i64>(1)).transpose()?.unwrap_or(-1))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exec(db: &DatabaseConnection, sql: &str) {
        db.execute_unprepared(sql).await.unwrap();
    }

    /// A file database opened as the server opens it, with one table `t`.
    async fn server_database() -> (tempfile::TempDir, DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = super::super::connect(&url.into(), 2, Checkpoints::Background)
            .await
            .unwrap();
        exec(&db, "CREATE TABLE t (blob BLOB NOT NULL)").await;
        (dir, db)
    }

    async fn log_pages(db: &DatabaseConnection) -> i64 {
        passive(db).await.unwrap()
    }

    #[tokio::test]
    async fn the_server_leaves_checkpoints_to_this_task_which_restarts_the_log() {
        let (dir, db) = server_database().await;
        // 1,500 commits of a page-sized row each: past SQLite's own 1,000-page checkpoint.
        for _ in 0..1_500 {
            exec(&db, "INSERT INTO t VALUES (randomblob(3000))").await;
        }
        let wal = dir.path().join("t.db-wal");
        let wal_pages = std::fs::metadata(&wal).unwrap().len() / 4096;
        assert!(
            wal_pages > 1_500,
            "no commit checkpointed: the log holds every commit ({wal_pages} pages)"
        );

        checkpoint(&db, &WriteTurn::of(&db), 1_000).await.unwrap();
        exec(&db, "INSERT INTO t VALUES (randomblob(3000))").await;
        assert!(
            log_pages(&db).await < 10,
            "the write after a full copy-back starts the log again"
        );
        let rows = db
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, "SELECT count(*) FROM t"))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap();
        assert_eq!(rows, 1_501);
    }

    #[tokio::test]
    async fn on_an_in_memory_database_the_task_ends_at_once() {
        let db = super::super::connect(&"sqlite::memory:".to_owned().into(), 1, Checkpoints::Background)
            .await
            .unwrap();
        let turn = WriteTurn::of(&db);
        tokio::time::timeout(Duration::from_secs(5), run(db, turn))
            .await
            .expect("no log, so no rounds");
    }

    #[tokio::test]
    async fn below_the_restart_length_nobody_waits_for_the_writers() {
        let (_dir, db) = server_database().await;
        exec(&db, "INSERT INTO t VALUES (randomblob(3000))").await;
        // A writer's turn is held for the whole round below: it must not be needed.
        let turn = WriteTurn::of(&db);
        let held = turn.take().await;
        tokio::time::timeout(Duration::from_secs(5), checkpoint(&db, &turn, RESTART_AT_PAGES))
            .await
            .expect("a short log is copied back without the write turn")
            .unwrap();
        drop(held);
    }
}
