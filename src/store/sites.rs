//! Sites (Django's `django_site`).

use entity::site;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{StoreError, is_unique_violation};

pub async fn find_by_domain(db: &impl ConnectionTrait, domain: &str) -> Result<Option<site::Model>, StoreError> {
    Ok(site::Entity::find()
        .filter(site::Column::Domain.eq(domain))
        .one(db)
        .await?)
}

pub async fn get(db: &impl ConnectionTrait, id: i32) -> Result<site::Model, StoreError> {
    site::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound("site"))
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<site::Model>, StoreError> {
    Ok(site::Entity::find().order_by_asc(site::Column::Id).all(db).await?)
}

/// Adds a site; a taken domain is `StoreError::Taken`.
pub async fn insert(db: &impl ConnectionTrait, domain: &str, name: &str) -> Result<site::Model, StoreError> {
    let row = site::ActiveModel {
        domain: Set(domain.to_lowercase()),
        name: Set(name.to_owned()),
        ..Default::default()
    };
    row.insert(db).await.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Taken { field: "domain" }
        } else {
            e.into()
        }
    })
}
