//! Users and their email addresses.

use chrono::{DateTime, Utc};
use entity::{email_address, user};
use rand::{Rng, distributions::Alphanumeric};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, Set, TransactionSession, TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, OnConflict},
};

use super::{BATCH, StoreError, existing_values, is_unique_violation};

pub async fn get(db: &impl ConnectionTrait, id: i32) -> Result<user::Model, StoreError> {
    super::unique(user::Entity::find_by_id(id), db)
        .await?
        .ok_or(StoreError::NotFound("user"))
}

pub async fn find_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<email_address::Model>, StoreError> {
    Ok(email_address::Entity::find()
        .filter(email_address::Column::Email.eq(email.to_lowercase()))
        .one(db)
        .await?)
}

/// A user whose `users.email` matches case-insensitively (users made without an email row).
pub async fn find_by_user_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<user::Model>, StoreError> {
    // Users without an address have "" there: an empty address matches nobody.
    if email.trim().is_empty() {
        return Ok(None);
    }
    Ok(user::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(user::Column::Email))).eq(email.to_lowercase()))
        .one(db)
        .await?)
}

pub async fn touch_last_login(db: &impl ConnectionTrait, id: i32, now: DateTime<Utc>) -> Result<(), StoreError> {
    user::Entity::update_many()
        .col_expr(user::Column::LastLogin, Expr::value(now))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// What a new user starts with.
pub struct NewUser<'a> {
    pub username_hint: Option<&'a str>,
    /// Used in the fallback username `<fallback_prefix>_<n>`; e.g. `kakao_12345`.
    pub fallback_username: String,
    pub email: Option<&'a str>,
    pub email_verified: bool,
}

impl NewUser<'_> {
    /// What the username is made from, in order (allauth: the first that gives a name).
    pub(crate) fn username_texts(&self) -> impl Iterator<Item = &str> {
        [self.username_hint, self.email, Some(self.fallback_username.as_str())]
            .into_iter()
            .flatten()
    }
}

/// How many times a new user's candidates are drawn again when another writer took every free
/// one between our query and our insert.
const USERNAME_ROUNDS: usize = 3;

/// Inserts a user with an unusable password and a unique username (`usernames`), plus its email
/// row. The taken candidates are found by one query, so the insert normally succeeds at once; a
/// name taken meanwhile by another writer moves on to the next free one.
pub async fn insert_with_unique_username(
    db: &DatabaseTransaction,
    new: NewUser<'_>,
    now: DateTime<Utc>,
) -> Result<user::Model, StoreError> {
    let mut inserted = None;
    'rounds: for _ in 0..USERNAME_ROUNDS {
        for username in super::usernames::free_candidates(db, new.username_texts()).await? {
            if let Some(user) = insert_if_free(db, new_user_row(&new, username, now)).await? {
                inserted = Some(user);
                break 'rounds;
            }
        }
    }
    let user = inserted.ok_or(StoreError::Contended("username"))?;
    if let Some(row) = new_email_row(&new, user.id) {
        row.insert(db).await?;
    }
    Ok(user)
}

/// Inserts `row`, or `None` when its username was taken meanwhile. SQLite and PostgreSQL skip a
/// taken name in the statement itself; MariaDB (no RETURNING) tries it in a savepoint, as a
/// failed statement must not end the caller's transaction.
async fn insert_if_free(db: &DatabaseTransaction, row: user::ActiveModel) -> Result<Option<user::Model>, StoreError> {
    if db.support_returning() {
        let on_taken = OnConflict::column(user::Column::Username).do_nothing().to_owned();
        return match user::Entity::insert(row)
            .on_conflict(on_taken)
            .exec_with_returning(db)
            .await
        {
            Ok(user) => Ok(Some(user)),
            Err(DbErr::RecordNotInserted | DbErr::RecordNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        };
    }
    let savepoint = db.begin().await?;
    match row.insert(&savepoint).await {
        Ok(user) => {
            savepoint.commit().await?;
            Ok(Some(user))
        }
        Err(e) if is_unique_violation(&e) => {
            savepoint.rollback().await?;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The row of a new user named `username`, signed in at `now`, with an unusable password.
pub(crate) fn new_user_row(new: &NewUser<'_>, username: String, now: DateTime<Utc>) -> user::ActiveModel {
    user::ActiveModel {
        username: Set(username),
        email: Set(new.email.unwrap_or_default().to_owned()),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        password: Set(unusable_password()),
        is_active: Set(true),
        is_staff: Set(false),
        is_superuser: Set(false),
        date_joined: Set(now),
        last_login: Set(Some(now)),
        ..Default::default()
    }
}

/// The primary email row of a new user, if it has an address.
pub(crate) fn new_email_row(new: &NewUser<'_>, user_id: i32) -> Option<email_address::ActiveModel> {
    Some(email_address::ActiveModel {
        user_id: Set(user_id),
        email: Set(new.email?.to_lowercase()),
        verified: Set(new.email_verified),
        primary: Set(true),
        ..Default::default()
    })
}

/// Django marks accounts without a password with a `!` prefix; nothing verifies against it.
fn unusable_password() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("!{random}")
}

/// Django's username rule: letters, digits and `@.+-_`, at most 150 characters.
pub fn is_valid_username(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= 150 && name.chars().all(is_username_char)
}

fn is_username_char(c: char) -> bool {
    c.is_alphanumeric() || "@.+-_".contains(c)
}

/// The user a login name means, as allauth's `ACCOUNT_AUTHENTICATION_METHOD = "username_email"`:
/// a name with an `@` is an email first (case-insensitive), so a username spelled like someone
/// else's address cannot stand in for that address; then the exact username.
pub async fn find_by_login(db: &impl ConnectionTrait, login: &str) -> Result<Option<user::Model>, StoreError> {
    if login.contains('@') {
        if let Some(row) = find_email(db, login).await? {
            return Ok(Some(get(db, row.user_id).await?));
        }
        if let Some(user) = find_by_user_email(db, login).await? {
            return Ok(Some(user));
        }
    }
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(login))
        .one(db)
        .await?)
}

/// The id of the user who owns `email` (an email row, or `users.email`), if any.
pub async fn email_owner(db: &impl ConnectionTrait, email: &str) -> Result<Option<i32>, StoreError> {
    if let Some(row) = find_email(db, email).await? {
        return Ok(Some(row.user_id));
    }
    Ok(find_by_user_email(db, email).await?.map(|u| u.id))
}

pub async fn update_password(db: &impl ConnectionTrait, id: i32, hash: &str) -> Result<(), StoreError> {
    user::Entity::update_many()
        .col_expr(user::Column::Password, Expr::value(hash))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// A local user with a password hash (createsuperuser). A taken username is a conflict.
pub struct NewLocalUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: String,
    pub is_staff: bool,
    pub is_superuser: bool,
}

pub async fn insert_local(db: &impl ConnectionTrait, new: NewLocalUser<'_>) -> Result<user::Model, StoreError> {
    let row = user::ActiveModel {
        username: Set(new.username.to_owned()),
        email: Set(new.email.to_owned()),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        password: Set(new.password_hash),
        is_active: Set(true),
        is_staff: Set(new.is_staff),
        is_superuser: Set(new.is_superuser),
        date_joined: Set(chrono::Utc::now()),
        last_login: Set(None),
        ..Default::default()
    };
    row.insert(db).await.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Taken { field: "username" }
        } else {
            e.into()
        }
    })
}

/// Deletes the user; social accounts, email rows and tokens go with it (ON DELETE CASCADE).
pub async fn delete(db: &(impl ConnectionTrait + TransactionTrait), id: i32) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    user::Entity::delete_by_id(id).exec(&txn).await?;
    super::standing::record_changes(&txn, &[id], Utc::now()).await?;
    Ok(txn.commit().await?)
}

pub async fn list_emails(db: &impl ConnectionTrait, user_id: i32) -> Result<Vec<email_address::Model>, StoreError> {
    Ok(email_address::Entity::find()
        .filter(email_address::Column::UserId.eq(user_id))
        .all(db)
        .await?)
}

/// An email row; a taken address is `StoreError::Taken`.
pub async fn insert_email(
    db: &impl ConnectionTrait,
    user_id: i32,
    email: &str,
    verified: bool,
) -> Result<(), StoreError> {
    let row = email_address::ActiveModel {
        user_id: Set(user_id),
        email: Set(email.to_lowercase()),
        verified: Set(verified),
        primary: Set(true),
        ..Default::default()
    };
    row.insert(db).await.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Taken { field: "email" }
        } else {
            e.into()
        }
    })?;
    Ok(())
}

pub async fn set_email_verified(db: &impl ConnectionTrait, user_id: i32, email: &str) -> Result<(), StoreError> {
    email_address::Entity::update_many()
        .col_expr(email_address::Column::Verified, Expr::value(true))
        .filter(email_address::Column::UserId.eq(user_id))
        .filter(email_address::Column::Email.eq(email.to_lowercase()))
        .exec(db)
        .await?;
    Ok(())
}

/// Field updates of `PUT/PATCH /rest-auth/user/`; `None` leaves a field as it is. A taken
/// username is `StoreError::Taken`.
pub async fn update_profile(
    db: &impl ConnectionTrait,
    id: i32,
    username: Option<&str>,
    first_name: Option<&str>,
    last_name: Option<&str>,
) -> Result<user::Model, StoreError> {
    let mut row: user::ActiveModel = get(db, id).await?.into();
    if let Some(v) = username {
        row.username = Set(v.to_owned());
    }
    if let Some(v) = first_name {
        row.first_name = Set(v.to_owned());
    }
    if let Some(v) = last_name {
        row.last_name = Set(v.to_owned());
    }
    row.update(db).await.map_err(|e| match e {
        // Deleted meanwhile (a concurrent DELETE /rest-auth/user/).
        sea_orm::DbErr::RecordNotUpdated => StoreError::NotFound("user"),
        e if is_unique_violation(&e) => StoreError::Taken { field: "username" },
        e => e.into(),
    })
}

/// Enables or disables a user; disabling also revokes every token the user holds (moves the
/// revocation point), whoever disables (the CLI, the admin API).
pub async fn set_active(
    db: &(impl ConnectionTrait + TransactionTrait),
    id: i32,
    active: bool,
) -> Result<(), StoreError> {
    let (txn, now) = (db.begin().await?, Utc::now());
    let mut update = user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(active))
        .filter(user::Column::Id.eq(id));
    if !active {
        // Disabled and revoked in one statement, recorded as one change.
        update = update.col_expr(user::Column::TokensValidAfter, Expr::value(now));
    }
    update.exec(&txn).await?;
    super::standing::record_changes(&txn, &[id], now).await?;
    txn.commit().await?;
    if !active {
        super::tokens::sweep_user(db, id, now).await?;
    }
    Ok(())
}

/// Inserts users exactly as given, ids included (`authbridge import-django`).
pub async fn insert_imported(db: &impl ConnectionTrait, users: &[user::Model]) -> Result<(), StoreError> {
    for chunk in users.chunks(BATCH) {
        user::Entity::insert_many(chunk.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Inserts email rows exactly as given, ids included (`authbridge import-django`).
pub async fn insert_imported_emails(
    db: &impl ConnectionTrait,
    rows: &[email_address::Model],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(BATCH) {
        email_address::Entity::insert_many(chunk.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Which of `ids` are taken by users.
pub async fn existing_ids(db: &impl ConnectionTrait, ids: &[i32]) -> Result<Vec<i32>, StoreError> {
    existing_values::<user::Entity, _>(db, user::Column::Id, ids).await
}

/// Which of `ids` are taken by email rows.
pub async fn existing_email_ids(db: &impl ConnectionTrait, ids: &[i32]) -> Result<Vec<i32>, StoreError> {
    existing_values::<email_address::Entity, _>(db, email_address::Column::Id, ids).await
}

/// Which of the lower-cased `emails` have an email row.
pub async fn existing_emails(db: &impl ConnectionTrait, emails: &[String]) -> Result<Vec<String>, StoreError> {
    existing_values::<email_address::Entity, _>(db, email_address::Column::Email, emails).await
}

/// An active user row with only an id and a name, for unit tests that need a `user::Model`.
#[cfg(test)]
pub(crate) fn test_row(id: i32, username: &str) -> user::Model {
    user::Model {
        id,
        username: username.into(),
        email: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        password: String::new(),
        is_active: true,
        is_staff: false,
        is_superuser: false,
        date_joined: Utc::now(),
        last_login: None,
        tokens_valid_after: None,
    }
}
