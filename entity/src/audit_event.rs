//! `audit_events`: the security trail (sign-ins, revocations, account changes, admin actions).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// `login.succeeded`, `logout_all`, `admin.user.disabled`, … (README, Operations).
    pub event: String,
    /// The user the event is about.
    pub user_id: Option<i32>,
    /// Who did it, when not the user themselves (a staff user through the admin API).
    pub actor_id: Option<i32>,
    pub provider: Option<String>,
    /// How: `password`, `access_token`, `code`, `id_token`, `cli`, …
    pub method: Option<String>,
    /// For failures, the error code answered.
    pub outcome: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// A little JSON of context (a kid, a login name's hash prefix); never a secret.
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
