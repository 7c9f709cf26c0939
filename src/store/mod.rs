//! Repository functions over sea-orm. Functions take `&impl ConnectionTrait` so they compose
//! inside a transaction. Never imports `poem`.

pub mod admin;
pub mod audit;
pub mod cache;
mod cache_writes;
pub mod checkpoint;
pub mod email_claims;
mod faults;
pub mod keys;
pub mod one_time;
pub mod provider_tokens;
pub mod resource_clients;
pub mod sites;
pub mod social;
pub mod standing;
pub mod tokens;
pub mod usernames;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QuerySelect, TryGetableMany,
};
use secrecy::{ExposeSecret, SecretString};

pub use checkpoint::Checkpoints;
use faults::Fault;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The email belongs to another user and cannot be linked safely.
    #[error("email address already in use")]
    EmailInUse,
    /// A value that must be unique is taken (`field`: `username`, `email`, `domain`…): the
    /// client's choice to change, answered by the caller on that field.
    #[error("{field} is taken")]
    Taken { field: &'static str },
    /// Concurrent writers kept colliding (deadlocks, serialization failures, a busy SQLite file):
    /// ours, not the client's; the same request may succeed if retried (503).
    #[error("write contention: {0}")]
    Contended(&'static str),
    /// The database cannot be reached or is overloaded.
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    /// A stored value cannot be read back (hand-edited row, bad key material).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        match e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable(e),
            e if faults::fault(&e) == Fault::Contention => StoreError::Contended("the database"),
            e => StoreError::Db(e),
        }
    }
}

impl StoreError {
    /// A deadlock, busy file or serialization failure: the same request may succeed if retried.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Contended(_))
    }
}

/// True for a unique index's refusal (the value is taken, maybe by a concurrent writer).
pub(crate) fn is_unique_violation(e: &DbErr) -> bool {
    faults::fault(e) == Fault::UniqueViolation
}

/// SQLite allows one writer at a time; two write transactions racing for its lock end in its busy
/// handler's sleeps (1 ms … 100 ms), which made p99 latencies of hundreds of ms under load. The
/// writers of one database in this process (the write queue on its own connection, the login
/// upsert and app changes on the pool, the audit writer, checkpoints) take turns here instead,
/// so SQLite sees one writer and readers stay parallel. One turn per database: made with its pool
/// (`WriteTurn::of`) and handed to each of its writers, so two servers in one process (the tests)
/// never wait for each other. A no-op on other databases.
#[derive(Clone, Default)]
pub struct WriteTurn(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl WriteTurn {
    pub fn of(db: &DatabaseConnection) -> Self {
        match db.get_database_backend() {
            DbBackend::Sqlite => Self(Some(Default::default())),
            _ => Self(None),
        }
    }

    /// Waits for this database's turn to write; the turn ends with the guard.
    pub async fn take(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }
}

/// Opens the pool; SQLite gets WAL (readers never wait for the writer) and a busy timeout, and
/// `checkpoints` says who copies its log back (the server runs `checkpoint::run` beside it).
pub async fn connect(
    url: &SecretString,
    max_connections: u32,
    checkpoints: Checkpoints,
) -> Result<DatabaseConnection, DbErr> {
    open(
        url.expose_secret(),
        max_connections,
        SQLITE_READER_CACHE_KIB,
        checkpoints,
    )
    .await
}

/// The connection the group-commit token writer uses. On SQLite it is its own single connection:
/// SQLite drops a connection's page cache whenever another connection has committed, so a batch
/// run on whichever pooled connection was free re-read every index page it touched (`pread` was
/// ~6% of a refresh). A connection that only this writer commits on keeps its cache warm, and a
/// larger one, as rotations touch random pages of the `jti` and `family` indexes. Elsewhere it is
/// the shared pool, as it is for an in-memory SQLite database (a second pool would open another).
pub async fn connect_writer(url: &SecretString, pool: &DatabaseConnection) -> Result<DatabaseConnection, DbErr> {
    let url = url.expose_secret();
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    match pool.get_database_backend() {
        DbBackend::Sqlite if !in_memory => open(url, 1, SQLITE_WRITER_CACHE_KIB, Checkpoints::Background).await,
        _ => Ok(pool.clone()),
    }
}

/// Connections of the pool now: (in use, idle).
pub fn pool_connections(db: &DatabaseConnection) -> (u32, usize) {
    let (size, idle) = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::MySql => {
            let pool = db.get_mysql_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    (size.saturating_sub(u32::try_from(idle).unwrap_or(u32::MAX)), idle)
}

/// SQLite page cache per pooled connection (its default, ~2 MB).
const SQLITE_READER_CACHE_KIB: u32 = 2_000;
/// SQLite page cache of the token writer's own connection.
const SQLITE_WRITER_CACHE_KIB: u32 = 8_192;

async fn open(
    url: &str,
    max_connections: u32,
    sqlite_cache_kib: u32,
    checkpoints: Checkpoints,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        options.map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Statement journals (a multi-row UPDATE or INSERT inside a transaction keeps one
                // to undo just that statement) go to memory, not to a temporary file: their
                // writes were ~7% of a refresh rotation.
                .pragma("temp_store", "memory")
                .pragma("cache_size", format!("-{sqlite_cache_kib}"))
                .pragma("wal_autocheckpoint", checkpoints.autocheckpoint_pages())
        });
    }
    if url.starts_with("postgres") && tls_is_pointless(url) {
        options.map_sqlx_postgres_opts(|o| o.ssl_mode(sea_orm::sqlx::postgres::PgSslMode::Disable));
    }
    Database::connect(options).await
}

/// A PostgreSQL URL on the loopback interface that does not ask for an `sslmode`: the default
/// (`prefer`) would negotiate TLS with a server that offers it, for traffic that never leaves
/// the machine, and that cost ~60 ms per new connection (start-up went from ~85 to ~210 ms).
/// An explicit `sslmode` is always kept.
fn tls_is_pointless(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let loopback = match parsed.host() {
        // postgres:// is not a "special" scheme: its IPv4 hosts come as names.
        Some(url::Host::Domain(name)) => {
            name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    loopback && !parsed.query_pairs().any(|(key, _)| key == "sslmode")
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// `/readyz`: one round trip to the database.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// The row a lookup by a unique key finds, if any: `.one()` without its `LIMIT ?`. SQLite (3.47+)
/// plans a bound LIMIT by its value and then re-prepares the statement every time the value is
/// bound again, i.e. on every execution: ~10% of a login's CPU went to re-parsing the query.
pub(crate) async fn unique<E: EntityTrait>(
    select: sea_orm::Select<E>,
    db: &impl ConnectionTrait,
) -> Result<Option<E::Model>, DbErr> {
    Ok(select.all(db).await?.into_iter().next())
}

/// Values per `IN (…)` list or per multi-row INSERT: far below every backend's bind-parameter limit.
pub(crate) const BATCH: usize = 500;

/// Which of `values` already occur in `column` (bulk conflict checks of the Django import).
pub(crate) async fn existing_values<E, V>(
    db: &impl ConnectionTrait,
    column: E::Column,
    values: &[V],
) -> Result<Vec<V>, StoreError>
where
    E: EntityTrait,
    V: Clone + Into<sea_orm::Value> + TryGetableMany,
{
    let mut found = Vec::new();
    for chunk in values.chunks(BATCH) {
        found.extend(
            E::find()
                .select_only()
                .column(column)
                .filter(column.is_in(chunk.iter().cloned()))
                .into_tuple::<V>()
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// Moves each table's `id` sequence past its largest id, after rows were inserted with explicit
/// ids. Only PostgreSQL needs this: MySQL's AUTO_INCREMENT and SQLite's follow the largest id.
pub async fn reset_id_sequences(db: &impl ConnectionTrait, tables: &[&'static str]) -> Result<(), StoreError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for table in tables {
        db.execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) \
             FROM {table}"
        ))
        .await?;
    }
    Ok(())
}

/// Most rows one multi-row statement carries. Statements are cut into power-of-two sizes (1, 2,
/// 4 … 64): every distinct statement text is prepared and cached per pooled connection, and one
/// text per batch size grew the process by ~100 MB under load.
pub const MAX_ROWS_PER_STATEMENT: usize = 64;

/// `items` cut into runs of 64, 32 … 1: a handful of distinct statement shapes.
pub fn pow2_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = 1 << items.len().min(MAX_ROWS_PER_STATEMENT).ilog2();
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_urls_without_an_sslmode_skip_tls() {
        assert!(super::tls_is_pointless("postgres://u@127.0.0.1:5432/db"));
        assert!(super::tls_is_pointless("postgresql://u@localhost/db"));
        assert!(super::tls_is_pointless("postgres://u@[::1]/db"));
        assert!(!super::tls_is_pointless("postgres://u@127.0.0.1/db?sslmode=require"));
        assert!(!super::tls_is_pointless("postgres://u@db.internal/db"));
        assert!(!super::tls_is_pointless("postgres://u@10.0.0.5/db"));
    }

    #[test]
    fn batches_are_cut_into_a_few_power_of_two_sizes() {
        let sizes = |n: usize| super::pow2_chunks(&vec![0; n]).map(<[i32]>::len).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(7), [4, 2, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(200), [64, 64, 64, 8]);
    }
}
