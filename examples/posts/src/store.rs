//! The `posts` table: entity and repository functions.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryOrder, Set,
};
use sea_orm_migration::MigratorTrait;

pub mod post {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "posts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        /// The author's pk on authbridge (the JWT `user_id`).
        pub author_id: i64,
        /// The author's username when the post was last written.
        pub author_username: String,
        pub title: String,
        pub text: String,
        /// File name of the photo under the media folder.
        pub photo: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Connects and runs the example's migrations.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // One writer at a time is what SQLite does anyway; it spares busy errors.
        options.max_connections(1);
    }
    let db = Database::connect(options).await?;
    crate::migration::Migrator::up(&db, None).await?;
    Ok(db)
}

pub struct NewPost {
    pub author_id: i64,
    pub author_username: String,
    pub title: String,
    pub text: String,
    pub photo: Option<String>,
}

pub async fn insert(db: &DatabaseConnection, new: NewPost) -> Result<post::Model, DbErr> {
    let now = Utc::now();
    post::ActiveModel {
        author_id: Set(new.author_id),
        author_username: Set(new.author_username),
        title: Set(new.title),
        text: Set(new.text),
        photo: Set(new.photo),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
}

pub async fn find(db: &DatabaseConnection, id: i32) -> Result<Option<post::Model>, DbErr> {
    post::Entity::find_by_id(id).one(db).await
}

/// One page (from 1), newest first, and the total count.
pub async fn page(db: &DatabaseConnection, page: u64, size: u64) -> Result<(Vec<post::Model>, u64), DbErr> {
    let paginator = post::Entity::find()
        .order_by_desc(post::Column::CreatedAt)
        .order_by_desc(post::Column::Id)
        .paginate(db, size);
    let count = paginator.num_items().await?;
    let rows = paginator.fetch_page(page.saturating_sub(1)).await?;
    Ok((rows, count))
}

/// The changes of an update; `None` keeps the value.
#[derive(Default)]
pub struct Changes {
    pub author_username: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
    pub photo: Option<String>,
}

pub async fn update(db: &DatabaseConnection, row: post::Model, changes: Changes) -> Result<post::Model, DbErr> {
    let mut active: post::ActiveModel = row.into();
    if let Some(v) = changes.author_username {
        active.author_username = Set(v);
    }
    if let Some(v) = changes.title {
        active.title = Set(v);
    }
    if let Some(v) = changes.text {
        active.text = Set(v);
    }
    if let Some(v) = changes.photo {
        active.photo = Set(Some(v));
    }
    active.updated_at = Set(Utc::now());
    active.update(db).await
}

pub async fn delete(db: &DatabaseConnection, id: i32) -> Result<(), DbErr> {
    post::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
