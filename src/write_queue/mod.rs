//! The write queue: group commit for the writes of the hot paths, refresh tokens and first
//! social logins' users (it is not a repository: `store` holds those; this batches their writes).
//!
//! Group commit for refresh-token writes. Every login writes one row and every refresh with
//! rotation claims one and writes its successor; done one transaction per request, the writes
//! queue behind each other (SQLite has one writer) and each statement costs a pool round trip.
//! Here one task takes every write waiting at that moment and does them together: one multi-row
//! INSERT for new sessions, one transaction for the rotations (one UPDATE … RETURNING where the
//! database has it). Each caller gets its answer only once its write is committed, so nothing is
//! acknowledged that is not stored. First social logins come here too (`signups`): their user
//! and account rows are written in one transaction per batch, before the batch's token writes.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock, Weak},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{refresh_token, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, RuntimeErr, TransactionTrait,
    sea_query::{CaseStatement, Expr},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

use crate::metrics::Metrics;

pub use signups::Signup;

use crate::store::{
    self, StoreError,
    tokens::{NewRefresh, new_row},
};

mod signups;

/// Most writes taken at once. Statements are cut into power-of-two sizes (1, 2, 4 … 64): every
/// distinct statement text is prepared and cached per pooled connection, and one text per batch
/// size grew the process by ~100 MB under load.
const MAX_BATCH: usize = 64;

/// `items` cut into runs of 64, 32 … 1: a handful of distinct statement shapes.
fn pow2_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let size = 1 << items.len().min(MAX_BATCH).ilog2();
        let (chunk, rest) = items.split_at(size);
        items = rest;
        Some(chunk)
    })
}

enum Job {
    /// A new family's first token.
    Insert {
        row: refresh_token::ActiveModel,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Spend a token and store its successor.
    Rotate(Rotation),
    /// Create a first login's user and account; `None` leaves it to the one-login path.
    Signup {
        signup: Signup,
        done: oneshot::Sender<Option<user::Model>>,
    },
}

/// The queue in front of the writer task; cheap to clone. The task is supervised: if it ends
/// (a panic, an abort), the jobs it held and any sent until it is back get 503, and it is
/// started again after `RESTART_DELAY` on a fresh queue. It ends for good with the last clone.
#[derive(Clone)]
pub struct WriteQueue(Arc<Writer>);

struct Writer {
    queue: RwLock<mpsc::UnboundedSender<Job>>,
    /// The running task, for the test hook that stops it.
    running: Mutex<Option<AbortHandle>>,
}

/// Wait before a stopped writer is started again (a writer that panics on every batch would
/// otherwise spin).
const RESTART_DELAY: Duration = Duration::from_secs(1);

impl WriteQueue {
    /// Starts the writer task under its supervisor; needs a Tokio runtime.
    /// `turn`: the database's write turn (`store::WriteTurn::of` the pool), shared with its
    /// other writers; `db` may be a connection of its own.
    pub fn start(db: DatabaseConnection, turn: store::WriteTurn, metrics: Metrics) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let writer = Arc::new(Writer {
            queue: RwLock::new(queue),
            running: Mutex::new(None),
        });
        tokio::spawn(supervise(db, turn, Arc::downgrade(&writer), jobs, metrics));
        Self(writer)
    }

    /// Test hook: stops the writer task as a crash would. Not for production use.
    #[doc(hidden)]
    pub fn stop_for_tests(&self) {
        if let Some(task) = self.0.running.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            task.abort();
        }
    }

    /// Stores a new refresh-token row (a login's new family); returns once it is committed.
    pub async fn insert(&self, new: NewRefresh<'_>) -> Result<(), StoreError> {
        let row = new_row(&new);
        self.ask(|done| Job::Insert { row, done }).await?
    }

    /// Marks `jti` spent by rotation to `successor` and stores the successor in the spent token's
    /// family, for its user, if `jti` is a live row. Returns the spent row when this call won: of
    /// concurrent rotations of one token exactly one does; `None` for a token that is unknown,
    /// revoked or already spent.
    pub async fn rotate(&self, jti: &str, successor: Successor) -> Result<Option<refresh_token::Model>, StoreError> {
        let jti = jti.to_owned();
        self.ask(|done| Job::Rotate(Rotation { jti, successor, done })).await?
    }

    /// Creates the user and social account of a first login, batched with other first logins.
    /// `None` when the batch could not take it (see `signups`): the caller then takes the
    /// one-login path, so nothing of it was written.
    pub async fn sign_up(&self, signup: Signup) -> Result<Option<user::Model>, StoreError> {
        self.ask(|done| Job::Signup { signup, done }).await
    }

    /// Queues the job `make` builds around its answer channel and waits for the answer.
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, StoreError> {
        let (done, answer) = oneshot::channel();
        self.0
            .queue
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .send(make(done))
            .map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())
    }
}

/// The token a rotation issues; its family and user are the spent token's.
pub struct Successor {
    pub jti: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Spend `jti` and store `successor`; answers with the spent row if this job won it.
struct Rotation {
    jti: String,
    successor: Successor,
    done: oneshot::Sender<Result<Option<refresh_token::Model>, StoreError>>,
}

/// Runs the writer task, and again whenever it stops while a `WriteQueue` still exists. Jobs
/// queued to a stopped task are dropped with it: their callers get `writer_gone` (503).
async fn supervise(
    db: DatabaseConnection,
    turn: store::WriteTurn,
    writer: Weak<Writer>,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    metrics: Metrics,
) {
    loop {
        let task = tokio::spawn(write_batches(db.clone(), turn.clone(), jobs, metrics.clone()));
        match writer.upgrade() {
            Some(w) => *w.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle()),
            None => return,
        }
        let ended = task.await;
        if writer.strong_count() == 0 {
            return;
        }
        match ended {
            Err(e) if e.is_panic() => tracing::error!(error = %e, "the token writer panicked; restarting it"),
            Err(_) => tracing::error!("the token writer was stopped; restarting it"),
            Ok(()) => tracing::error!("the token writer ended; restarting it"),
        }
        tokio::time::sleep(RESTART_DELAY).await;
        let Some(w) = writer.upgrade() else { return };
        let (queue, next) = mpsc::unbounded_channel();
        *w.queue.write().unwrap_or_else(|e| e.into_inner()) = queue;
        jobs = next;
        tracing::info!("token writer restarted");
    }
}

async fn write_batches(
    db: DatabaseConnection,
    write_turn: store::WriteTurn,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    metrics: Metrics,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics.writer_batch(batch.len(), jobs.len());
        let mut inserts = Vec::new();
        let mut rotations = Vec::new();
        let mut signups = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Insert { row, done } => inserts.push((row, done)),
                Job::Rotate(rotation) => rotations.push(rotation),
                Job::Signup { signup, done } => signups.push((signup, done)),
            }
        }
        let turn = write_turn.take().await;
        if !signups.is_empty() {
            let (signups, waiters): (Vec<_>, Vec<_>) = signups.into_iter().unzip();
            let created = sign_up_all(&db, &signups).await;
            for (done, user) in waiters.into_iter().zip(created) {
                let _ = done.send(user);
            }
        }
        if !inserts.is_empty() {
            let (rows, waiters): (Vec<_>, Vec<_>) = inserts.into_iter().unzip();
            let results = insert_all(&db, &rows).await;
            for (done, result) in waiters.into_iter().zip(results) {
                // A caller that went away (client disconnected) does not need its answer.
                let _ = done.send(result);
            }
        }
        if !rotations.is_empty() {
            match rotate_all(&db, &rotations).await {
                Ok(won) => {
                    for (rotation, won) in rotations.into_iter().zip(won) {
                        let _ = rotation.done.send(Ok(won));
                    }
                }
                Err(e) => {
                    for rotation in rotations {
                        let _ = rotation.done.send(Err(copy_error(&e)));
                    }
                }
            }
        }
        drop(turn);
    }
}

/// The batch's signups in one transaction; all `None` when it failed and was rolled back.
async fn sign_up_all(db: &DatabaseConnection, signups: &[Signup]) -> Vec<Option<user::Model>> {
    let attempt = async {
        let txn = db.begin().await?;
        let created = signups::create_all(&txn, signups).await?;
        txn.commit().await?;
        Ok::<_, DbErr>(created)
    };
    match attempt.await {
        Ok(created) => created,
        Err(e) => {
            tracing::debug!(error = %e, signups = signups.len(), "batched signups rolled back; each goes alone");
            signups.iter().map(|_| None).collect()
        }
    }
}

/// Inserts the rows, one result per row. A chunk that fails (say, the user of one row was deleted
/// meanwhile: foreign key) is retried row by row, so only the row at fault fails.
async fn insert_all(db: &DatabaseConnection, rows: &[refresh_token::ActiveModel]) -> Vec<Result<(), StoreError>> {
    let mut results = Vec::with_capacity(rows.len());
    for chunk in pow2_chunks(rows) {
        match refresh_token::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
        {
            Ok(_) => results.extend(chunk.iter().map(|_| Ok(()))),
            Err(e) if chunk.len() == 1 => results.push(Err(copy_error(&e.into()))),
            Err(_) => {
                for row in chunk {
                    let one = refresh_token::Entity::insert(row.clone())
                        .exec_without_returning(db)
                        .await;
                    results.push(one.map(|_| ()).map_err(|e| copy_error(&e.into())));
                }
            }
        }
    }
    results
}

/// Claims every rotation's token in one transaction and inserts the winners' successors. Of
/// several jobs for one jti only the first can win.
async fn rotate_all(
    db: &DatabaseConnection,
    rotations: &[Rotation],
) -> Result<Vec<Option<refresh_token::Model>>, StoreError> {
    let now = Utc::now();
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rotations.iter().enumerate() {
        first_of.entry(r.jti.as_str()).or_insert(i);
    }
    let mut won: Vec<Option<refresh_token::Model>> = vec![None; rotations.len()];
    let txn = db.begin().await?;
    let mut firsts: Vec<usize> = first_of.values().copied().collect();
    firsts.sort_unstable();
    if txn.support_returning() {
        for chunk in pow2_chunks(&firsts) {
            let successor_of = chunk.iter().fold(CaseStatement::new(), |case, &i| {
                let r = &rotations[i];
                case.case(
                    refresh_token::Column::Jti.eq(r.jti.as_str()),
                    Expr::value(r.successor.jti.as_str()),
                )
            });
            let claimed = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
                .col_expr(refresh_token::Column::ReplacedBy, successor_of.into())
                .filter(refresh_token::Column::Jti.is_in(chunk.iter().map(|&i| rotations[i].jti.as_str())))
                .filter(refresh_token::Column::RotatedAt.is_null())
                .filter(refresh_token::Column::RevokedAt.is_null())
                .filter(store::tokens::session_not_revoked())
                .exec_with_returning(&txn)
                .await?;
            for row in claimed {
                let i = first_of[row.jti.as_str()];
                won[i] = Some(row);
            }
        }
    } else {
        for &i in &firsts {
            let r = &rotations[i];
            if store::tokens::claim_rotation(&txn, &r.jti, &r.successor.jti, now).await? {
                won[i] = store::tokens::find_refresh(&txn, &r.jti).await?;
            }
        }
    }
    let successors: Vec<_> = rotations
        .iter()
        .zip(&won)
        .filter_map(|(r, won)| {
            let spent = won.as_ref()?;
            Some(new_row(&NewRefresh {
                jti: &r.successor.jti,
                user_id: spent.user_id,
                family: &spent.family,
                issued_at: r.successor.issued_at,
                expires_at: r.successor.expires_at,
            }))
        })
        .collect();
    for chunk in pow2_chunks(&successors) {
        refresh_token::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(won)
}

/// The batch's error for each of its callers, keeping what callers branch on: unavailable,
/// contended (retryable), or neither.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(e) => StoreError::Unavailable(DbErr::Conn(RuntimeErr::Internal(e.to_string()))),
        StoreError::Contended(what) => StoreError::Contended(what),
        e => StoreError::Db(DbErr::Custom(e.to_string())),
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable(DbErr::Conn(RuntimeErr::Internal("token writer stopped".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_into_a_few_power_of_two_sizes() {
        let sizes = |n: usize| pow2_chunks(&vec![0; n]).map(<[i32]>::len).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(7), [4, 2, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(200), [64, 64, 64, 8]);
    }
}
