//! Reads and writes only the admin API makes: user pages with search, site and social-app edits.

use entity::{site, social_account, social_app, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Set,
    sea_query::{Expr, ExprTrait, Func},
};

use super::{StoreError, is_unique_violation};

/// One page (1-based) of users by id, matching `search` when given: a part of the username or
/// email (any case), or exactly a provider uid. Returns the page and how many match in all.
pub async fn page_users(
    db: &impl ConnectionTrait,
    search: Option<&str>,
    page: u64,
    page_size: u64,
) -> Result<(Vec<user::Model>, u64), StoreError> {
    let mut query = user::Entity::find();
    if let Some(term) = search.map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", term.to_lowercase().replace(['%', '_'], ""));
        let lower = |column: user::Column| Expr::expr(Func::lower(Expr::col((user::Entity, column))));
        let by_uid = social_account::Entity::find()
            .select_only()
            .column(social_account::Column::UserId)
            .filter(social_account::Column::Uid.eq(term))
            .into_query();
        query = query.filter(
            Condition::any()
                .add(lower(user::Column::Username).like(&pattern))
                .add(lower(user::Column::Email).like(&pattern))
                .add(user::Column::Id.in_subquery(by_uid)),
        );
    }
    let pages = query.order_by_asc(user::Column::Id).paginate(db, page_size);
    let total = pages.num_items().await?;
    Ok((pages.fetch_page(page.saturating_sub(1)).await?, total))
}

/// Changes a site's domain and name; a taken domain is `StoreError::Taken`.
pub async fn update_site(
    db: &impl ConnectionTrait,
    id: i32,
    domain: &str,
    name: &str,
) -> Result<site::Model, StoreError> {
    let mut row: site::ActiveModel = super::sites::get(db, id).await?.into();
    row.domain = Set(domain.to_lowercase());
    row.name = Set(name.to_owned());
    row.update(db).await.map_err(|e| match is_unique_violation(&e) {
        true => StoreError::Taken { field: "domain" },
        false => e.into(),
    })
}

pub async fn delete_site(db: &impl ConnectionTrait, id: i32) -> Result<(), StoreError> {
    let deleted = site::Entity::delete_by_id(id).exec(db).await?;
    match deleted.rows_affected {
        0 => Err(StoreError::NotFound("site")),
        _ => Ok(()),
    }
}

pub async fn delete_social_app(db: &impl ConnectionTrait, id: i32) -> Result<(), StoreError> {
    entity::social_app_site::Entity::delete_many()
        .filter(entity::social_app_site::Column::SocialAppId.eq(id))
        .exec(db)
        .await?;
    let deleted = social_app::Entity::delete_by_id(id).exec(db).await?;
    match deleted.rows_affected {
        0 => Err(StoreError::NotFound("social app")),
        _ => Ok(()),
    }
}
