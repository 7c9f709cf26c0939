//! Social apps (allauth `SocialApp`) and social accounts (allauth `SocialAccount`), including the
//! login upsert that turns a verified provider account into a user.

use std::time::Duration;

use chrono::Utc;
use entity::{social_account, social_app, social_app_site, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set, TransactionTrait, TryIntoModel, sea_query::Expr,
};
use secrecy::{ExposeSecret, SecretString};

use super::{StoreError, WriteTurn, is_unique_violation, users};
use crate::providers::{ProviderUser, SocialApp};

/// Fields of a new social app.
pub struct NewSocialApp {
    pub provider: String,
    pub name: String,
    pub client_id: String,
    pub secret: SecretString,
    pub admin_key: SecretString,
    pub app_ids: Vec<String>,
    pub client_keys: Vec<String>,
    pub sites: Vec<i32>,
}

fn from_row(row: social_app::Model, sites: Vec<i32>) -> Result<SocialApp, StoreError> {
    let list = |text: &str| {
        serde_json::from_str::<Vec<String>>(text)
            .map_err(|e| StoreError::Corrupt(format!("social app {}: {e}", row.id)))
    };
    Ok(SocialApp {
        app_ids: list(&row.app_ids)?,
        client_keys: list(&row.client_keys)?,
        settings: crate::providers::AppSettings::parse(&row.settings)
            .map_err(|e| StoreError::Corrupt(format!("social app {} settings: {e}", row.id)))?,
        id: row.id,
        provider: row.provider,
        name: row.name,
        client_id: row.client_id,
        secret: row.secret.into(),
        admin_key: row.admin_key.into(),
        sites,
    })
}

async fn sites_of(db: &impl ConnectionTrait, app_id: i32) -> Result<Vec<i32>, StoreError> {
    Ok(social_app_site::Entity::find()
        .filter(social_app_site::Column::SocialAppId.eq(app_id))
        .order_by_asc(social_app_site::Column::SiteId)
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.site_id)
        .collect())
}

/// The app for `provider` enabled on `site_id` (the newest, if several are).
pub async fn find_app_for_site(
    db: &impl ConnectionTrait,
    provider: &str,
    site_id: i32,
) -> Result<Option<SocialApp>, StoreError> {
    let row = social_app::Entity::find()
        .filter(social_app::Column::Provider.eq(provider))
        .filter(
            social_app::Column::Id.in_subquery(
                social_app_site::Entity::find()
                    .select_only()
                    .column(social_app_site::Column::SocialAppId)
                    .filter(social_app_site::Column::SiteId.eq(site_id))
                    .into_query(),
            ),
        )
        .order_by_desc(social_app::Column::Id)
        .one(db)
        .await?;
    match row {
        Some(row) => {
            let sites = sites_of(db, row.id).await?;
            Ok(Some(from_row(row, sites)?))
        }
        None => Ok(None),
    }
}

pub async fn list_apps(db: &impl ConnectionTrait) -> Result<Vec<SocialApp>, StoreError> {
    let mut apps = Vec::new();
    for row in social_app::Entity::find()
        .order_by_asc(social_app::Column::Id)
        .all(db)
        .await?
    {
        let sites = sites_of(db, row.id).await?;
        apps.push(from_row(row, sites)?);
    }
    Ok(apps)
}

/// Inserts the app, or updates the one with the same provider and client id, and sets its sites.
pub async fn upsert_app(db: &DatabaseConnection, turn: &WriteTurn, app: NewSocialApp) -> Result<SocialApp, StoreError> {
    // A read-then-write transaction: on SQLite it must not race another writer for the lock.
    let _turn = turn.take().await;
    let txn = db.begin().await?;
    for site_id in &app.sites {
        super::sites::get(&txn, *site_id).await?;
    }
    let existing = social_app::Entity::find()
        .filter(social_app::Column::Provider.eq(&app.provider))
        .filter(social_app::Column::ClientId.eq(&app.client_id))
        .one(&txn)
        .await?;
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    let mut row = match existing {
        Some(row) => row.into(),
        None => social_app::ActiveModel {
            created_at: Set(Utc::now()),
            settings: Set("{}".into()),
            ..Default::default()
        },
    };
    row.provider = Set(app.provider.clone());
    row.name = Set(app.name.clone());
    row.client_id = Set(app.client_id.clone());
    row.secret = Set(app.secret.expose_secret().to_owned());
    row.admin_key = Set(app.admin_key.expose_secret().to_owned());
    row.app_ids = Set(json(&app.app_ids));
    row.client_keys = Set(json(&app.client_keys));
    let row = row.save(&txn).await?.try_into_model()?;
    social_app_site::Entity::delete_many()
        .filter(social_app_site::Column::SocialAppId.eq(row.id))
        .exec(&txn)
        .await?;
    for site_id in &app.sites {
        social_app_site::ActiveModel {
            social_app_id: Set(row.id),
            site_id: Set(*site_id),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    from_row(row, app.sites)
}

pub async fn find_account(
    db: &impl ConnectionTrait,
    provider: &str,
    uid: &str,
) -> Result<Option<social_account::Model>, StoreError> {
    Ok(super::unique(
        social_account::Entity::find()
            .filter(social_account::Column::Provider.eq(provider))
            .filter(social_account::Column::Uid.eq(uid)),
        db,
    )
    .await?)
}

const LOGIN_ATTEMPTS: u32 = 8;

/// allauth's social login upsert (api.md 3, step 5): refresh an existing account's `extra_data`
/// and `last_login`, or create the user (or link a user whose verified email matches) and the
/// account. Concurrent first logins of one uid race on the (provider, uid) unique index; the
/// losers roll back and retry, and then take the existing-account path.
/// `existing` is the account as the caller just read it (`None`: not linked yet); conflicting
/// retries read it again.
pub async fn upsert_login(
    db: &DatabaseConnection,
    turn: &WriteTurn,
    provider: &str,
    account: &ProviderUser,
    existing: Option<social_account::Model>,
) -> Result<user::Model, StoreError> {
    let mut attempt = 0;
    let mut existing = Some(existing);
    loop {
        let known = match existing.take() {
            Some(known) => known,
            None => find_account(db, provider, &account.uid).await?,
        };
        match try_upsert_login(db, turn, provider, account, known).await {
            Err(e) if is_race(&e) => {
                attempt += 1;
                if attempt >= LOGIN_ATTEMPTS {
                    tracing::warn!(provider, error = %e, "social login upsert kept conflicting");
                    return Err(StoreError::Contended("social account"));
                }
                let jitter = rand::random::<u64>() % (5 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 5 + jitter)).await;
            }
            // A concurrent first login of the same uid may have committed between our reads;
            // its email is then ours, not "in use".
            Err(StoreError::EmailInUse)
                if attempt < LOGIN_ATTEMPTS && find_account(db, provider, &account.uid).await?.is_some() =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A collision with a concurrent writer, which a retry of the whole upsert resolves: contention,
/// or a unique index taken meanwhile (the same uid's first login, a username, an email).
fn is_race(e: &StoreError) -> bool {
    match e {
        StoreError::Contended(_) => true,
        StoreError::Db(e) => is_unique_violation(e),
        _ => false,
    }
}

async fn try_upsert_login(
    db: &DatabaseConnection,
    turn: &WriteTurn,
    provider: &str,
    account: &ProviderUser,
    existing: Option<social_account::Model>,
) -> Result<user::Model, StoreError> {
    let now = Utc::now();
    if let Some(existing) = existing {
        // Writes first, so a SQLite transaction takes the write lock (and waits for it) up front.
        let _turn = turn.take().await;
        let txn = db.begin().await?;
        refresh_account(&txn, &existing, account, now).await?;
        users::touch_last_login(&txn, existing.user_id, now).await?;
        let user = users::get(&txn, existing.user_id).await?;
        txn.commit().await?;
        return Ok(user);
    }
    // Read outside the transaction: a stale answer is caught by the unique indexes below.
    let link_to = link_target(db, account).await?;
    let _turn = turn.take().await;
    let txn = db.begin().await?;
    let user = match link_to {
        Link::Existing(user_id) => {
            users::touch_last_login(&txn, user_id, now).await?;
            users::get(&txn, user_id).await?
        }
        Link::NewUser => users::insert_with_unique_username(&txn, new_user_of(provider, account), now).await?,
        Link::NewUserReleasing(claim) => {
            super::email_claims::release_unverified(&txn, &claim).await?;
            users::insert_with_unique_username(&txn, new_user_of(provider, account), now).await?
        }
    };
    new_account_row(user.id, provider, account, now).insert(&txn).await?;
    txn.commit().await?;
    Ok(user)
}

/// The user a first login of `account` creates.
pub(crate) fn new_user_of<'a>(provider: &str, account: &'a ProviderUser) -> users::NewUser<'a> {
    users::NewUser {
        username_hint: account.username_hint.as_deref(),
        fallback_username: format!("{provider}_{}", account.uid),
        email: account.email.as_deref(),
        email_verified: account.email_verified,
    }
}

/// The social-account row linking `account` to `user_id`, made at `now`.
pub(crate) fn new_account_row(
    user_id: i32,
    provider: &str,
    account: &ProviderUser,
    now: chrono::DateTime<Utc>,
) -> social_account::ActiveModel {
    social_account::ActiveModel {
        user_id: Set(user_id),
        provider: Set(provider.to_owned()),
        uid: Set(account.uid.clone()),
        extra_data: Set(account.extra_data.clone()),
        date_joined: Set(now),
        last_login: Set(now),
        social_app_id: Set(account.social_app_id),
        ..Default::default()
    }
}

/// Whether a first login of `account` makes a new user: no local user owns its email, so it
/// neither links nor collides (the writer's batched signups take only these). A failed read says
/// no: the one-login path then reads again and reports it.
pub async fn makes_new_user(db: &impl ConnectionTrait, account: &ProviderUser) -> bool {
    matches!(link_target(db, account).await, Ok(Link::NewUser))
}

/// What a first login of a provider account does with its email.
enum Link {
    /// No one has the address: a new user.
    NewUser,
    /// Join this user: both sides call the address verified.
    Existing(i32),
    /// The provider vouches for the address, which another account only claims unverified: that
    /// claim is removed and the login makes its own user.
    NewUserReleasing(entity::email_address::Model),
}

/// The existing user a new social account may join: only when both the provider and our own
/// records call the address verified (allauth trusts the provider alone; that lets anyone who
/// controls a provider account with your unverified address take over your account). An
/// unverified claim never blocks a verified login.
async fn link_target(db: &impl ConnectionTrait, account: &ProviderUser) -> Result<Link, StoreError> {
    let Some(email) = account.email.as_deref() else {
        return Ok(Link::NewUser);
    };
    if let Some(row) = users::find_email(db, email).await? {
        return match (row.verified, account.email_verified) {
            (true, true) => Ok(Link::Existing(row.user_id)),
            (false, true) => Ok(Link::NewUserReleasing(row)),
            (_, false) => Err(StoreError::EmailInUse),
        };
    }
    if users::find_by_user_email(db, email).await?.is_some() {
        return Err(StoreError::EmailInUse);
    }
    Ok(Link::NewUser)
}

impl From<crate::config::SocialAppConfig> for NewSocialApp {
    fn from(c: crate::config::SocialAppConfig) -> Self {
        Self {
            name: c.name.unwrap_or_else(|| c.provider.clone()),
            provider: c.provider,
            client_id: c.client_id,
            secret: c.secret,
            admin_key: c.admin_key.unwrap_or_else(|| SecretString::from("")),
            app_ids: c.app_ids,
            client_keys: c.client_keys,
            sites: c.sites,
        }
    }
}

/// The Kakao-style apps whose allowed app ids include `app_id` (the unlink webhook names one).
pub async fn find_apps_by_app_id(
    db: &impl ConnectionTrait,
    provider: &str,
    app_id: &str,
) -> Result<Vec<SocialApp>, StoreError> {
    let mut found = Vec::new();
    for app in list_apps(db).await? {
        if app.provider == provider && app.app_ids.iter().any(|id| id == app_id) {
            found.push(app);
        }
    }
    Ok(found)
}

/// The account `uid` of `provider` if it came through one of `apps` (the apps whose admin key
/// the caller proved). An account from before the app was recorded counts only when the
/// provider has a single app, where it cannot have come through another.
pub async fn find_account_of_apps(
    db: &impl ConnectionTrait,
    provider: &str,
    uid: &str,
    apps: &[i32],
) -> Result<Option<social_account::Model>, StoreError> {
    let Some(account) = find_account(db, provider, uid).await? else {
        return Ok(None);
    };
    let came_through_them = match account.social_app_id {
        Some(app) => apps.contains(&app),
        None => list_apps(db).await?.iter().filter(|a| a.provider == provider).count() == 1,
    };
    Ok(came_through_them.then_some(account))
}

pub async fn list_accounts(db: &impl ConnectionTrait, user_id: i32) -> Result<Vec<social_account::Model>, StoreError> {
    Ok(social_account::Entity::find()
        .filter(social_account::Column::UserId.eq(user_id))
        .order_by_asc(social_account::Column::Id)
        .all(db)
        .await?)
}

pub async fn delete_account(db: &impl ConnectionTrait, id: i32) -> Result<(), StoreError> {
    social_account::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// A login's news on a linked account: the provider's latest data, the time, and the app it came
/// through (kept when the login does not say).
async fn refresh_account(
    db: &impl ConnectionTrait,
    existing: &social_account::Model,
    account: &ProviderUser,
    now: chrono::DateTime<Utc>,
) -> Result<(), StoreError> {
    social_account::Entity::update_many()
        .col_expr(
            social_account::Column::ExtraData,
            Expr::value(account.extra_data.clone()),
        )
        .col_expr(social_account::Column::LastLogin, Expr::value(now))
        .col_expr(
            social_account::Column::SocialAppId,
            Expr::value(account.social_app_id.or(existing.social_app_id)),
        )
        .filter(social_account::Column::Id.eq(existing.id))
        .exec(db)
        .await?;
    Ok(())
}

/// Links a verified provider account to `user_id` (allauth's "connect"). Already linked to this
/// user: refreshed. Linked to someone else: `StoreError::Taken`, also when a concurrent
/// connect wins the unique index.
pub async fn connect_account(
    db: &impl ConnectionTrait,
    user_id: i32,
    provider: &str,
    account: &ProviderUser,
) -> Result<(), StoreError> {
    let now = Utc::now();
    match find_account(db, provider, &account.uid).await? {
        Some(existing) if existing.user_id != user_id => Err(StoreError::Taken {
            field: "social account",
        }),
        Some(existing) => {
            refresh_account(db, &existing, account, now).await?;
            Ok(())
        }
        None => {
            new_account_row(user_id, provider, account, now)
                .insert(db)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        StoreError::Taken {
                            field: "social account",
                        }
                    } else {
                        e.into()
                    }
                })?;
            Ok(())
        }
    }
}

/// Inserts social accounts exactly as given, ids included (`authbridge import-django`).
pub async fn insert_imported(db: &impl ConnectionTrait, rows: &[social_account::Model]) -> Result<(), StoreError> {
    for chunk in rows.chunks(super::BATCH) {
        social_account::Entity::insert_many(chunk.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Which of `ids` are taken by social accounts.
pub async fn existing_account_ids(db: &impl ConnectionTrait, ids: &[i32]) -> Result<Vec<i32>, StoreError> {
    super::existing_values::<social_account::Entity, _>(db, social_account::Column::Id, ids).await
}

/// Which of `uids` of `provider` are linked already.
pub async fn existing_uids(
    db: &impl ConnectionTrait,
    provider: &str,
    uids: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    for chunk in uids.chunks(super::BATCH) {
        found.extend(
            social_account::Entity::find()
                .select_only()
                .column(social_account::Column::Uid)
                .filter(social_account::Column::Provider.eq(provider))
                .filter(social_account::Column::Uid.is_in(chunk.iter().cloned()))
                .into_tuple::<String>()
                .all(db)
                .await?,
        );
    }
    Ok(found)
}
