//! The emulator's memory: authorization codes, grants (one login of one user in one app) and the
//! access/refresh tokens that belong to them. Revoking a grant kills all its tokens.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use rand::RngCore;

use crate::{KeyKind, Lifetimes};

/// What a login granted: who, to which app and key, with which scopes.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub user_id: i64,
    /// `app_id` reported by `/v1/user/access_token_info`; a "foreign" one can be minted.
    pub app_id: i64,
    pub client_id: String,
    pub kind: KeyKind,
    pub scopes: Vec<String>,
    pub auth_time: DateTime<Utc>,
}

impl Grant {
    pub fn has_openid(&self) -> bool {
        self.scopes.iter().any(|s| s == "openid")
    }
}

/// An authorization code waiting for `/oauth/token`.
#[derive(Debug, Clone)]
pub(super) struct Code {
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy)]
struct Issued {
    grant: u64,
    expires_at: DateTime<Utc>,
}

/// Tokens handed out by one `/oauth/token` call.
#[derive(Debug, Clone)]
pub(super) struct TokenSet {
    pub grant: Grant,
    pub access_token: String,
    pub expires_in: Duration,
    /// Absent on a refresh that did not rotate (kakao-api.md 4.3).
    pub refresh: Option<(String, Duration)>,
}

pub(super) enum AccessLookup {
    Valid { grant: Grant, remaining: Duration },
    Expired,
    Unknown,
}

#[derive(Debug, Default)]
pub(super) struct Grants {
    codes: HashMap<String, Code>,
    grants: HashMap<u64, Grant>,
    access: HashMap<String, Issued>,
    refresh: HashMap<String, Issued>,
    next_grant: u64,
    /// Users who unlinked the app: admin calls answer -101 until they log in again.
    unlinked: HashSet<i64>,
}

/// A token as Kakao's look: 64 URL-safe characters (kakao-api.md 4.2).
pub(super) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn remaining(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<Duration> {
    (expires_at - now).to_std().ok().filter(|d| !d.is_zero())
}

impl Grants {
    pub fn insert_code(&mut self, code: Code) -> String {
        let value = random_token(64);
        self.insert_code_as(value.clone(), code);
        value
    }

    /// A code with a value the caller chose (scripted by a test).
    pub fn insert_code_as(&mut self, value: String, code: Code) {
        self.unlinked.remove(&code.grant.user_id);
        self.codes.insert(value, code);
    }

    /// Removes the code: a code works once, whatever happens next (kakao-api.md 4.2, KOE320).
    pub fn take_code(&mut self, code: &str, now: DateTime<Utc>) -> Option<Code> {
        self.codes.remove(code).filter(|c| c.expires_at > now)
    }

    /// A new grant with its first access and refresh token.
    pub fn issue(&mut self, grant: Grant, lifetimes: &Lifetimes, now: DateTime<Utc>) -> TokenSet {
        self.issue_as(grant, random_token(48), lifetimes, now)
    }

    /// As `issue`, with an access token the caller chose (scripted by a test).
    pub fn issue_as(
        &mut self,
        grant: Grant,
        access_token: String,
        lifetimes: &Lifetimes,
        now: DateTime<Utc>,
    ) -> TokenSet {
        self.unlinked.remove(&grant.user_id);
        self.next_grant += 1;
        let id = self.next_grant;
        self.grants.insert(id, grant.clone());
        let expires_in = lifetimes.access(grant.kind);
        self.access.insert(
            access_token.clone(),
            Issued {
                grant: id,
                expires_at: now + expires_in,
            },
        );
        let refresh = self.new_refresh(id, lifetimes.refresh, now);
        TokenSet {
            grant,
            access_token,
            expires_in,
            refresh: Some(refresh),
        }
    }

    fn new_access(&mut self, grant: u64, lifetime: Duration, now: DateTime<Utc>) -> (String, Duration) {
        let token = random_token(48);
        let expires_at = now + lifetime;
        self.access.insert(token.clone(), Issued { grant, expires_at });
        (token, lifetime)
    }

    fn new_refresh(&mut self, grant: u64, lifetime: Duration, now: DateTime<Utc>) -> (String, Duration) {
        let token = random_token(48);
        let expires_at = now + lifetime;
        self.refresh.insert(token.clone(), Issued { grant, expires_at });
        (token, lifetime)
    }

    /// The access token's lifetime ends now; false when there is no such token.
    pub fn expire_access(&mut self, token: &str, now: DateTime<Utc>) -> bool {
        self.access
            .get_mut(token)
            .map(|issued| issued.expires_at = now)
            .is_some()
    }

    pub fn lookup_access(&self, token: &str, now: DateTime<Utc>) -> AccessLookup {
        let Some(issued) = self.access.get(token) else {
            return AccessLookup::Unknown;
        };
        let Some(grant) = self.grants.get(&issued.grant) else {
            return AccessLookup::Unknown;
        };
        match remaining(issued.expires_at, now) {
            Some(remaining) => AccessLookup::Valid {
                grant: grant.clone(),
                remaining,
            },
            None => AccessLookup::Expired,
        }
    }

    /// `grant_type=refresh_token`: a new access token; a new refresh token (and the old one
    /// dies) only when the old one had less than the rotation window left (kakao-api.md 4.3).
    pub fn refresh(&mut self, token: &str, lifetimes: &Lifetimes, now: DateTime<Utc>) -> Option<TokenSet> {
        let issued = *self.refresh.get(token)?;
        let grant = self.grants.get(&issued.grant)?.clone();
        let Some(left) = remaining(issued.expires_at, now) else {
            self.refresh.remove(token);
            return None;
        };
        let (access_token, expires_in) = self.new_access(issued.grant, lifetimes.access(grant.kind), now);
        let refresh = (left < lifetimes.refresh_rotation_window).then(|| {
            self.refresh.remove(token);
            self.new_refresh(issued.grant, lifetimes.refresh, now)
        });
        Some(TokenSet {
            grant,
            access_token,
            expires_in,
            refresh,
        })
    }

    /// Bearer logout: the token's grant and all its tokens. Returns the user id.
    pub fn revoke_by_access(&mut self, token: &str) -> Option<i64> {
        let grant = self.access.get(token)?.grant;
        let user_id = self.grants.remove(&grant)?.user_id;
        self.forget_orphans();
        Some(user_id)
    }

    /// Every grant of the user (admin logout, unlink).
    pub fn revoke_user(&mut self, user_id: i64) {
        self.grants.retain(|_, g| g.user_id != user_id);
        self.codes.retain(|_, c| c.grant.user_id != user_id);
        self.forget_orphans();
    }

    pub fn unlink(&mut self, user_id: i64) {
        self.revoke_user(user_id);
        self.unlinked.insert(user_id);
    }

    pub fn is_linked(&self, user_id: i64) -> bool {
        !self.unlinked.contains(&user_id)
    }

    fn forget_orphans(&mut self) {
        let grants = &self.grants;
        self.access.retain(|_, i| grants.contains_key(&i.grant));
        self.refresh.retain(|_, i| grants.contains_key(&i.grant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            user_id: 7,
            app_id: 1234,
            client_id: "k".into(),
            kind: KeyKind::Rest,
            scopes: vec![],
            auth_time: Utc::now(),
        }
    }

    #[test]
    fn refresh_rotates_only_inside_the_window_and_the_old_token_then_dies() {
        let mut grants = Grants::default();
        let now = Utc::now();
        let long = Lifetimes::default();
        let first = grants.issue(grant(), &long, now);
        let (rt, _) = first.refresh.unwrap();
        let kept = grants.refresh(&rt, &long, now).unwrap();
        assert!(kept.refresh.is_none(), "60 days left: no new refresh token");

        let later = now + Duration::from_secs(31 * 24 * 3600);
        let rotated = grants.refresh(&rt, &long, later).unwrap();
        assert!(rotated.refresh.is_some(), "29 days left: rotated");
        assert!(grants.refresh(&rt, &long, later).is_none(), "the old one is dead");
    }

    #[test]
    fn a_code_works_once() {
        let mut grants = Grants::default();
        let now = Utc::now();
        let code = grants.insert_code(Code {
            grant: grant(),
            redirect_uri: "x".into(),
            code_challenge: None,
            nonce: None,
            expires_at: now + Duration::from_secs(60),
        });
        assert!(grants.take_code(&code, now).is_some());
        assert!(grants.take_code(&code, now).is_none());
    }
}
