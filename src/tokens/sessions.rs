//! Refresh-token lifecycle: a login starts a family; a refresh with rotation spends its token and
//! adds one member; replaying a spent token after the grace interval revokes the whole family
//! (the token was stolen, or a client is badly broken: either way, every descendant dies).
//! A token is written down only when its state changes: a login writes nothing, a rotation
//! writes the spent token's row (claimed by its jti's unique index), a logout the blacklisted
//! token's. Until then the token's session (`revoked_sessions`) and its user's revocation point
//! say whether it is alive.

use chrono::{DateTime, Utc};
use entity::user;

use super::{Claims, TokenError, TokenType, Tokens, jwt::at};
use crate::{
    metrics::RefreshResult,
    store::{self, standing::Standing, tokens::NewRefresh},
    write_queue::{Spent, Successor},
};

/// A freshly issued access + refresh pair.
pub struct IssuedPair {
    pub access: String,
    pub refresh: String,
    pub access_expiration: DateTime<Utc>,
    pub refresh_expiration: DateTime<Utc>,
}

/// What a refresh gives back; `refresh` is `None` when rotation is off.
pub struct Refreshed {
    pub access: String,
    pub access_expiration: DateTime<Utc>,
    pub refresh: Option<(String, DateTime<Utc>)>,
    pub user_id: i32,
}

fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn new_family() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Claims of a session's token: its `sid` and the sign-in's `auth_time` ride along unchanged.
fn in_session(mut claims: Claims, sid: &str, auth_time: Option<i64>) -> Claims {
    claims.sid = Some(sid.to_owned());
    claims.auth_time = auth_time;
    claims
}

impl Tokens {
    /// A djangorestframework-jwt token for a sign-in that just happened: an access JWT of a new
    /// session, carrying `orig_iat`, the start of its refresh window.
    pub async fn issue_drf_jwt(&self, user: &user::Model) -> Result<String, TokenError> {
        self.wait_past_revocation(user).await;
        let now = Utc::now();
        let mut claims = in_session(
            self.claims(user.id, TokenType::Access, now),
            &new_family(),
            Some(now.timestamp()),
        );
        claims.orig_iat = Some(claims.iat);
        Ok(self.issue_access_with(claims)?.0)
    }

    /// The djangorestframework-jwt token that renews `old` (`/api-jwt-auth/refresh/`): same
    /// session, sign-in time and refresh window. `now` was read before `old` was checked for
    /// revocation (see `refresh_once`).
    pub fn renew_drf_jwt(&self, old: &Claims, now: DateTime<Utc>) -> Result<String, TokenError> {
        let claims = self.claims(old.user_id, TokenType::Access, now);
        let mut claims = in_session(claims, old.sid.as_deref().unwrap_or(&new_family()), old.auth_time);
        claims.orig_iat = Some(old.orig_iat.unwrap_or(old.iat));
        Ok(self.issue_access_with(claims)?.0)
    }

    /// Tokens for a sign-in that just happened: a new session (family) with one refresh token,
    /// `auth_time` now. Nothing is stored: the refresh token carries its session and jti, and gets
    /// a row when it is spent or blacklisted.
    pub async fn start_session(&self, user: &user::Model) -> Result<IssuedPair, TokenError> {
        self.wait_past_revocation(user).await;
        let now = Utc::now();
        let user_id = user.id;
        let family = new_family();
        let auth_time = Some(now.timestamp());
        let refresh = in_session(self.claims(user_id, TokenType::Refresh, now), &family, auth_time);
        let access = in_session(self.claims(user_id, TokenType::Access, now), &family, auth_time);
        let (access, access_expiration) = self.issue_access_with(access)?;
        Ok(IssuedPair {
            access,
            refresh: self.sign(&refresh)?,
            access_expiration,
            refresh_expiration: timestamp(refresh.exp),
        })
    }

    /// The row of a verified refresh token, `None` for one of ours never spent nor blacklisted.
    /// One we signed but never stored and that has no session (a simplejwt token made with the
    /// shared HS256 key) is adopted as a family of its own.
    async fn row_of(&self, claims: &Claims) -> Result<Option<entity::refresh_token::Model>, TokenError> {
        let row = match store::tokens::find_refresh(&self.db, &claims.jti).await? {
            Some(row) => row,
            None => {
                // A token without a row must not outlive its user, nor come back to life from
                // before the user's revocation point.
                self.ensure_standing_now(claims).await?;
                match claims.sid {
                    Some(_) => return Ok(None),
                    None => store::tokens::adopt_refresh(&self.db, self.as_row(claims, &new_family())).await?,
                }
            }
        };
        if row.user_id != claims.user_id || claims.sid.as_ref().is_some_and(|sid| *sid != row.family) {
            return Err(TokenError::Invalid);
        }
        Ok(Some(row))
    }

    /// The checks of `ensure_usable`, on the user's standing read now rather than cached: for a
    /// token without a row, which has nothing else to say it is dead (the cache learns of a
    /// revocation made elsewhere within `cache_ttl`).
    async fn ensure_standing_now(&self, claims: &Claims) -> Result<(), TokenError> {
        match store::standing::read(&self.db, claims.user_id).await? {
            Standing::Gone => Err(TokenError::Invalid),
            Standing::Present { active: false, .. } => Err(TokenError::Revoked),
            standing if standing.revokes(claims.iat) => Err(TokenError::Revoked),
            Standing::Present { .. } => Ok(()),
        }
    }

    /// The row `claims` would have in `family`.
    fn as_row<'a>(&self, claims: &'a Claims, family: &'a str) -> NewRefresh<'a> {
        NewRefresh {
            jti: &claims.jti,
            user_id: claims.user_id,
            family,
            issued_at: timestamp(claims.iat),
            expires_at: self.row_expiry(claims),
        }
    }

    /// When the row of a token may be purged: never before its `exp`, or a purge would make a
    /// spent token of ours claimable again (whatever the lifetime is configured to now). A token
    /// made elsewhere (no session) is bounded so any `exp` fits every backend.
    fn row_expiry(&self, claims: &Claims) -> DateTime<Utc> {
        match claims.sid {
            Some(_) => timestamp(claims.exp),
            None => timestamp(claims.exp).min(at(Utc::now(), self.refresh_lifetime)),
        }
    }

    /// A successor's refresh claims, issued at `issued_at`. Its `exp` is `iat` plus the lifetime
    /// in whole seconds, so a retry within the grace interval can sign the very same claims
    /// again from the spent row (`rotated_at` and `replaced_by`) alone.
    fn successor_claims(&self, user_id: i32, issued_at: DateTime<Utc>, family: &str, auth_time: Option<i64>) -> Claims {
        let mut claims = in_session(self.claims(user_id, TokenType::Refresh, issued_at), family, auth_time);
        claims.exp = claims.iat.saturating_add(self.refresh_lifetime_secs());
        claims
    }

    /// simplejwt `TokenRefreshView` with `ROTATE_REFRESH_TOKENS` and `BLACKLIST_AFTER_ROTATION`.
    /// A deadlock between concurrent rotations (MariaDB) is retried a few times.
    pub async fn refresh(&self, token: &str) -> Result<Refreshed, TokenError> {
        let mut attempt = 0;
        loop {
            match self.refresh_once(token).await {
                Err(TokenError::Store(e)) if e.is_transient() && attempt < 4 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(
                        5 * attempt + rand::random::<u64>() % 10,
                    ))
                    .await;
                }
                other => return other,
            }
        }
    }

    async fn refresh_once(&self, token: &str) -> Result<Refreshed, TokenError> {
        let claims = self.verify(token, TokenType::Refresh).await?;
        // The new tokens' `iat` is read before the revocation check, never after: a revocation
        // the check did not see then committed after this instant, so its point covers them
        // (a thread descheduled between the two would otherwise mint live tokens).
        let now = Utc::now();
        self.ensure_usable(&claims).await?;
        if self.rotate_refresh
            && let Some(refreshed) = self.rotate_live(&claims, now).await?
        {
            self.metrics.refresh(RefreshResult::Rotated);
            return Ok(refreshed);
        }
        let row = self.row_of(&claims).await?;
        let family = match (&row, &claims.sid) {
            (Some(row), _) => row.family.clone(),
            (None, Some(sid)) => sid.clone(),
            (None, None) => return Err(TokenError::Invalid),
        };
        if row.as_ref().is_some_and(|r| r.revoked_at.is_some())
            || store::tokens::is_session_revoked(&self.db, &family).await?
        {
            return Err(TokenError::Revoked);
        }
        let access = in_session(
            self.claims(claims.user_id, TokenType::Access, now),
            &family,
            claims.auth_time,
        );
        let (access, access_expiration) = self.issue_access_with(access)?;
        if !self.rotate_refresh {
            self.metrics.refresh(RefreshResult::NotRotated);
            return Ok(Refreshed {
                access,
                access_expiration,
                refresh: None,
                user_id: claims.user_id,
            });
        }
        // Rotation found no row to claim and no row is there: only a revocation racing it does
        // that (a claim that loses to another finds the winner's row committed).
        let Some(mut row) = row else {
            return Err(TokenError::Revoked);
        };
        if row.rotated_at.is_none() {
            // A live row: a simplejwt token just adopted, or one stored before logins stopped
            // writing rows.
            let successor = self.successor_claims(row.user_id, now, &row.family, claims.auth_time);
            let stored = Successor {
                jti: successor.jti.clone(),
                issued_at: now,
            };
            let spent = self.spent(&claims, Some(row.family.clone()));
            if self.queue.rotate(spent, stored).await?.is_some() {
                let refresh = Some((self.sign(&successor)?, timestamp(successor.exp)));
                self.metrics.refresh(RefreshResult::Rotated);
                return Ok(Refreshed {
                    access,
                    access_expiration,
                    refresh,
                    user_id: row.user_id,
                });
            }
            // A concurrent refresh of the same token won; answer as its retry.
            row = store::tokens::find_refresh(&self.db, &row.jti)
                .await?
                .ok_or(TokenError::Invalid)?;
        }
        let (Some(rotated_at), Some(successor_jti)) = (row.rotated_at, row.replaced_by.as_deref()) else {
            return Err(TokenError::Revoked);
        };
        if now > at(rotated_at, self.reuse_grace) {
            self.revoke_session(&row.family, row.user_id).await?;
            tracing::warn!(user_id = row.user_id, jti = %row.jti, "spent refresh token replayed: session revoked");
            self.metrics.refresh(RefreshResult::ReuseRevoked);
            return Err(TokenError::ReuseDetected { user_id: row.user_id });
        }
        // Within the grace interval a client's retry gets the very token the first call got:
        // same claims, same key, so the same signature (Ed25519 and HMAC are deterministic).
        let mut again = self.successor_claims(row.user_id, rotated_at, &row.family, claims.auth_time);
        again.jti = successor_jti.to_owned();
        // The successor has a row only if it was spent or blacklisted since; one stored by an
        // older version holds its own times.
        if let Some(successor) = store::tokens::find_refresh(&self.db, successor_jti).await? {
            if successor.revoked_at.is_some() {
                return Err(TokenError::Revoked);
            }
            if successor.rotated_at.is_none() {
                again.iat = successor.issued_at.timestamp();
                again.exp = successor.expires_at.timestamp();
            }
        }
        let refresh = Some((self.sign(&again)?, timestamp(again.exp)));
        self.metrics.refresh(RefreshResult::GraceReplay);
        Ok(Refreshed {
            access,
            access_expiration,
            refresh,
            user_id: row.user_id,
        })
    }

    /// The token `claims` as a rotation spends it, in `family`.
    fn spent(&self, claims: &Claims, family: Option<String>) -> Spent {
        Spent {
            jti: claims.jti.clone(),
            user_id: claims.user_id,
            family,
            issued_at: timestamp(claims.iat),
            expires_at: self.row_expiry(claims),
        }
    }

    /// A token of a user who is gone is invalid; of a disabled one, or from before the user's
    /// revocation point, revoked. A database fault stays a database fault (503).
    pub async fn ensure_usable(&self, claims: &Claims) -> Result<(), TokenError> {
        match self.ensure_standing(claims.user_id, claims.iat).await {
            Ok(()) => Ok(()),
            Err(TokenError::UserGone) => Err(TokenError::Invalid),
            Err(TokenError::UserInactive) => Err(TokenError::Revoked),
            Err(e) => Err(e),
        }
    }

    /// The common case of a refresh with rotation, without reading the row first: the claim
    /// itself finds whether the token is live (its spent row inserted, or its live row updated).
    /// `None` when it is not (revoked, spent, or without a session and a row): the caller then
    /// reads the row and decides as before.
    async fn rotate_live(&self, claims: &Claims, now: DateTime<Utc>) -> Result<Option<Refreshed>, TokenError> {
        let family = claims.sid.clone();
        let mut successor =
            self.successor_claims(claims.user_id, now, family.as_deref().unwrap_or(""), claims.auth_time);
        let stored = Successor {
            jti: successor.jti.clone(),
            issued_at: now,
        };
        let Some(spent) = self.queue.rotate(self.spent(claims, family), stored).await? else {
            return Ok(None);
        };
        if spent.user_id != claims.user_id || claims.sid.as_ref().is_some_and(|sid| *sid != spent.family) {
            return Err(TokenError::Invalid);
        }
        // The session is the spent row's family, also for a token minted before `sid` existed.
        successor.sid = Some(spent.family.clone());
        let access = in_session(
            self.claims(claims.user_id, TokenType::Access, now),
            &spent.family,
            claims.auth_time,
        );
        let (access, access_expiration) = self.issue_access_with(access)?;
        Ok(Some(Refreshed {
            access,
            access_expiration,
            refresh: Some((self.sign(&successor)?, timestamp(successor.exp))),
            user_id: claims.user_id,
        }))
    }

    /// Logout: ends the session of a refresh token, every token descended from its sign-in with
    /// it. An already revoked one is fine (idempotent).
    pub async fn blacklist(&self, token: &str) -> Result<i32, TokenError> {
        let claims = self.verify(token, TokenType::Refresh).await?;
        match self.ensure_usable(&claims).await {
            // Dead already, with its user's revocation point: nothing more to end.
            Err(TokenError::Revoked) => return Ok(claims.user_id),
            other => other?,
        }
        let row = match self.row_of(&claims).await {
            Err(TokenError::Revoked) => return Ok(claims.user_id),
            row => row?,
        };
        let family = match (&claims.sid, row) {
            (Some(sid), _) => sid.clone(),
            (None, Some(row)) => row.family,
            (None, None) => return Err(TokenError::Invalid),
        };
        self.revoke_session(&family, claims.user_id).await?;
        // Its own row too, for a token that had none: what `ensure_live` and the export read.
        store::tokens::record_revoked(&self.db, self.as_row(&claims, &family), Utc::now()).await?;
        Ok(claims.user_id)
    }

    /// Refuses a refresh token that was blacklisted, spent by rotation, or whose session or user
    /// was revoked (simplejwt's verify, with our revocations).
    pub async fn ensure_live(&self, claims: &Claims) -> Result<(), TokenError> {
        self.ensure_usable(claims).await?;
        let row = store::tokens::find_refresh(&self.db, &claims.jti).await?;
        match &row {
            Some(r) if r.revoked_at.is_some() || r.rotated_at.is_some() => return Err(TokenError::Revoked),
            Some(_) => {}
            None => self.ensure_standing_now(claims).await?,
        }
        match claims.sid.as_deref().or(row.as_ref().map(|r| r.family.as_str())) {
            Some(sid) if store::tokens::is_session_revoked(&self.db, sid).await? => Err(TokenError::Revoked),
            _ => Ok(()),
        }
    }

    /// Deletes refresh rows whose tokens have expired (simplejwt `flushexpiredtokens`).
    pub async fn purge_expired(&self) -> Result<u64, TokenError> {
        Ok(store::tokens::purge_expired(&self.db, Utc::now()).await?)
    }
}
