//! Writes a dump in one transaction: rows that exist already are listed and abort it (nothing is
//! overwritten); a dry run does every insert and then rolls back.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    hash::Hash,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

use super::{Dump, ImportError, PROGRESS_EVERY, Row, check};
use crate::store::{self, StoreError};

/// What was (or, in a dry run, would have been) written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub users: usize,
    pub social_accounts: usize,
    pub email_addresses: usize,
    /// Users whose password hash no login can verify (they need a password reset).
    pub unsupported_passwords: usize,
    pub dry_run: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "users            {}", self.users)?;
        writeln!(f, "social accounts  {}", self.social_accounts)?;
        writeln!(f, "email addresses  {}", self.email_addresses)?;
        if self.unsupported_passwords > 0 {
            writeln!(
                f,
                "warning: users whose password hash authbridge cannot verify (only pbkdf2_sha256 \
                 and argon2 are): {}; they must reset their password",
                self.unsupported_passwords
            )?;
        }
        if self.dry_run {
            write!(f, "dry run: every row checked, nothing written")
        } else {
            write!(f, "imported in one transaction")
        }
    }
}

/// Checks the dump against the database and writes it, all inside one transaction.
pub async fn import(
    db: &DatabaseConnection,
    dump: &Dump,
    dry_run: bool,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Summary, ImportError> {
    let txn = db.begin().await.map_err(StoreError::from)?;
    let conflicts = conflicts(&txn, dump).await?;
    if !conflicts.is_empty() {
        return Err(ImportError::Conflicts(conflicts));
    }
    insert(&txn, "users", &dump.users, progress, store::users::insert_imported).await?;
    insert(
        &txn,
        "social accounts",
        &dump.social_accounts,
        progress,
        store::social::insert_imported,
    )
    .await?;
    insert(
        &txn,
        "email addresses",
        &dump.email_addresses,
        progress,
        store::users::insert_imported_emails,
    )
    .await?;
    if dry_run {
        txn.rollback().await.map_err(StoreError::from)?;
    } else {
        // setval is not transactional: it runs only once every insert has succeeded.
        store::reset_id_sequences(&txn, &["users", "social_accounts", "email_addresses"]).await?;
        txn.commit().await.map_err(StoreError::from)?;
    }
    Ok(Summary {
        users: dump.users.len(),
        social_accounts: dump.social_accounts.len(),
        email_addresses: dump.email_addresses.len(),
        unsupported_passwords: dump
            .users
            .iter()
            .filter(|u| !crate::password::is_supported_format(&u.model.password))
            .count(),
        dry_run,
    })
}

async fn insert<C: ConnectionTrait, T: Clone>(
    db: &C,
    what: &str,
    rows: &[Row<T>],
    progress: &mut (dyn FnMut(&str) + Send),
    insert_batch: impl AsyncFn(&C, &[T]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut written = 0;
    for chunk in rows.chunks(PROGRESS_EVERY) {
        let models: Vec<T> = chunk.iter().map(|r| r.model.clone()).collect();
        insert_batch(db, &models).await?;
        written += chunk.len();
        if rows.len() >= PROGRESS_EVERY {
            progress(&format!("{what}: {written} of {} written", rows.len()));
        }
    }
    Ok(())
}

/// Every row whose id, username, (provider, uid) or email exists in authbridge, and every row
/// that names a user found neither in the dump nor in authbridge.
async fn conflicts(db: &impl ConnectionTrait, dump: &Dump) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    let ids = keys(&dump.users, |u| u.id);
    let taken = store::users::existing_ids(db, &ids).await?;
    name_taken(&dump.users, |u| u.id, taken, "user id", &mut found);
    let usernames = keys(&dump.users, |u| u.username.clone());
    let taken = store::usernames::taken(db, &usernames).await?.into_iter().collect();
    name_taken(&dump.users, |u| u.username.clone(), taken, "username", &mut found);

    let ids = keys(&dump.social_accounts, |a| a.id);
    let taken = store::social::existing_account_ids(db, &ids).await?;
    name_taken(&dump.social_accounts, |a| a.id, taken, "social account id", &mut found);
    let mut by_provider: HashMap<&str, Vec<String>> = HashMap::new();
    for row in &dump.social_accounts {
        by_provider
            .entry(&row.model.provider)
            .or_default()
            .push(row.model.uid.clone());
    }
    for (provider, uids) in by_provider {
        let taken = store::social::existing_uids(db, provider, &uids).await?;
        let taken = taken.into_iter().map(|uid| (provider.to_owned(), uid)).collect();
        let key = |a: &entity::social_account::Model| (a.provider.clone(), a.uid.clone());
        name_taken(&dump.social_accounts, key, taken, "social account", &mut found);
    }

    let ids = keys(&dump.email_addresses, |e| e.id);
    let taken = store::users::existing_email_ids(db, &ids).await?;
    name_taken(&dump.email_addresses, |e| e.id, taken, "email address id", &mut found);
    let emails = keys(&dump.email_addresses, |e| e.email.clone());
    let taken = store::users::existing_emails(db, &emails).await?;
    name_taken(&dump.email_addresses, |e| e.email.clone(), taken, "email", &mut found);

    let outside = check::outside_users(dump);
    let present = store::users::existing_ids(db, &outside).await?;
    let absent: HashSet<i32> = outside.into_iter().filter(|id| !present.contains(id)).collect();
    let missing = |id: &i32| absent.contains(id);
    for row in dump.social_accounts.iter().filter(|r| missing(&r.model.user_id)) {
        found.push(format!(
            "{}: user_id {} is neither in the dump nor in authbridge",
            row.at, row.model.user_id
        ));
    }
    for row in dump.email_addresses.iter().filter(|r| missing(&r.model.user_id)) {
        found.push(format!(
            "{}: user_id {} is neither in the dump nor in authbridge",
            row.at, row.model.user_id
        ));
    }
    Ok(found)
}

fn keys<T, K>(rows: &[Row<T>], key: impl Fn(&T) -> K) -> Vec<K> {
    rows.iter().map(|r| key(&r.model)).collect()
}

fn name_taken<T, K: Eq + Hash + fmt::Debug>(
    rows: &[Row<T>],
    key: impl Fn(&T) -> K,
    taken: Vec<K>,
    what: &str,
    found: &mut Vec<String>,
) {
    if taken.is_empty() {
        return;
    }
    let taken: HashSet<K> = taken.into_iter().collect();
    for row in rows {
        let k = key(&row.model);
        if taken.contains(&k) {
            found.push(format!("{}: {what} {k:?} already exists", row.at));
        }
    }
}
