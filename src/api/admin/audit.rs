//! Admin: the audit trail, filtered and paged, newest first.

use chrono::{DateTime, Utc};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query, payload::Json};

use super::{paging, staff};
use crate::{
    api::{ApiTags, CurrentUser, social::rfc3339},
    error::{ApiError, code},
    state::AppState,
    store::audit::AuditFilter,
};

pub struct AdminAuditApi;

/// One security event.
#[derive(Debug, Object)]
pub struct AuditEventResponse {
    pub id: i64,
    pub at: String,
    /// `login.succeeded`, `logout_all`, `user.disabled`, … (README, Operations).
    pub event: String,
    #[oai(skip_serializing_if_is_none)]
    pub user_id: Option<i32>,
    /// The staff user who did it, for admin actions.
    #[oai(skip_serializing_if_is_none)]
    pub actor_id: Option<i32>,
    #[oai(skip_serializing_if_is_none)]
    pub provider: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub method: Option<String>,
    /// For failures, the error code answered.
    #[oai(skip_serializing_if_is_none)]
    pub outcome: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub client_ip: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Object)]
pub struct AuditPageResponse {
    /// How many events match in all.
    pub count: u64,
    pub results: Vec<AuditEventResponse>,
}

#[derive(ApiResponse)]
pub enum AuditPageReply {
    #[oai(status = 200)]
    Ok(Json<AuditPageResponse>),
}

fn time(value: Option<String>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::field(code::INVALID, field, "Enter an RFC 3339 time (2026-12-03T12:00:00Z)."))
        })
        .transpose()
}

#[OpenApi(tag = "ApiTags::Admin", prefix_path = "/admin/api")]
impl AdminAuditApi {
    /// The audit trail
    ///
    /// Newest first; filter by `user`, `event`, and a time range (`since` inclusive, `until`
    /// exclusive, RFC 3339). Events are written in batches a moment after they happen.
    #[oai(path = "/audit/", method = "get", operation_id = "admin_list_audit_events")]
    #[allow(clippy::too_many_arguments, reason = "one parameter per query filter")]
    async fn list(
        &self,
        state: poem::web::Data<&AppState>,
        caller: CurrentUser,
        user: Query<Option<i32>>,
        event: Query<Option<String>>,
        since: Query<Option<String>>,
        until: Query<Option<String>>,
        /// Page number, from 1.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000000")))]
        page: Query<Option<u64>>,
        /// Items a page (50 by default).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        page_size: Query<Option<u64>>,
    ) -> Result<AuditPageReply, ApiError> {
        staff(&caller)?;
        let filter = AuditFilter {
            user_id: user.0,
            event: event.0,
            since: time(since.0, "since")?,
            until: time(until.0, "until")?,
        };
        let (page, size) = paging(page.0, page_size.0);
        let (rows, count) = crate::audit::page(&state.db, &filter, page, size).await?;
        Ok(AuditPageReply::Ok(Json(AuditPageResponse {
            count,
            results: rows
                .into_iter()
                .map(|r| AuditEventResponse {
                    id: r.id,
                    at: rfc3339(r.at),
                    event: r.event,
                    user_id: r.user_id,
                    actor_id: r.actor_id,
                    provider: r.provider,
                    method: r.method,
                    outcome: r.outcome,
                    client_ip: r.client_ip,
                    user_agent: r.user_agent,
                    request_id: r.request_id,
                    detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
                .collect(),
        })))
    }
}
