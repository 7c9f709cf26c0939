//! Group commit for new refresh-token rows. Every login writes one row; written one statement per
//! request, the writes queue behind each other (SQLite has one writer) and each costs a pool round
//! trip. Here one task takes every row waiting at that moment and writes them with one multi-row
//! INSERT; each caller gets its answer only once its row is committed, so nothing is acknowledged
//! that is not stored.

use chrono::{DateTime, Utc};
use entity::refresh_token;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, RuntimeErr, Set};
use tokio::sync::{mpsc, oneshot};

use super::{BATCH, StoreError, tokens::NewRefresh};

struct Pending {
    row: refresh_token::ActiveModel,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The queue in front of the writer task; cheap to clone. The task ends with the last clone.
#[derive(Clone)]
pub struct TokenWriter {
    queue: mpsc::UnboundedSender<Pending>,
}

impl TokenWriter {
    /// Starts the writer task; needs a Tokio runtime.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(db, pending));
        Self { queue }
    }

    /// Stores a new refresh-token row (a login's new family); returns once it is committed.
    pub async fn insert(&self, new: NewRefresh<'_>) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let row = refresh_token::ActiveModel {
            jti: Set(new.jti.to_owned()),
            user_id: Set(new.user_id),
            family: Set(new.family.to_owned()),
            issued_at: Set(new.issued_at),
            expires_at: Set(new.expires_at),
            rotated_at: Set(None::<DateTime<Utc>>),
            replaced_by: Set(None),
            revoked_at: Set(None::<DateTime<Utc>>),
            ..Default::default()
        };
        self.queue.send(Pending { row, done }).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

async fn write_batches(db: DatabaseConnection, mut pending: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(BATCH);
    while pending.recv_many(&mut batch, BATCH).await > 0 {
        let (rows, waiters): (Vec<_>, Vec<_>) = batch.drain(..).map(|p| (p.row, p.done)).unzip();
        let turn = super::write_turn(&db).await;
        let result = refresh_token::Entity::insert_many(rows)
            .exec_without_returning(&db)
            .await;
        drop(turn);
        for done in waiters {
            // A caller that went away (client disconnected) does not need its answer.
            let _ = done.send(result.as_ref().map(|_| ()).map_err(copy_error));
        }
    }
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
