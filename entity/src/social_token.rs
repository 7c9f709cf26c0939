//! `social_tokens`: allauth's `SocialToken`, a provider token kept to revoke the link later
//! (Apple's refresh token, Naver's token). Never returned by the API, never logged.

use sea_orm::entity::prelude::*;

#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    /// `social_accounts.id`; the row goes with the account.
    #[sea_orm(unique)]
    pub account_id: i32,
    pub token: String,
    /// `refresh_token` or `access_token`, as the provider's revoke endpoint wants it named.
    pub token_type_hint: String,
    pub updated_at: DateTimeUtc,
}

// By hand: the token must not reach a log through `{:?}`.
impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("social_token::Model")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
