//! First social logins made together (a job of the group-commit writer, `write_queue`). Each
//! new provider id means a user row, maybe an email row, and a social-account row: one
//! transaction per login was five statements queued behind SQLite's one writer, and capped new
//! users at ~2,000/s. Here a batch of them is a few multi-row statements in one transaction.
//!
//! The batch is all or nothing: any database error (a uid or an email that another instance
//! took meanwhile, a lost connection) rolls it back, and every signup of it is answered "not
//! done", so its caller takes the one-login path (`social::upsert_login`), which knows how to
//! retry a conflict and how to report the rest.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{social_account, user};
use sea_orm::{DatabaseTransaction, DbErr, EntityTrait, sea_query::OnConflict};

use crate::providers::ProviderUser;
use crate::store::pow2_chunks;
use crate::store::{StoreError, social, usernames, users};

/// A verified provider account seen for the first time, whose email (if any) no local user owns.
pub struct Signup {
    pub provider: String,
    pub account: ProviderUser,
    pub now: DateTime<Utc>,
}

/// How many times a signup whose every candidate was taken (by a writer outside the batch, between
/// our query and our insert) draws new ones before the one-login path gets it.
const ROUNDS: usize = 3;

/// Creates the user and social account of every signup in `txn`; `None` for a signup the batch
/// left to the one-login path: a second signup of a uid already in the batch, or one that found
/// no free username.
pub async fn create_all(txn: &DatabaseTransaction, signups: &[Signup]) -> Result<Vec<Option<user::Model>>, DbErr> {
    let mut created: Vec<Option<user::Model>> = vec![None; signups.len()];
    let news: Vec<users::NewUser<'_>> = signups
        .iter()
        .map(|s| social::new_user_of(&s.provider, &s.account))
        .collect();
    let bases: Vec<String> = news.iter().map(|n| usernames::base(n.username_texts())).collect();
    let mut seen = HashSet::new();
    let mut pending: Vec<usize> = (0..signups.len())
        .filter(|&i| seen.insert((signups[i].provider.as_str(), signups[i].account.uid.as_str())))
        .collect();

    // Each round: every pending signup's candidates, one query for which are taken, then each
    // signup gets its first candidate neither taken nor given to an earlier signup of the batch,
    // so two new users of one nickname get different suffixes in the same batch.
    for _ in 0..ROUNDS {
        if pending.is_empty() {
            break;
        }
        let candidates: Vec<(usize, Vec<String>)> = {
            let mut rng = rand::thread_rng();
            pending
                .iter()
                .map(|&i| (i, usernames::candidates(&bases[i], &mut rng)))
                .collect()
        };
        let all: Vec<String> = candidates.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
        let mut taken = usernames::taken(txn, &all).await.map_err(store_to_db)?;
        let mut proposed: HashMap<String, usize> = HashMap::new();
        let mut rows = Vec::new();
        for (i, names) in candidates {
            if let Some(name) = names.into_iter().find(|n| !taken.contains(n)) {
                taken.insert(name.clone());
                rows.push(users::new_user_row(&news[i], name.clone(), signups[i].now));
                proposed.insert(name, i);
            }
        }
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

/// The batch speaks `DbErr` (its caller rolls back on any); a store error here is a database one.
fn store_to_db(e: StoreError) -> DbErr {
    match e {
        StoreError::Db(e) | StoreError::Unavailable(e) => e,
        other => DbErr::Custom(other.to_string()),
    }
}
