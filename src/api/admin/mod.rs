//! The admin API under `/admin/api/`, for staff users (`is_staff`): users, sites, social apps,
//! signing keys and the audit trail. What the CLI does on a machine with database access, over
//! HTTP. Every change is put on the audit trail with the staff user as actor.

mod audit;
mod keys;
mod sites;
mod users;

pub use audit::AdminAuditApi;
pub use keys::AdminKeysApi;
pub use sites::AdminSitesApi;
pub use users::AdminUsersApi;

use poem_openapi::Object;

use super::CurrentUser;
use crate::{
    audit::{Entry, Origin},
    error::{ApiError, code},
    state::AppState,
};

/// Largest page a list answers.
const MAX_PAGE_SIZE: u64 = 200;

/// A signed-in staff user; everyone else gets 403.
pub(super) fn staff(caller: &CurrentUser) -> Result<i32, ApiError> {
    if caller.user.is_staff {
        return Ok(caller.user.id);
    }
    Err(ApiError::forbidden(
        code::PERMISSION_DENIED,
        "You do not have permission to perform this action.",
    ))
}

/// Page number (from 1) and size (default 50, at most 200) from the query.
pub(super) fn paging(page: Option<u64>, page_size: Option<u64>) -> (u64, u64) {
    (
        page.unwrap_or(1).max(1),
        page_size.unwrap_or(50).clamp(1, MAX_PAGE_SIZE),
    )
}

/// Records an admin action: `entry` with the staff user as actor.
pub(super) fn record(state: &AppState, origin: &Origin, admin_id: i32, entry: Entry) {
    state.audit.record(origin, entry.actor(admin_id).method("admin_api"));
}

/// An empty answer's body for actions that return nothing else.
#[derive(Debug, Object)]
pub struct DoneResponse {
    /// What was done.
    pub detail: String,
}
