//! What "revoked" means, checked the same way by every endpoint that accepts one of our tokens:
//! the user still exists and is active, and the token was issued after the user's revocation
//! point (`users.tokens_valid_after`: logout everywhere, password change/reset/set, disabling,
//! provider unlink). That standing comes through a cache the feed of standing changes keeps
//! current (`store::cache`), so the check costs no query on the hot path; the instance that
//! moves the point forgets its copy at once, others within `cache_ttl`. Sessions (refresh
//! families) are revoked by a row in `revoked_sessions`, which a rotation racing the revocation
//! cannot miss: every later use of any token of the session reads it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::user;

use super::{Claims, TokenError, Tokens};
use crate::store::{self, StoreError, standing::Standing};

/// Whether a token issued at `iat` (seconds) is dead by the user's revocation point (see
/// `Standing::revokes`).
pub fn revoked_by_point(user: &user::Model, iat: i64) -> bool {
    Standing::of(user).revokes(iat)
}

impl Tokens {
    /// The user behind a token issued at `issued_at`, if that token may still be used: gone →
    /// `UserGone`, disabled → `UserInactive`, issued before the revocation point → `Revoked`. A
    /// database fault stays a store error (503), never "invalid": clients must not throw their
    /// sessions away because our database blinked.
    pub async fn holder(&self, user_id: i32, issued_at: i64) -> Result<user::Model, TokenError> {
        self.ensure_standing(user_id, issued_at).await?;
        self.cached.user(user_id).await.map_err(gone_is_user_gone)
    }

    /// `holder` without the user's row, for the checks that need no more (verify): the same
    /// answers, from the standing alone.
    pub async fn ensure_standing(&self, user_id: i32, issued_at: i64) -> Result<(), TokenError> {
        match self.cached.standing(user_id).await.map_err(gone_is_user_gone)? {
            Standing::Gone => Err(TokenError::UserGone),
            Standing::Present { active: false, .. } => Err(TokenError::UserInactive),
            standing if standing.revokes(issued_at) => Err(TokenError::Revoked),
            Standing::Present { .. } => Ok(()),
        }
    }

    /// `holder` for verified claims.
    pub async fn holder_of(&self, claims: &Claims) -> Result<user::Model, TokenError> {
        self.holder(claims.user_id, claims.iat).await
    }

    /// Refuses the claims of a revoked session (logout, reuse detection). Tokens without `sid`
    /// (made by simplejwt) have no session to revoke but their refresh row.
    pub async fn ensure_session_live(&self, claims: &Claims) -> Result<(), TokenError> {
        match &claims.sid {
            Some(sid) if store::tokens::is_session_revoked(&self.db, sid).await? => Err(TokenError::Revoked),
            _ => Ok(()),
        }
    }

    /// Moves the user's revocation point to now: every token issued so far dies, refresh rows
    /// and opaque keys included (logout everywhere, password change, disabling, unlink).
    pub async fn revoke_user(&self, user_id: i32) -> Result<(), TokenError> {
        self.cached.revoke_user(user_id).await?;
        Ok(())
    }

    /// Ends one session: its refresh tokens, and its access tokens at drf-jwt refresh.
    pub async fn revoke_session(&self, sid: &str, user_id: i32) -> Result<(), TokenError> {
        let now = Utc::now();
        let expires_at = super::jwt_at(now, self.refresh_lifetime.max(self.access_lifetime));
        store::tokens::revoke_session(&self.db, sid, user_id, now, expires_at).await?;
        Ok(())
    }

    /// Waits out the second of the user's revocation point, if it is this one: a token issued
    /// now would carry that second in `iat` and be born dead. Only a sign-in right after a
    /// revocation waits, and at most a second.
    pub(super) async fn wait_past_revocation(&self, user: &user::Model) {
        let Some(point) = user.tokens_valid_after else { return };
        let next_second = point.timestamp() + 1;
        let now = Utc::now();
        if now.timestamp() < next_second {
            let until = DateTime::from_timestamp(next_second, 0).unwrap_or(now);
            let wait = (until - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
        }
    }
}

fn gone_is_user_gone(e: StoreError) -> TokenError {
    match e {
        StoreError::NotFound(_) => TokenError::UserGone,
        e => TokenError::Store(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(point: Option<i64>) -> user::Model {
        user::Model {
            tokens_valid_after: point.and_then(|p| DateTime::from_timestamp(p, 500_000_000)),
            ..crate::store::users::test_row(1, "u")
        }
    }

    #[test]
    fn tokens_of_the_revocation_second_and_before_are_dead() {
        assert!(!revoked_by_point(&user(None), 0));
        assert!(revoked_by_point(&user(Some(100)), 99));
        assert!(revoked_by_point(&user(Some(100)), 100));
        assert!(!revoked_by_point(&user(Some(100)), 101));
    }
}
