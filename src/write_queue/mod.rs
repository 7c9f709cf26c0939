//! The write queue: group commit for the writes of the hot paths, refresh-token rotations and
//! first social logins' users (it is not a repository: `store` holds those; this batches their
//! writes).
//!
//! Every refresh with rotation spends its token, and a spent token gets its row then (a login
//! writes none: `store::tokens`). Done one transaction per request, the writes queue behind each
//! other (SQLite has one writer) and each statement costs a pool round trip. Here one task takes
//! every write waiting at that moment and does them together: one transaction for the rotations
//! (one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` claims the tokens that have no row
//! yet, where the database has it). Each caller gets its answer only once its write is
//! committed, so nothing is acknowledged that is not stored. First social logins come here too
//! (`signups`): their user and account rows are written in one transaction per batch.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock, Weak},
    time::Duration,
};

use chrono::{DateTime, Utc};
use entity::{refresh_token, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, RuntimeErr,
    TransactionTrait,
    sea_query::{CaseStatement, Expr, OnConflict},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::AbortHandle,
};

use crate::metrics::Metrics;

pub use signups::Signup;

use crate::store::{
    self, StoreError, pow2_chunks,
    standing::Standing,
    tokens::{NewRefresh, spent_row},
};

mod signups;

/// Most writes taken at once (as many as one multi-row statement carries).
const MAX_BATCH: usize = store::MAX_ROWS_PER_STATEMENT;

enum Job {
    /// Spend a token.
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

    /// Marks `spent` spent by rotation to `successor`, if it is live: a token of a session that
    /// has no row yet gets its spent row, a live row is updated. Returns the spent row when this
    /// call won: of concurrent rotations of one token exactly one does; `None` for a token that is
    /// revoked, already spent, or has neither a row nor a session.
    pub async fn rotate(&self, spent: Spent, successor: Successor) -> Result<Option<refresh_token::Model>, StoreError> {
        self.ask(|done| Job::Rotate(Rotation { spent, successor, done }))
            .await?
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

/// The verified refresh token a rotation spends, as its row would hold it.
pub struct Spent {
    pub jti: String,
    pub user_id: i32,
    /// Its session (`sid`); `None` for a token without one (simplejwt's), which is spent only
    /// through the row it was adopted with.
    pub family: Option<String>,
    pub issued_at: DateTime<Utc>,
    /// When the row may be purged: the token's `exp` (see `Tokens::row_expiry`).
    pub expires_at: DateTime<Utc>,
}

/// The token a rotation issues; its family and user are the spent token's. It has no row until
/// it is spent or revoked in turn.
pub struct Successor {
    pub jti: String,
    pub issued_at: DateTime<Utc>,
}

/// Spend `spent` for `successor`; answers with the spent row if this job won it.
struct Rotation {
    spent: Spent,
    successor: Successor,
    done: oneshot::Sender<Result<Option<refresh_token::Model>, StoreError>>,
}

impl Rotation {
    fn spent_row(&self, family: &str) -> refresh_token::ActiveModel {
        let spent = &self.spent;
        let token = NewRefresh {
            jti: &spent.jti,
            user_id: spent.user_id,
            family,
            issued_at: spent.issued_at,
            expires_at: spent.expires_at,
        };
        spent_row(&token, &self.successor.jti, self.successor.issued_at)
    }
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
        let mut rotations = Vec::new();
        let mut signups = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Rotate(rotation) => rotations.push(rotation),
                Job::Signup { signup, done } => signups.push((signup, done)),
            }
        }
        let turn = write_turn.take().await;
        if !signups.is_empty() {
            let (signups, waiters): (Vec<_>, Vec<_>) = signups.into_iter().unzip();
            let created = sign_up_all(&db, &signups).await;
            for (done, user) in waiters.into_iter().zip(created) {
                // A caller that went away (client disconnected) does not need its answer.
                let _ = done.send(user);
            }
        }
        if !rotations.is_empty() {
            let results = rotate_each(&db, &rotations).await;
            for (rotation, result) in rotations.into_iter().zip(results) {
                let _ = rotation.done.send(result);
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

/// The rotations in one transaction, one result each. A batch that fails (say, the user of one
/// token was deleted meanwhile: foreign key) is retried one rotation at a time, so only the one
/// at fault fails; a database that is down is not asked again.
async fn rotate_each(
    db: &DatabaseConnection,
    rotations: &[Rotation],
) -> Vec<Result<Option<refresh_token::Model>, StoreError>> {
    match rotate_all(db, rotations).await {
        Ok(won) => won.into_iter().map(Ok).collect(),
        Err(e) if rotations.len() == 1 || matches!(e, StoreError::Unavailable(_)) => {
            rotations.iter().map(|_| Err(copy_error(&e))).collect()
        }
        Err(_) => {
            let mut results = Vec::with_capacity(rotations.len());
            for rotation in rotations {
                let won = match rotate_all(db, std::slice::from_ref(rotation)).await {
                    Ok(mut won) => Ok(won.pop().flatten()),
                    // Its user was deleted after the batch read it: nothing to claim.
                    Err(StoreError::Db(e)) if is_foreign_key_violation(&e) => Ok(None),
                    Err(e) => Err(e),
                };
                results.push(won);
            }
            results
        }
    }
}

/// Claims every rotation's token in one transaction. Of several jobs for one jti only the first
/// can win.
async fn rotate_all(
    db: &DatabaseConnection,
    rotations: &[Rotation],
) -> Result<Vec<Option<refresh_token::Model>>, StoreError> {
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rotations.iter().enumerate() {
        first_of.entry(r.spent.jti.as_str()).or_insert(i);
    }
    let mut firsts: Vec<usize> = first_of.values().copied().collect();
    firsts.sort_unstable();
    let mut won: Vec<Option<refresh_token::Model>> = vec![None; rotations.len()];
    let txn = db.begin().await?;
    let dead = dead_sessions_and_users(&txn, rotations, &firsts).await?;
    let firsts: Vec<usize> = firsts.into_iter().filter(|i| !dead(&rotations[*i].spent)).collect();
    claim_rowless(&txn, rotations, &firsts, &first_of, &mut won).await?;
    // A token whose insert met its row: spent or revoked already (lost), or a live row from
    // before logins stopped writing rows, or a simplejwt token's adopted row (claimed here).
    let with_rows: Vec<usize> = firsts.into_iter().filter(|&i| won[i].is_none()).collect();
    if !with_rows.is_empty() {
        claim_rows(&txn, rotations, &with_rows, &first_of, &mut won).await?;
    }
    txn.commit().await?;
    Ok(won)
}

/// Which spent tokens are dead, read in the rotations' transaction: a revoked session, a user
/// gone, disabled, or whose revocation point covers the token. A token without a row has
/// nothing else to say so, and the request's cached standing may be `cache_ttl` old.
async fn dead_sessions_and_users(
    txn: &DatabaseTransaction,
    rotations: &[Rotation],
    firsts: &[usize],
) -> Result<impl Fn(&Spent) -> bool + use<>, StoreError> {
    let mut families: Vec<&str> = firsts
        .iter()
        .filter_map(|&i| rotations[i].spent.family.as_deref())
        .collect();
    families.sort_unstable();
    families.dedup();
    let mut users: Vec<i32> = firsts.iter().map(|&i| rotations[i].spent.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let mut revoked = HashSet::new();
    for chunk in pow2_chunks(&families) {
        revoked.extend(store::tokens::revoked_among(txn, chunk).await?);
    }
    let mut standing = HashMap::new();
    for chunk in pow2_chunks(&users) {
        standing.extend(store::tokens::standings(txn, chunk).await?);
    }
    Ok(move |spent: &Spent| {
        let session_revoked = spent.family.as_ref().is_some_and(|f| revoked.contains(f));
        let usable = match standing.get(&spent.user_id) {
            Some(s @ Standing::Present { active: true, .. }) => !s.revokes(spent.issued_at.timestamp()),
            _ => false,
        };
        session_revoked || !usable
    })
}

/// Claims the tokens of `firsts` that carry a session by inserting their spent rows; an insert
/// that meets a row already there claims nothing.
async fn claim_rowless(
    txn: &DatabaseTransaction,
    rotations: &[Rotation],
    firsts: &[usize],
    first_of: &HashMap<&str, usize>,
    won: &mut [Option<refresh_token::Model>],
) -> Result<(), StoreError> {
    let rows: Vec<_> = firsts
        .iter()
        .filter_map(|&i| Some(rotations[i].spent_row(rotations[i].spent.family.as_deref()?)))
        .collect();
    if txn.support_returning() {
        for chunk in pow2_chunks(&rows) {
            let claimed = refresh_token::Entity::insert_many(chunk.to_vec())
                .on_conflict(OnConflict::column(refresh_token::Column::Jti).do_nothing().to_owned())
                .exec_with_returning(txn)
                .await?;
            for row in claimed {
                let i = first_of[row.jti.as_str()];
                won[i] = Some(row);
            }
        }
    } else {
        // MariaDB: one row at a time; a duplicate key fails only its statement, not the
        // transaction.
        for row in rows {
            match refresh_token::Entity::insert(row).exec_with_returning(txn).await {
                Ok(row) => {
                    let i = first_of[row.jti.as_str()];
                    won[i] = Some(row);
                }
                Err(e) if store::is_unique_violation(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// Claims the live rows among `with_rows` by marking them spent.
async fn claim_rows(
    txn: &DatabaseTransaction,
    rotations: &[Rotation],
    with_rows: &[usize],
    first_of: &HashMap<&str, usize>,
    won: &mut [Option<refresh_token::Model>],
) -> Result<(), StoreError> {
    if !txn.support_returning() {
        for &i in with_rows {
            let r = &rotations[i];
            let (jti, successor) = (&r.spent.jti, &r.successor);
            if store::tokens::claim_rotation(txn, jti, &successor.jti, successor.issued_at).await? {
                won[i] = store::tokens::find_refresh(txn, jti).await?;
            }
        }
        return Ok(());
    }
    for chunk in pow2_chunks(with_rows) {
        let (successor_of, rotated_at) = chunk.iter().fold(
            (CaseStatement::new(), CaseStatement::new()),
            |(successor_of, rotated_at), &i| {
                let r = &rotations[i];
                let this = || refresh_token::Column::Jti.eq(r.spent.jti.as_str());
                (
                    successor_of.case(this(), Expr::value(r.successor.jti.as_str())),
                    rotated_at.case(this(), Expr::value(r.successor.issued_at)),
                )
            },
        );
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RotatedAt, rotated_at.into())
            .col_expr(refresh_token::Column::ReplacedBy, successor_of.into())
            .filter(refresh_token::Column::Jti.is_in(chunk.iter().map(|&i| rotations[i].spent.jti.as_str())))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .filter(store::tokens::session_not_revoked())
            .exec_with_returning(txn)
            .await?;
        for row in claimed {
            let i = first_of[row.jti.as_str()];
            won[i] = Some(row);
        }
    }
    Ok(())
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

fn is_foreign_key_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)))
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable(DbErr::Conn(RuntimeErr::Internal("token writer stopped".into())))
}
