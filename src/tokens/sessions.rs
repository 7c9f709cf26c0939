//! Refresh-token lifecycle: a login starts a family; a refresh with rotation spends its token and
//! adds one member; replaying a spent token after the grace interval revokes the whole family
//! (the token was stolen, or a client is badly broken: either way, every descendant dies).

use chrono::{DateTime, Utc};
use entity::user;

use super::{Claims, TokenError, TokenType, Tokens, jwt::at};
use crate::{
    metrics::RefreshResult,
    store::{self, tokens::NewRefresh},
    write_queue::Successor,
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
    /// `auth_time` now.
    pub async fn start_session(&self, user: &user::Model) -> Result<IssuedPair, TokenError> {
        self.wait_past_revocation(user).await;
        let now = Utc::now();
        let user_id = user.id;
        let family = new_family();
        let auth_time = Some(now.timestamp());
        let refresh = in_session(self.claims(user_id, TokenType::Refresh, now), &family, auth_time);
        self.queue
            .insert(NewRefresh {
                jti: &refresh.jti,
                user_id,
                family: &family,
                issued_at: now,
                expires_at: timestamp(refresh.exp),
            })
            .await?;
        let access = in_session(self.claims(user_id, TokenType::Access, now), &family, auth_time);
        let (access, access_expiration) = self.issue_access_with(access)?;
        Ok(IssuedPair {
            access,
            refresh: self.sign(&refresh)?,
            access_expiration,
            refresh_expiration: timestamp(refresh.exp),
        })
    }

    /// The row of a verified refresh token; one we signed but never stored (a simplejwt token
    /// made with the shared HS256 key) is adopted as a family of its own.
    async fn row_of(&self, claims: &Claims) -> Result<entity::refresh_token::Model, TokenError> {
        let row = match store::tokens::find_refresh(&self.db, &claims.jti).await? {
            Some(row) => row,
            None => {
                // Read afresh, not from the cache: a deleted user's rows went with it, and a
                // token from before the user's revocation point must not come back to life.
                let user = store::users::get(&self.db, claims.user_id).await.map_err(|e| match e {
                    store::StoreError::NotFound(_) => TokenError::Invalid,
                    e => e.into(),
                })?;
                if !user.is_active || super::revoked_by_point(&user, claims.iat) {
                    return Err(TokenError::Revoked);
                }
                store::tokens::adopt_refresh(
                    &self.db,
                    NewRefresh {
                        jti: &claims.jti,
                        user_id: claims.user_id,
                        family: &new_family(),
                        issued_at: timestamp(claims.iat),
                        // The row only steers purging; bound it so any `exp` fits every backend.
                        expires_at: timestamp(claims.exp).min(at(Utc::now(), self.refresh_lifetime)),
                    },
                )
                .await?
            }
        };
        if row.user_id != claims.user_id || claims.sid.as_ref().is_some_and(|sid| *sid != row.family) {
            return Err(TokenError::Invalid);
        }
        Ok(row)
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
        let mut row = self.row_of(&claims).await?;
        if row.revoked_at.is_some() || store::tokens::is_session_revoked(&self.db, &row.family).await? {
            return Err(TokenError::Revoked);
        }
        let access = in_session(
            self.claims(row.user_id, TokenType::Access, now),
            &row.family,
            claims.auth_time,
        );
        let (access, access_expiration) = self.issue_access_with(access)?;
        if !self.rotate_refresh {
            self.metrics.refresh(RefreshResult::NotRotated);
            return Ok(Refreshed {
                access,
                access_expiration,
                refresh: None,
                user_id: row.user_id,
            });
        }
        if row.rotated_at.is_none() {
            let successor = in_session(
                self.claims(row.user_id, TokenType::Refresh, now),
                &row.family,
                claims.auth_time,
            );
            let stored = Successor {
                jti: successor.jti.clone(),
                issued_at: now,
                expires_at: timestamp(successor.exp),
            };
            if self.queue.rotate(&row.jti, stored).await?.is_some() {
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
        let successor = store::tokens::find_refresh(&self.db, successor_jti)
            .await?
            .ok_or(TokenError::Invalid)?;
        if successor.revoked_at.is_some() {
            return Err(TokenError::Revoked);
        }
        let mut again = in_session(
            self.claims(row.user_id, TokenType::Refresh, successor.issued_at),
            &row.family,
            claims.auth_time,
        );
        again.jti = successor.jti;
        again.exp = successor.expires_at.timestamp();
        let refresh = Some((self.sign(&again)?, successor.expires_at));
        self.metrics.refresh(RefreshResult::GraceReplay);
        Ok(Refreshed {
            access,
            access_expiration,
            refresh,
            user_id: row.user_id,
        })
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
    /// itself finds whether the token is a live row (and returns it). `None` when it is not
    /// (unknown, revoked or spent): the caller then reads the row and decides as before.
    async fn rotate_live(&self, claims: &Claims, now: DateTime<Utc>) -> Result<Option<Refreshed>, TokenError> {
        let mut successor = self.claims(claims.user_id, TokenType::Refresh, now);
        let stored = Successor {
            jti: successor.jti.clone(),
            issued_at: now,
            expires_at: timestamp(successor.exp),
        };
        let Some(spent) = self.queue.rotate(&claims.jti, stored).await? else {
            return Ok(None);
        };
        if spent.user_id != claims.user_id {
            return Err(TokenError::Invalid);
        }
        // The session is the spent row's family, also for a token minted before `sid` existed.
        successor = in_session(successor, &spent.family, claims.auth_time);
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
        let family = match &claims.sid {
            Some(sid) => sid.clone(),
            None => self.row_of(&claims).await?.family,
        };
        self.revoke_session(&family, claims.user_id).await?;
        Ok(claims.user_id)
    }

    /// Refuses a refresh token that was blacklisted, spent by rotation, or whose session or user
    /// was revoked (simplejwt's verify, with our revocations).
    pub async fn ensure_live(&self, claims: &Claims) -> Result<(), TokenError> {
        self.ensure_usable(claims).await?;
        let row = store::tokens::find_refresh(&self.db, &claims.jti).await?;
        if row
            .as_ref()
            .is_some_and(|r| r.revoked_at.is_some() || r.rotated_at.is_some())
        {
            return Err(TokenError::Revoked);
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
