//! The Posts API (a DRF `ModelViewSet` with `IsAuthenticated` and an author-only write rule):
//! list, create, retrieve, update, partial update, delete.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Multipart, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::multipart::Upload,
};

use crate::{
    app::State,
    auth::Caller,
    error::PostsError,
    photos::PhotoError,
    store::{self, post},
};

const MAX_TITLE_CHARS: usize = 200;

pub struct PostsApi;

/// A post as the API shows it.
#[derive(Debug, Object)]
pub struct PostResponse {
    pub id: i32,
    /// The author's pk on authbridge.
    pub author: i64,
    pub author_username: String,
    pub title: String,
    pub text: String,
    /// URL of the photo, if any.
    pub photo: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One page of posts, newest first (DRF `PageNumberPagination`).
#[derive(Debug, Object)]
pub struct PostPage {
    /// All posts.
    pub count: u64,
    /// URL of the next page.
    pub next: Option<String>,
    /// URL of the previous page.
    pub previous: Option<String>,
    pub results: Vec<PostResponse>,
}

/// A new post, or all of a post's fields (PUT); the photo is optional (PUT keeps the old one).
#[derive(Debug, Multipart)]
pub struct PostForm {
    /// 1-200 characters.
    pub title: String,
    pub text: String,
    /// PNG, JPEG, GIF or WebP; the content decides, not the name.
    pub photo: Option<Upload>,
}

/// Some of a post's fields.
#[derive(Debug, Multipart)]
pub struct PostPatchForm {
    pub title: Option<String>,
    pub text: Option<String>,
    pub photo: Option<Upload>,
}

#[derive(ApiResponse)]
pub enum CreatedReply {
    #[oai(status = 201)]
    Created(Json<PostResponse>),
}

#[derive(ApiResponse)]
pub enum PostReply {
    #[oai(status = 200)]
    Ok(Json<PostResponse>),
}

#[derive(ApiResponse)]
pub enum PageReply {
    #[oai(status = 200)]
    Ok(Json<PostPage>),
}

#[derive(ApiResponse)]
pub enum DeletedReply {
    /// Deleted, with its photo.
    #[oai(status = 204)]
    NoContent,
}

fn title(value: String) -> Result<String, PostsError> {
    let value = value.trim().to_owned();
    match value.chars().count() {
        0 => Err(PostsError::field("title", "This field may not be blank.")),
        n if n > MAX_TITLE_CHARS => Err(PostsError::field(
            "title",
            format!("Ensure this field has no more than {MAX_TITLE_CHARS} characters."),
        )),
        _ => Ok(value),
    }
}

fn text(value: String) -> Result<String, PostsError> {
    if value.trim().is_empty() {
        return Err(PostsError::field("text", "This field may not be blank."));
    }
    Ok(value)
}

async fn photo(state: &State, upload: Option<Upload>) -> Result<Option<String>, PostsError> {
    let Some(upload) = upload else { return Ok(None) };
    let bytes = upload
        .into_vec()
        .await
        .map_err(|e| PostsError::field("photo", e.to_string()))?;
    match state.photos.save(bytes).await {
        Ok(name) => Ok(Some(name)),
        Err(PhotoError::NotAnImage) => Err(PostsError::field(
            "photo",
            "Upload a valid image. The file you uploaded was either not an image or a corrupted image.",
        )),
        Err(e @ PhotoError::TooLarge { .. }) => {
            Err(PostsError::field("photo", format!("The image is too large: {e}.")))
        }
        Err(e) => Err(PostsError::internal(&e)),
    }
}

fn shown(state: &State, row: post::Model) -> PostResponse {
    PostResponse {
        id: row.id,
        author: row.author_id,
        author_username: row.author_username,
        title: row.title,
        text: row.text,
        photo: row.photo.map(|name| state.photos.url(&name)),
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

async fn username(state: &State, caller: &Caller) -> Result<String, PostsError> {
    state
        .auth
        .username(caller)
        .await
        .map_err(|e| PostsError::unavailable(&e))
}

/// The post, if the caller wrote it: 404 when there is none, 403 when it is someone else's.
async fn own_post(state: &State, caller: &Caller, id: i32) -> Result<post::Model, PostsError> {
    let row = store::find(&state.db, id).await?.ok_or_else(PostsError::not_found)?;
    if row.author_id != caller.user_id {
        return Err(PostsError::forbidden());
    }
    Ok(row)
}

/// Saves changes, then deletes the replaced photo (or the new one if the save failed).
async fn save(state: &State, row: post::Model, changes: store::Changes) -> Result<post::Model, PostsError> {
    let old_photo = row.photo.clone().filter(|_| changes.photo.is_some());
    let new_photo = changes.photo.clone();
    match store::update(&state.db, row, changes).await {
        Ok(row) => {
            if let Some(old) = old_photo {
                state.photos.delete(&old).await;
            }
            Ok(row)
        }
        Err(e) => {
            if let Some(new) = new_photo {
                state.photos.delete(&new).await;
            }
            Err(e.into())
        }
    }
}

#[OpenApi]
impl PostsApi {
    /// List posts, newest first
    #[oai(path = "/posts/", method = "get", operation_id = "list_posts")]
    async fn list(
        &self,
        state: Data<&State>,
        _caller: Caller,
        page: Query<Option<u64>>,
    ) -> Result<PageReply, PostsError> {
        let page = page.0.unwrap_or(1);
        if page == 0 {
            return Err(PostsError::field("page", "Invalid page."));
        }
        let size = state.settings.page_size;
        let (rows, count) = store::page(&state.db, page, size).await?;
        if rows.is_empty() && page > 1 {
            return Err(PostsError::not_found());
        }
        let link = |n: u64| format!("{}/posts/?page={n}", state.public_url);
        Ok(PageReply::Ok(Json(PostPage {
            count,
            next: (page * size < count).then(|| link(page + 1)),
            previous: (page > 1).then(|| link(page - 1)),
            results: rows.into_iter().map(|row| shown(&state, row)).collect(),
        })))
    }

    /// Create a post (multipart, with an optional photo)
    #[oai(path = "/posts/", method = "post", operation_id = "create_post")]
    async fn create(&self, state: Data<&State>, caller: Caller, form: PostForm) -> Result<CreatedReply, PostsError> {
        let (title, text) = (title(form.title)?, text(form.text)?);
        let author_username = username(&state, &caller).await?;
        let photo = photo(&state, form.photo).await?;
        let new = store::NewPost {
            author_id: caller.user_id,
            author_username,
            title,
            text,
            photo: photo.clone(),
        };
        let row = match store::insert(&state.db, new).await {
            Ok(row) => row,
            Err(e) => {
                if let Some(name) = photo {
                    state.photos.delete(&name).await;
                }
                return Err(e.into());
            }
        };
        Ok(CreatedReply::Created(Json(shown(&state, row))))
    }

    /// Get a post
    #[oai(path = "/posts/:id/", method = "get", operation_id = "get_post")]
    async fn retrieve(&self, state: Data<&State>, _caller: Caller, id: Path<i32>) -> Result<PostReply, PostsError> {
        let row = store::find(&state.db, id.0).await?.ok_or_else(PostsError::not_found)?;
        Ok(PostReply::Ok(Json(shown(&state, row))))
    }

    /// Replace a post's title and text (and photo, when one is sent); author only
    #[oai(path = "/posts/:id/", method = "put", operation_id = "update_post")]
    async fn update(
        &self,
        state: Data<&State>,
        caller: Caller,
        id: Path<i32>,
        form: PostForm,
    ) -> Result<PostReply, PostsError> {
        let row = own_post(&state, &caller, id.0).await?;
        let changes = store::Changes {
            title: Some(title(form.title)?),
            text: Some(text(form.text)?),
            author_username: Some(username(&state, &caller).await?),
            photo: photo(&state, form.photo).await?,
        };
        Ok(PostReply::Ok(Json(shown(&state, save(&state, row, changes).await?))))
    }

    /// Change some of a post's fields; author only
    #[oai(path = "/posts/:id/", method = "patch", operation_id = "partial_update_post")]
    async fn partial_update(
        &self,
        state: Data<&State>,
        caller: Caller,
        id: Path<i32>,
        form: PostPatchForm,
    ) -> Result<PostReply, PostsError> {
        let row = own_post(&state, &caller, id.0).await?;
        let changes = store::Changes {
            title: form.title.map(title).transpose()?,
            text: form.text.map(text).transpose()?,
            author_username: Some(username(&state, &caller).await?),
            photo: photo(&state, form.photo).await?,
        };
        Ok(PostReply::Ok(Json(shown(&state, save(&state, row, changes).await?))))
    }

    /// Delete a post and its photo; author only
    #[oai(path = "/posts/:id/", method = "delete", operation_id = "delete_post")]
    async fn delete(&self, state: Data<&State>, caller: Caller, id: Path<i32>) -> Result<DeletedReply, PostsError> {
        let row = own_post(&state, &caller, id.0).await?;
        store::delete(&state.db, row.id).await?;
        if let Some(name) = row.photo {
            state.photos.delete(&name).await;
        }
        Ok(DeletedReply::NoContent)
    }
}
