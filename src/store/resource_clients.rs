//! Resource-server clients (`resource_clients`): the APIs allowed to introspect tokens.

use chrono::Utc;
use entity::resource_client;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{StoreError, is_unique_violation};

pub async fn find(db: &impl ConnectionTrait, client_id: &str) -> Result<Option<resource_client::Model>, StoreError> {
    Ok(resource_client::Entity::find()
        .filter(resource_client::Column::ClientId.eq(client_id))
        .one(db)
        .await?)
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<resource_client::Model>, StoreError> {
    Ok(resource_client::Entity::find()
        .order_by_asc(resource_client::Column::Id)
        .all(db)
        .await?)
}

/// Adds a client; a taken client id is `StoreError::Taken`.
pub async fn insert(
    db: &impl ConnectionTrait,
    client_id: &str,
    name: &str,
    secret_hash: &str,
) -> Result<resource_client::Model, StoreError> {
    let row = resource_client::ActiveModel {
        client_id: Set(client_id.to_owned()),
        name: Set(name.to_owned()),
        secret_hash: Set(secret_hash.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    };
    row.insert(db).await.map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Taken { field: "client_id" }
        } else {
            e.into()
        }
    })
}

/// Deletes the client; whether there was one.
pub async fn delete(db: &impl ConnectionTrait, client_id: &str) -> Result<bool, StoreError> {
    let result = resource_client::Entity::delete_many()
        .filter(resource_client::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}
