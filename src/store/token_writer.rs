//! Group commit for refresh-token writes. Every login writes one row and every refresh with
//! rotation claims one and writes its successor; done one transaction per request, the writes
//! queue behind each other (SQLite has one writer) and each statement costs a pool round trip.
//! Here one task takes every write waiting at that moment and does them together: one multi-row
//! INSERT for new sessions, one transaction for the rotations (one UPDATE … RETURNING where the
//! database has it). Each caller gets its answer only once its write is committed, so nothing is
//! acknowledged that is not stored.

use std::collections::HashMap;

use chrono::Utc;
use entity::refresh_token;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, RuntimeErr, Set,
    TransactionTrait,
    sea_query::{CaseStatement, Expr},
};
use tokio::sync::{mpsc, oneshot};

use super::{BATCH, StoreError, tokens::NewRefresh};

enum Job {
    /// A new family's first token.
    Insert {
        row: refresh_token::ActiveModel,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Spend `jti` and store its successor; answers whether this job won the token.
    Rotate {
        jti: String,
        successor: refresh_token::ActiveModel,
        successor_jti: String,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// The queue in front of the writer task; cheap to clone. The task ends with the last clone.
#[derive(Clone)]
pub struct TokenWriter {
    queue: mpsc::UnboundedSender<Job>,
}

fn new_row(new: &NewRefresh<'_>) -> refresh_token::ActiveModel {
    refresh_token::ActiveModel {
        jti: Set(new.jti.to_owned()),
        user_id: Set(new.user_id),
        family: Set(new.family.to_owned()),
        issued_at: Set(new.issued_at),
        expires_at: Set(new.expires_at),
        rotated_at: Set(None),
        replaced_by: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
}

impl TokenWriter {
    /// Starts the writer task; needs a Tokio runtime.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(db, jobs));
        Self { queue }
    }

    /// Stores a new refresh-token row (a login's new family); returns once it is committed.
    pub async fn insert(&self, new: NewRefresh<'_>) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job::Insert {
            row: new_row(&new),
            done,
        };
        self.queue.send(job).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Marks `jti` spent by rotation to `successor` and stores the successor, if `jti` is still
    /// live. True when this call won: of concurrent rotations of one token exactly one does.
    pub async fn rotate(&self, jti: &str, successor: NewRefresh<'_>) -> Result<bool, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Job::Rotate {
            jti: jti.to_owned(),
            successor_jti: successor.jti.to_owned(),
            successor: new_row(&successor),
            done,
        };
        self.queue.send(job).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

struct Rotation {
    jti: String,
    successor: refresh_token::ActiveModel,
    successor_jti: String,
    done: oneshot::Sender<Result<bool, StoreError>>,
}

async fn write_batches(db: DatabaseConnection, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        let mut inserts = Vec::new();
        let mut rotations = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Insert { row, done } => inserts.push((row, done)),
                Job::Rotate {
                    jti,
                    successor,
                    successor_jti,
                    done,
                } => rotations.push(Rotation {
                    jti,
                    successor,
                    successor_jti,
                    done,
                }),
            }
        }
        let turn = super::write_turn(&db).await;
        if !inserts.is_empty() {
            let (rows, waiters): (Vec<_>, Vec<_>) = inserts.into_iter().unzip();
            let result = refresh_token::Entity::insert_many(rows)
                .exec_without_returning(&db)
                .await;
            for done in waiters {
                // A caller that went away (client disconnected) does not need its answer.
                let _ = done.send(result.as_ref().map(|_| ()).map_err(copy_error));
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

/// Claims every rotation's token in one transaction and inserts the winners' successors. Of
/// several jobs for one jti only the first can win.
async fn rotate_all(db: &DatabaseConnection, rotations: &[Rotation]) -> Result<Vec<bool>, DbErr> {
    let now = Utc::now();
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rotations.iter().enumerate() {
        first_of.entry(r.jti.as_str()).or_insert(i);
    }
    let mut won = vec![false; rotations.len()];
    let txn = db.begin().await?;
    if txn.support_returning() {
        let successor_of = first_of.values().fold(CaseStatement::new(), |case, &i| {
            let r = &rotations[i];
            case.case(
                refresh_token::Column::Jti.eq(r.jti.as_str()),
                Expr::value(r.successor_jti.as_str()),
            )
        });
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
            .col_expr(refresh_token::Column::ReplacedBy, successor_of.into())
            .filter(refresh_token::Column::Jti.is_in(first_of.keys().copied()))
            .filter(refresh_token::Column::RotatedAt.is_null())
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec_with_returning(&txn)
            .await?;
        for row in claimed {
            won[first_of[row.jti.as_str()]] = true;
        }
    } else {
        for &i in first_of.values() {
            let r = &rotations[i];
            won[i] = super::tokens::claim_rotation(&txn, &r.jti, &r.successor_jti, now)
                .await
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
    }
    let successors: Vec<_> = rotations
        .iter()
        .zip(&won)
        .filter(|(_, won)| **won)
        .map(|(r, _)| r.successor.clone())
        .collect();
    if !successors.is_empty() {
        refresh_token::Entity::insert_many(successors)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(won)
}

/// The batch's error for each of its callers, keeping what callers branch on: unavailable or not,
/// and the text that tells a retryable conflict.
fn copy_error(e: &DbErr) -> StoreError {
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            StoreError::Unavailable(DbErr::Conn(RuntimeErr::Internal(e.to_string())))
        }
        e => StoreError::Db(DbErr::Custom(e.to_string())),
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable(DbErr::Conn(RuntimeErr::Internal("token writer stopped".into())))
}
