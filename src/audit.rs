//! The audit trail: security events recorded off the request's critical path. `record` only
//! queues (a bounded channel, never waiting); one task writes what is queued in batches. A full
//! queue drops the event with a warning rather than slow sign-ins down. Never put a secret in an
//! event: ids, codes and names of things only.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use chrono::Utc;
use entity::audit_event;
use sea_orm::{DatabaseConnection, Set};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use crate::store;

/// Event names, stable: operators filter on them.
pub mod event {
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const REFRESH_REUSE_DETECTED: &str = "refresh.reuse_detected";
    pub const LOGOUT: &str = "logout";
    pub const LOGOUT_ALL: &str = "logout_all";
    pub const PASSWORD_CHANGED: &str = "password.changed";
    pub const PASSWORD_SET: &str = "password.set";
    pub const PASSWORD_RESET: &str = "password.reset";
    pub const EMAIL_CONFIRMED: &str = "email.confirmed";
    pub const ACCOUNT_LINKED: &str = "account.linked";
    pub const ACCOUNT_UNLINKED: &str = "account.unlinked";
    pub const ACCOUNT_DELETED: &str = "account.deleted";
    pub const USER_DISABLED: &str = "user.disabled";
    pub const USER_ENABLED: &str = "user.enabled";
    pub const SESSIONS_REVOKED: &str = "sessions.revoked";
    pub const KEY_ROTATED: &str = "key.rotated";
    pub const KEY_REVOKED: &str = "key.revoked";
    pub const SITE_SAVED: &str = "site.saved";
    pub const SITE_DELETED: &str = "site.deleted";
    pub const SOCIAL_APP_SAVED: &str = "socialapp.saved";
    pub const SOCIAL_APP_DELETED: &str = "socialapp.deleted";
    pub const TOKEN_INTROSPECTED: &str = "token.introspected";
}

/// Where a request came from, as far as the trail cares.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// One event. Build with `Entry::new(event::…)` and the `with_*` setters.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub event: &'static str,
    pub user_id: Option<i32>,
    pub actor_id: Option<i32>,
    pub provider: Option<String>,
    pub method: Option<String>,
    pub outcome: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl Entry {
    pub fn new(event: &'static str) -> Self {
        Self {
            event,
            ..Self::default()
        }
    }

    pub fn user(mut self, user_id: i32) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn actor(mut self, actor_id: i32) -> Self {
        self.actor_id = Some(actor_id);
        self
    }

    pub fn provider(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = Some(outcome.to_owned());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Most events one insert writes.
const BATCH: usize = 256;
/// How long the writer lets events gather once one has come. Taking only what had arrived, it
/// wrote a handful of events per insert under load (each a write transaction, on SQLite a turn of
/// the one writer): a quarter of a returning user's login CPU went to the trail (A/B with
/// `audit_enabled` off). An event waits at most this long to be written.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a stop waits for the queued events to be written: a database that is down (each
/// attempt waits for a connection up to its acquire timeout) must not hold the stop.
const FINISH_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
/// Events waiting beyond this are dropped (and counted).
const QUEUE: usize = 10_000;

/// The queue in front of the audit writer; cheap to clone.
#[derive(Clone)]
pub struct Audit {
    queue: Option<mpsc::Sender<audit_event::ActiveModel>>,
    dropped: Arc<AtomicU64>,
    writer: Option<Arc<Writer>>,
}

/// What stopping the writer needs: the signal, and its task to wait for.
struct Writer {
    stop: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn cut(value: Option<String>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}

impl Audit {
    /// Starts the writer on `db`; needs a Tokio runtime.
    /// `turn`: the database's write turn, shared with its other writers.
    pub fn start(db: DatabaseConnection, turn: store::WriteTurn) -> Self {
        let (queue, rows) = mpsc::channel(QUEUE);
        let writer = Arc::new(Writer {
            stop: Notify::new(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(write_batches(db, turn, rows, writer.clone()));
        if let Ok(mut slot) = writer.task.lock() {
            *slot = Some(task);
        }
        Self {
            queue: Some(queue),
            dropped: Arc::default(),
            writer: Some(writer),
        }
    }

    /// A trail that records nothing (`audit_enabled = false`).
    pub fn off() -> Self {
        Self {
            queue: None,
            dropped: Arc::default(),
            writer: None,
        }
    }

    /// Writes every event queued so far, without waiting for the batch to gather, and stops the
    /// writer: the server calls it once it stopped serving, so a stop loses no event.
    pub async fn finish(&self) {
        let Some(writer) = &self.writer else { return };
        writer.stop.notify_one();
        let task = writer.task.lock().ok().and_then(|mut slot| slot.take());
        let Some(mut task) = task else { return };
        match tokio::time::timeout(FINISH_WITHIN, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the audit writer ended badly"),
            Err(_) => {
                task.abort();
                tracing::warn!("audit events still queued at the stop were not written");
            }
        }
    }

    /// Queues `entry`; never waits.
    pub fn record(&self, origin: &Origin, entry: Entry) {
        let Some(queue) = &self.queue else { return };
        if queue.try_send(row(origin, entry)).is_err()
            && self.dropped.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000)
        {
            tracing::warn!(
                dropped = self.dropped.load(Ordering::Relaxed),
                "audit queue full: events dropped"
            );
        }
    }
}

/// The row of an event; the CLI writes it at once (`store::audit::insert_many`).
pub fn row(origin: &Origin, entry: Entry) -> audit_event::ActiveModel {
    audit_event::ActiveModel {
        at: Set(Utc::now()),
        event: Set(entry.event.to_owned()),
        user_id: Set(entry.user_id),
        actor_id: Set(entry.actor_id),
        provider: Set(cut(entry.provider, 32)),
        method: Set(cut(entry.method, 32)),
        outcome: Set(cut(entry.outcome, 64)),
        client_ip: Set(origin.client_ip.clone()),
        user_agent: Set(cut(origin.user_agent.clone(), 255)),
        request_id: Set(origin.request_id.clone()),
        detail: Set(entry.detail.map(|d| d.to_string())),
        ..Default::default()
    }
}

async fn write_batches(
    db: DatabaseConnection,
    turn: store::WriteTurn,
    mut rows: mpsc::Receiver<audit_event::ActiveModel>,
    writer: Arc<Writer>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut stopping = false;
    loop {
        if !stopping {
            tokio::select! {
                taken = rows.recv_many(&mut batch, BATCH) => if taken == 0 { break },
                () = writer.stop.notified() => stopping = true,
            }
        }
        if !stopping && batch.len() < BATCH {
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = writer.stop.notified() => stopping = true,
            }
        }
        while batch.len() < BATCH
            && let Ok(row) = rows.try_recv()
        {
            batch.push(row);
        }
        if batch.is_empty() {
            // Stopping, and everything queued is written.
            break;
        }
        let count = batch.len();
        // SQLite has one writer: queue behind the hot write paths rather than race them.
        let _turn = turn.take().await;
        // One retry: a busy database (SQLite's one writer) usually frees up at once.
        let mut result = store::audit::insert_many(&db, &batch).await;
        if result.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            result = store::audit::insert_many(&db, &batch).await;
        }
        if let Err(e) = result {
            tracing::warn!(error = %e, count, "audit events could not be written");
        }
        batch.clear();
    }
}

/// One page of the trail (newest first), filtered, and how many rows match in all.
pub async fn page(
    db: &DatabaseConnection,
    filter: &crate::store::audit::AuditFilter,
    page: u64,
    size: u64,
) -> Result<(Vec<audit_event::Model>, u64), crate::store::StoreError> {
    crate::store::audit::page(db, filter, page, size).await
}
