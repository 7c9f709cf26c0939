//! Admin: sites and social apps. Secrets are write-only: sent to set them, never returned.

use std::fmt;

use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use secrecy::SecretString;
use serde::Deserialize;

use super::{record, staff};
use crate::{
    api::{ApiTags, Body, CurrentUser},
    audit::{Entry, Origin, event},
    config::AppSettings,
    error::{ApiError, code},
    state::AppState,
    store::{StoreError, social::NewSocialApp},
};

pub struct AdminSitesApi;

#[derive(Debug, Object)]
pub struct SiteResponse {
    pub id: i32,
    pub domain: String,
    pub name: String,
}

#[derive(Debug, Object, Deserialize)]
pub struct SiteRequest {
    /// The host name requests for this site carry (`Host`), lower-cased.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub domain: String,
    #[oai(validator(max_length = 50))]
    pub name: String,
}

/// A social app; its secret and admin key are never shown.
#[derive(Debug, Object)]
pub struct SocialAppResponse {
    pub id: i32,
    pub provider: String,
    pub name: String,
    pub client_id: String,
    /// Whether a secret is set.
    pub has_secret: bool,
    /// Whether an admin key is set.
    pub has_admin_key: bool,
    pub app_ids: Vec<String>,
    pub client_keys: Vec<String>,
    pub sites: Vec<i32>,
    pub settings: SocialAppSettings,
}

/// A social app's provider settings (allauth's `SocialApp.settings`).
#[derive(Debug, Default, Object, Deserialize)]
pub struct SocialAppSettings {
    /// Naver: the operator vouches for the addresses Naver gives, so a first login may join an
    /// existing user with the same address (off: refused with `email_in_use`).
    #[serde(default)]
    #[oai(default)]
    pub link_by_email: bool,
    /// Apple: the Team ID (`iss` of the client secret authbridge signs).
    #[oai(skip_serializing_if_is_none)]
    pub team_id: Option<String>,
    /// Apple: the Key ID of the Sign in with Apple key (the `.p8` is the app's `secret`).
    #[oai(skip_serializing_if_is_none)]
    pub key_id: Option<String>,
}

impl From<SocialAppSettings> for AppSettings {
    fn from(s: SocialAppSettings) -> Self {
        Self {
            link_by_email: s.link_by_email,
            team_id: s.team_id,
            key_id: s.key_id,
        }
    }
}

impl From<AppSettings> for SocialAppSettings {
    fn from(s: AppSettings) -> Self {
        Self {
            link_by_email: s.link_by_email,
            team_id: s.team_id,
            key_id: s.key_id,
        }
    }
}

/// A social app to create, or to replace (matched by provider and client id).
#[derive(Object, Deserialize)]
pub struct SocialAppRequest {
    /// `kakao`.
    pub provider: String,
    pub name: String,
    /// The provider's client id (Kakao: the REST API key).
    pub client_id: String,
    /// The client secret; write-only.
    #[oai(write_only)]
    #[serde(default)]
    pub secret: String,
    /// The admin key (Kakao: for unlink); write-only.
    #[oai(write_only)]
    #[serde(default)]
    pub admin_key: String,
    /// Provider app ids whose tokens are accepted (Kakao `app_id`).
    #[serde(default)]
    pub app_ids: Vec<String>,
    /// Extra client keys accepted as id_token audience.
    #[serde(default)]
    pub client_keys: Vec<String>,
    /// Sites the app is enabled on.
    #[serde(default)]
    pub sites: Vec<i32>,
    /// Provider settings (Naver's `link_by_email`, Apple's `team_id` and `key_id`); replaced
    /// as a whole, none when absent.
    #[serde(default)]
    pub settings: Option<SocialAppSettings>,
}

impl fmt::Debug for SocialAppRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocialAppRequest")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(ApiResponse)]
pub enum SiteListReply {
    #[oai(status = 200)]
    Ok(Json<Vec<SiteResponse>>),
}

#[derive(ApiResponse)]
pub enum SiteReply {
    #[oai(status = 200)]
    Ok(Json<SiteResponse>),
}

#[derive(ApiResponse)]
pub enum SocialAppListReply {
    #[oai(status = 200)]
    Ok(Json<Vec<SocialAppResponse>>),
}

#[derive(ApiResponse)]
pub enum SocialAppReply {
    #[oai(status = 200)]
    Ok(Json<SocialAppResponse>),
}

#[derive(ApiResponse)]
pub enum DeletedReply {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}

fn site(row: entity::site::Model) -> SiteResponse {
    SiteResponse {
        id: row.id,
        domain: row.domain,
        name: row.name,
    }
}

fn app(app: crate::providers::SocialApp) -> SocialAppResponse {
    use secrecy::ExposeSecret;
    SocialAppResponse {
        id: app.id,
        has_secret: !app.secret.expose_secret().is_empty(),
        has_admin_key: !app.admin_key.expose_secret().is_empty(),
        provider: app.provider,
        name: app.name,
        client_id: app.client_id,
        app_ids: app.app_ids,
        client_keys: app.client_keys,
        sites: app.sites,
        settings: app.settings.into(),
    }
}

/// The answer to a site's insert or update: a taken domain is the client's 400; a saved site is
/// recorded on the trail.
fn site_saved(
    state: &AppState,
    origin: &Origin,
    admin: i32,
    saved: Result<entity::site::Model, StoreError>,
) -> Result<SiteReply, ApiError> {
    let row = saved.map_err(|e| match e {
        StoreError::Taken { .. } => ApiError::field(code::INVALID, "domain", "A site with this domain already exists."),
        e => e.into(),
    })?;
    let entry = Entry::new(event::SITE_SAVED).detail(serde_json::json!({"site_id": row.id}));
    record(state, origin, admin, entry);
    Ok(SiteReply::Ok(Json(site(row))))
}

#[OpenApi(tag = "ApiTags::Admin", prefix_path = "/admin/api")]
impl AdminSitesApi {
    /// List sites
    #[oai(path = "/sites/", method = "get", operation_id = "admin_list_sites")]
    async fn list_sites(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
    ) -> Result<SiteListReply, ApiError> {
        staff(&caller)?;
        let sites = state.cached.list_sites().await?;
        Ok(SiteListReply::Ok(Json(sites.into_iter().map(site).collect())))
    }

    /// Add a site
    #[oai(path = "/sites/", method = "post", operation_id = "admin_create_site")]
    async fn create_site(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        body: Body<SiteRequest>,
    ) -> Result<SiteReply, ApiError> {
        let admin = staff(&caller)?;
        let body = body.into_inner();
        let saved = state.cached.insert_site(body.domain.trim(), &body.name).await;
        site_saved(&state, &origin, admin, saved)
    }

    /// Change a site
    #[oai(path = "/sites/:id/", method = "put", operation_id = "admin_update_site")]
    async fn update_site(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
        body: Body<SiteRequest>,
    ) -> Result<SiteReply, ApiError> {
        let admin = staff(&caller)?;
        let body = body.into_inner();
        let saved = state.cached.update_site(*id, body.domain.trim(), &body.name).await;
        site_saved(&state, &origin, admin, saved)
    }

    /// Delete a site
    ///
    /// The default site (`AUTHBRIDGE_SITE_ID`) cannot be deleted.
    #[oai(path = "/sites/:id/", method = "delete", operation_id = "admin_delete_site")]
    async fn delete_site(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
    ) -> Result<DeletedReply, ApiError> {
        let admin = staff(&caller)?;
        if *id == state.settings.server.site_id {
            return Err(ApiError::field(
                code::INVALID,
                "id",
                "The default site cannot be deleted.",
            ));
        }
        state.cached.delete_site(*id).await?;
        record(
            &state,
            &origin,
            admin,
            Entry::new(event::SITE_DELETED).detail(serde_json::json!({"site_id": *id})),
        );
        Ok(DeletedReply::Deleted)
    }

    /// List social apps (secrets never shown)
    #[oai(path = "/socialapps/", method = "get", operation_id = "admin_list_social_apps")]
    async fn list_apps(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
    ) -> Result<SocialAppListReply, ApiError> {
        staff(&caller)?;
        let apps = state.cached.list_apps().await?;
        Ok(SocialAppListReply::Ok(Json(apps.into_iter().map(app).collect())))
    }

    /// Add or replace a social app
    ///
    /// As `authbridge socialapp add`: the app with the same provider and client id is replaced.
    /// `secret` and `admin_key` are write-only.
    #[oai(path = "/socialapps/", method = "post", operation_id = "admin_save_social_app")]
    async fn save_app(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        body: Body<SocialAppRequest>,
    ) -> Result<SocialAppReply, ApiError> {
        let admin = staff(&caller)?;
        let body = body.into_inner();
        let settings = AppSettings::from(body.settings.unwrap_or_default());
        if state.providers.get(&body.provider).is_none() {
            return Err(ApiError::field(code::INVALID, "provider", "Unknown provider."));
        }
        let saved = state
            .cached
            .upsert_app(NewSocialApp {
                provider: body.provider,
                name: body.name,
                client_id: body.client_id,
                secret: SecretString::from(body.secret),
                admin_key: SecretString::from(body.admin_key),
                app_ids: body.app_ids,
                client_keys: body.client_keys,
                sites: body.sites,
            })
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ApiError::field(code::INVALID, "sites", "No such site."),
                e => e.into(),
            })?;
        let saved = state.cached.set_app_settings(saved, settings).await?;
        let entry = Entry::new(event::SOCIAL_APP_SAVED).provider(&saved.provider);
        record(
            &state,
            &origin,
            admin,
            entry.detail(serde_json::json!({"social_app_id": saved.id})),
        );
        Ok(SocialAppReply::Ok(Json(app(saved))))
    }

    /// Delete a social app
    #[oai(
        path = "/socialapps/:id/",
        method = "delete",
        operation_id = "admin_delete_social_app"
    )]
    async fn delete_app(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        origin: Origin,
        id: Path<i32>,
    ) -> Result<DeletedReply, ApiError> {
        let admin = staff(&caller)?;
        state.cached.delete_social_app(*id).await?;
        let entry = Entry::new(event::SOCIAL_APP_DELETED).detail(serde_json::json!({"social_app_id": *id}));
        record(&state, &origin, admin, entry);
        Ok(DeletedReply::Deleted)
    }
}
