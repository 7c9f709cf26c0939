//! Checks of the dump against itself, before the database is asked anything: each key appears
//! once, and every social account and email row names a user of the dump.

use std::{collections::HashMap, hash::Hash};

use super::{Dump, ImportError, Location, Row};

/// Users named by social accounts or email rows but absent from the dump; `write` requires them
/// to exist in authbridge already.
pub(super) fn outside_users(dump: &Dump) -> Vec<i32> {
    let ours: std::collections::HashSet<i32> = dump.users.iter().map(|r| r.model.id).collect();
    let mut outside: Vec<i32> = dump
        .social_accounts
        .iter()
        .map(|r| r.model.user_id)
        .chain(dump.email_addresses.iter().map(|r| r.model.user_id))
        .filter(|id| !ours.contains(id))
        .collect();
    outside.sort_unstable();
    outside.dedup();
    outside
}

pub(super) fn within(dump: &Dump) -> Result<(), ImportError> {
    let mut problems = Vec::new();
    duplicates(&dump.users, "user id", |u| u.id, &mut problems);
    duplicates(&dump.users, "username", |u| u.username.clone(), &mut problems);
    duplicates(&dump.social_accounts, "social account id", |a| a.id, &mut problems);
    duplicates(
        &dump.social_accounts,
        "social account",
        |a| format!("{} {}", a.provider, a.uid),
        &mut problems,
    );
    duplicates(&dump.email_addresses, "email address id", |e| e.id, &mut problems);
    duplicates(&dump.email_addresses, "email", |e| e.email.clone(), &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Inconsistent(problems))
    }
}

fn duplicates<T, K: Eq + Hash + std::fmt::Debug>(
    rows: &[Row<T>],
    what: &str,
    key: impl Fn(&T) -> K,
    problems: &mut Vec<String>,
) {
    let mut first: HashMap<K, &Location> = HashMap::with_capacity(rows.len());
    for row in rows {
        let k = key(&row.model);
        if let Some(earlier) = first.get(&k) {
            problems.push(format!("{}: {what} {k:?} is also at {earlier}", row.at));
        } else {
            first.insert(k, &row.at);
        }
    }
}

#[cfg(test)]
mod tests {
    use entity::user;

    use super::*;

    fn user_row(line: u64, id: i32, username: &str) -> Row<user::Model> {
        Row {
            at: Location::Line {
                file: "users.csv".into(),
                line,
            },
            model: crate::store::users::test_row(id, username),
        }
    }

    #[test]
    fn a_repeated_id_or_username_is_named_with_both_lines() {
        let dump = Dump {
            users: vec![user_row(2, 1, "a"), user_row(3, 1, "b"), user_row(4, 2, "a")],
            ..Default::default()
        };
        let Err(ImportError::Inconsistent(problems)) = within(&dump) else {
            panic!("duplicates found")
        };
        assert_eq!(
            problems,
            [
                "users.csv line 3: user id 1 is also at users.csv line 2",
                "users.csv line 4: username \"a\" is also at users.csv line 2",
            ]
        );
    }
}
