//! First social logins made together (a job of the group-commit writer, `token_writer`). Each
//! new provider id means a user row, maybe an email row, and a social-account row: one
//! transaction per login was five statements queued behind SQLite's one writer, and capped new
//! users at ~2,000/s. Here a batch of them is a few multi-row statements in one transaction.
//!
//! The batch is all or nothing: any database error (a uid or an email that another instance
//! took meanwhile, a lost connection) rolls it back, and every signup of it is answered "not
//! done", so its caller takes the one-login path (`social::upsert_login`), which knows how to
//! retry a conflict and how to report the rest.

use std::collections::{HashMap, hash_map::Entry};

use chrono::{DateTime, Utc};
use entity::{social_account, user};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, sea_query::OnConflict};

use super::{social, token_writer::pow2_chunks, users};
use crate::providers::ProviderUser;

/// A verified provider account seen for the first time, whose email (if any) no local user owns.
pub struct Signup {
    pub provider: String,
    pub account: ProviderUser,
    pub now: DateTime<Utc>,
}

/// Creates the user and social account of every signup in `txn`; `None` for a signup the batch
/// left to the one-login path: a second signup of a uid already in the batch, or one whose every
/// username candidate was taken.
pub async fn create_all(txn: &DatabaseTransaction, signups: &[Signup]) -> Result<Vec<Option<user::Model>>, DbErr> {
    let mut created: Vec<Option<user::Model>> = vec![None; signups.len()];
    let news: Vec<users::NewUser<'_>> = signups
        .iter()
        .map(|s| social::new_user_of(&s.provider, &s.account))
        .collect();
    let mut candidates: Vec<_> = news
        .iter()
        .map(|n| users::username_candidates(n.username_hint, &n.fallback_username).into_iter())
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut pending: Vec<usize> = (0..signups.len())
        .filter(|&i| seen.insert((signups[i].provider.as_str(), signups[i].account.uid.as_str())))
        .collect();

    // One round per username candidate (six at most): a name taken in the table, or by an
    // earlier signup of the same round, moves that signup on to its next candidate.
    while !pending.is_empty() {
        let mut proposed: HashMap<String, usize> = HashMap::new();
        let mut rows = Vec::new();
        pending.retain(|&i| {
            let Some(name) = candidates[i].next() else {
                return false;
            };
            if let Entry::Vacant(slot) = proposed.entry(name) {
                rows.push(users::new_user_row(&news[i], slot.key().clone(), signups[i].now));
                slot.insert(i);
            }
            true
        });
        for chunk in pow2_chunks(&rows) {
            let on_taken = OnConflict::column(user::Column::Username).do_nothing().to_owned();
            let inserted = user::Entity::insert_many(chunk.to_vec())
                .on_conflict(on_taken)
                .exec_with_returning(txn)
                .await?;
            for user in inserted {
                let i = proposed[&user.username];
                created[i] = Some(user);
            }
        }
        pending.retain(|&i| created[i].is_none());
    }

    let made = || created.iter().enumerate().filter_map(|(i, u)| Some((i, u.as_ref()?)));
    let emails: Vec<_> = made()
        .filter_map(|(i, u)| users::new_email_row(&news[i], u.id))
        .collect();
    for chunk in pow2_chunks(&emails) {
        entity::email_address::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    let accounts: Vec<_> = made()
        .map(|(i, u)| {
            let s = &signups[i];
            social::new_account_row(u.id, &s.provider, &s.account, s.now)
        })
        .collect();
    for chunk in pow2_chunks(&accounts) {
        social_account::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(created)
}
