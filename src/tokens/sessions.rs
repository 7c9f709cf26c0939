//! Refresh-token lifecycle: a login starts a family; a refresh with rotation spends its token and
//! adds one member; replaying a spent token after the grace interval revokes the whole family
//! (the token was stolen, or a client is badly broken: either way, every descendant dies).

use chrono::{DateTime, Utc};

use super::{Claims, TokenError, TokenType, Tokens, jwt::at};
use crate::{
    metrics::RefreshResult,
    store::{self, token_writer::Successor, tokens::NewRefresh},
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

impl Tokens {
    /// Tokens for a login: a new family with one refresh token.
    pub async fn start_session(&self, user_id: i32) -> Result<IssuedPair, TokenError> {
        let now = Utc::now();
        let refresh = self.claims(user_id, TokenType::Refresh, now);
        self.writer
            .insert(NewRefresh {
                jti: &refresh.jti,
                user_id,
                family: &new_family(),
                issued_at: now,
                expires_at: timestamp(refresh.exp),
            })
            .await?;
        let (access, access_expiration) = self.issue_access_with(self.claims(user_id, TokenType::Access, now))?;
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
                // A deleted user's rows went with it: their tokens must not come back to life.
                store::users::get(&self.db, claims.user_id).await.map_err(|e| match e {
                    store::StoreError::NotFound(_) => TokenError::Invalid,
                    e => e.into(),
                })?;
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
        if row.user_id != claims.user_id {
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
        if self.rotate_refresh
            && let Some(refreshed) = self.rotate_live(&claims).await?
        {
            self.metrics.refresh(RefreshResult::Rotated);
            return Ok(refreshed);
        }
        let mut row = self.row_of(&claims).await?;
        if row.revoked_at.is_some() {
            return Err(TokenError::Revoked);
        }
        self.ensure_active(row.user_id).await?;
        let now = Utc::now();
        let (access, access_expiration) = self.issue_access_with(self.claims(row.user_id, TokenType::Access, now))?;
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
            let successor = self.claims(row.user_id, TokenType::Refresh, now);
            let stored = Successor {
                jti: successor.jti.clone(),
                issued_at: now,
                expires_at: timestamp(successor.exp),
            };
            if self.writer.rotate(&row.jti, stored).await?.is_some() {
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
            let revoked = store::tokens::revoke_family(&self.db, &row.family, now).await?;
            tracing::warn!(user_id = row.user_id, jti = %row.jti, revoked, "spent refresh token replayed: family revoked");
            self.metrics.refresh(RefreshResult::ReuseRevoked);
            return Err(TokenError::Revoked);
        }
        // Within the grace interval a client's retry gets the very token the first call got:
        // same claims, same key, so the same signature (Ed25519 and HMAC are deterministic).
        let successor = store::tokens::find_refresh(&self.db, successor_jti)
            .await?
            .ok_or(TokenError::Invalid)?;
        if successor.revoked_at.is_some() {
            return Err(TokenError::Revoked);
        }
        let mut claims = self.claims(row.user_id, TokenType::Refresh, successor.issued_at);
        claims.jti = successor.jti;
        claims.exp = successor.expires_at.timestamp();
        let refresh = Some((self.sign(&claims)?, successor.expires_at));
        self.metrics.refresh(RefreshResult::GraceReplay);
        Ok(Refreshed {
            access,
            access_expiration,
            refresh,
            user_id: row.user_id,
        })
    }

    /// A refresh token of a user who is gone is invalid; of a disabled one, revoked.
    async fn ensure_active(&self, user_id: i32) -> Result<(), TokenError> {
        // Only a missing user makes the token invalid: a database outage is a 503, not a 401.
        let user = self.cached.user(user_id).await.map_err(|e| match e {
            store::StoreError::NotFound(_) => TokenError::Invalid,
            e => e.into(),
        })?;
        if !user.is_active {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }

    /// The common case of a refresh with rotation, without reading the row first: the claim
    /// itself finds whether the token is a live row (and returns it). `None` when it is not
    /// (unknown, revoked or spent): the caller then reads the row and decides as before.
    async fn rotate_live(&self, claims: &Claims) -> Result<Option<Refreshed>, TokenError> {
        self.ensure_active(claims.user_id).await?;
        let now = Utc::now();
        let successor = self.claims(claims.user_id, TokenType::Refresh, now);
        let stored = Successor {
            jti: successor.jti.clone(),
            issued_at: now,
            expires_at: timestamp(successor.exp),
        };
        let Some(spent) = self.writer.rotate(&claims.jti, stored).await? else {
            return Ok(None);
        };
        if spent.user_id != claims.user_id {
            return Err(TokenError::Invalid);
        }
        let (access, access_expiration) =
            self.issue_access_with(self.claims(claims.user_id, TokenType::Access, now))?;
        Ok(Some(Refreshed {
            access,
            access_expiration,
            refresh: Some((self.sign(&successor)?, timestamp(successor.exp))),
            user_id: claims.user_id,
        }))
    }

    /// Blacklists a refresh token (logout). An already revoked one is fine (idempotent).
    pub async fn blacklist(&self, token: &str) -> Result<i32, TokenError> {
        let claims = self.verify(token, TokenType::Refresh).await?;
        let row = self.row_of(&claims).await?;
        store::tokens::revoke_refresh(&self.db, &row.jti, Utc::now()).await?;
        Ok(row.user_id)
    }

    /// Refuses a refresh token that was blacklisted or spent by rotation (simplejwt's verify).
    pub async fn ensure_live(&self, claims: &Claims) -> Result<(), TokenError> {
        match store::tokens::find_refresh(&self.db, &claims.jti).await? {
            Some(row) if row.revoked_at.is_some() || row.rotated_at.is_some() => Err(TokenError::Revoked),
            _ => Ok(()),
        }
    }

    /// Deletes refresh rows whose tokens have expired (simplejwt `flushexpiredtokens`).
    pub async fn purge_expired(&self) -> Result<u64, TokenError> {
        Ok(store::tokens::purge_expired(&self.db, Utc::now()).await?)
    }

    /// Revokes every refresh and opaque token of the user (logout everywhere, password change).
    pub async fn revoke_user(&self, user_id: i32) -> Result<(), TokenError> {
        store::tokens::revoke_user(&self.db, user_id, Utc::now()).await?;
        self.cached.forget_user(user_id);
        Ok(())
    }
}
