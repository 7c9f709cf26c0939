//! Short-lived copies of the rows read on nearly every request: the user behind a token, the
//! social account a provider login names, the site of a Host and the social app of a site. One SELECT through the pool costs ~80 µs of CPU and a
//! few thread hops, far more than the rest of `GET /rest-auth/user/`; a copy costs well under 1 µs.
//!
//! Staleness is bounded by `cache_ttl` (1 s by default; 0 turns caching off). Writes made through
//! this process drop or replace their copy at once; writes made elsewhere (another instance, the
//! CLI) are seen within `cache_ttl`. Users' standings (what a token check needs) are kept longer
//! and forgotten by the feed of standing changes, with the same bound (`STANDING_MAX_AGE`).

use std::{
    collections::HashSet,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::{social_account, user};
use sea_orm::DatabaseConnection;

use super::{
    StoreError, sites, social,
    standing::{self, Standing},
    users,
};
use crate::providers::SocialApp;

/// Entries per cache: bounds memory (~400 bytes a user) whatever the traffic.
const CAPACITY: usize = 20_000;

/// How long a user's standing is kept. Not `cache_ttl`: every instance reads the feed of standing
/// changes once per `cache_ttl` (`follow_standing_changes`) and forgets the users it names, so a
/// revocation anywhere still reaches every instance within `cache_ttl`, while the standing of the
/// users who changed nothing is read once a minute, not once per `cache_ttl` (with 1,000 active
/// users that was 1,000 reads a second, a quarter of the time of `POST /rest-auth/token/verify/`).
/// The minute bounds what the feed cannot see: a row edited by hand in the database.
const STANDING_MAX_AGE: Duration = Duration::from_secs(60);

/// How far back each read of the feed looks. A change is stamped with its writer's clock before
/// its transaction commits, so it may become visible after later stamps (a slow commit, clocks of
/// instances a little apart): each read takes the whole last minute and skips what it has seen.
const FEED_OVERLAP: Duration = Duration::from_secs(60);

/// A bounded map whose entries are good for at most `ttl` after they were read from the database.
/// A read that was in flight while this process forgot an entry (it changed the row) does not
/// put its now stale copy back: every `put` names the `epoch` seen before its read.
struct TtlCache<K, V> {
    entries: quick_cache::sync::Cache<K, (Instant, V)>,
    ttl: Duration,
    /// Forgets so far; a copy read before the latest forget is not kept.
    forgets: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(CAPACITY),
            ttl,
            forgets: AtomicU64::new(0),
        }
    }

    /// To take before reading the row that will be `put`.
    fn epoch(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    fn get(&self, key: &K) -> Option<V> {
        let (good_until, value) = self.entries.get(key)?;
        (Instant::now() < good_until).then_some(value)
    }

    /// Keeps `value` for `ttl` less up to a quarter of it, at random: entries read together (a
    /// burst of logins) then expire spread out, not all in the same millisecond, which sent a
    /// wave of reads to the pool every `ttl` and showed in p99 latencies.
    fn put(&self, key: K, value: V, read_at: Instant, epoch: u64) {
        if self.ttl.is_zero() || self.epoch() != epoch {
            return;
        }
        let jitter = self.ttl.mul_f64(rand::random::<f64>() / 4.0);
        self.entries.insert(key.clone(), (read_at + self.ttl - jitter, value));
        // A forget between the check and the insert may have missed this entry: take it out.
        if self.epoch() != epoch {
            self.entries.remove(&key);
        }
    }

    fn forget(&self, key: &K) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(key);
    }

    fn forget_all(&self) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }
}

/// Where this instance is in the feed of standing changes.
struct Feed {
    /// When the last successful read of the feed started, in ms since `origin` (0: never). Kept
    /// standings are trusted only while this is recent: if the feed cannot be read, every check
    /// reads the database again, as it would without the feed.
    synced_at_ms: AtomicU64,
    origin: Instant,
    /// The changes of the last read, so that the next (which overlaps it) forgets only new ones.
    seen: tokio::sync::Mutex<HashSet<i64>>,
    /// How often the feed is read: `cache_ttl`.
    period: Duration,
}

impl Feed {
    fn is_current(&self) -> bool {
        let synced = self.synced_at_ms.load(Ordering::Acquire);
        // Two periods: one between reads, one for a read that is slow.
        synced != 0 && self.origin.elapsed().as_millis() < u128::from(synced) + 2 * self.period.as_millis()
    }

    fn synced(&self, started: Instant) {
        let ms = started.duration_since(self.origin).as_millis().max(1);
        self.synced_at_ms
            .store(ms.try_into().unwrap_or(u64::MAX), Ordering::Release);
    }
}

/// The database behind the caches; cheap to clone (one per `AppState` and `Tokens`).
#[derive(Clone)]
pub struct Cached {
    pub(super) db: DatabaseConnection,
    /// The database's write turn, for the writes made here (`cache_writes`).
    pub(super) turn: super::WriteTurn,
    users: Arc<TtlCache<i32, user::Model>>,
    standings: Arc<TtlCache<i32, Standing>>,
    feed: Arc<Feed>,
    accounts: Arc<TtlCache<(String, String), social_account::Model>>,
    sites: Arc<TtlCache<String, Option<i32>>>,
    apps: Arc<TtlCache<(String, i32), Option<SocialApp>>>,
}

impl Cached {
    pub fn new(db: DatabaseConnection, turn: super::WriteTurn, ttl: Duration) -> Self {
        Self {
            db,
            turn,
            users: Arc::new(TtlCache::new(ttl)),
            standings: Arc::new(TtlCache::new(match ttl.is_zero() {
                true => Duration::ZERO,
                false => STANDING_MAX_AGE.max(ttl),
            })),
            feed: Arc::new(Feed {
                synced_at_ms: AtomicU64::new(0),
                origin: Instant::now(),
                seen: Default::default(),
                period: ttl,
            }),
            accounts: Arc::new(TtlCache::new(ttl)),
            sites: Arc::new(TtlCache::new(ttl)),
            apps: Arc::new(TtlCache::new(ttl)),
        }
    }

    /// The user `id`, as of at most `cache_ttl` ago.
    pub async fn user(&self, id: i32) -> Result<user::Model, StoreError> {
        if let Some(user) = self.users.get(&id) {
            return Ok(user);
        }
        let (read_at, epoch) = (Instant::now(), self.users.epoch());
        let user = users::get(&self.db, id).await?;
        self.users.put(id, user.clone(), read_at, epoch);
        Ok(user)
    }

    /// To take before reading a user row that `remember_user` will keep.
    pub fn user_epoch(&self) -> u64 {
        self.users.epoch()
    }

    /// Keeps a row this process read or wrote after `user_epoch` gave `epoch`.
    pub fn remember_user(&self, user: &user::Model, epoch: u64) {
        self.users.put(user.id, user.clone(), Instant::now(), epoch);
    }

    /// Drops the copy of a user this process changed or deleted (or another did: the feed).
    pub fn forget_user(&self, id: i32) {
        self.users.forget(&id);
        self.standings.forget(&id);
    }

    /// The standing of user `id` (for every token check): kept up to a minute, but only while
    /// the feed of changes is being followed.
    pub async fn standing(&self, id: i32) -> Result<Standing, StoreError> {
        if self.feed.is_current()
            && let Some(standing) = self.standings.get(&id)
        {
            return Ok(standing);
        }
        let (read_at, epoch) = (Instant::now(), self.standings.epoch());
        let standing = standing::read(&self.db, id).await?;
        self.standings.put(id, standing, read_at, epoch);
        Ok(standing)
    }

    /// Reads the standing changes of the last minute and forgets the users that changed since
    /// the last read. To run every `cache_ttl` (`app::follow_standings`).
    pub async fn follow_standing_changes(&self) -> Result<(), StoreError> {
        let mut seen = self.feed.seen.lock().await;
        let started = Instant::now();
        let since = chrono::Utc::now() - FEED_OVERLAP;
        let changes = standing::changes_since(&self.db, since).await?;
        for (change, user_id) in &changes {
            if !seen.contains(change) {
                self.forget_user(*user_id);
            }
        }
        *seen = changes.into_iter().map(|(change, _)| change).collect();
        self.feed.synced(started);
        Ok(())
    }

    /// The social account of (`provider`, `uid`), if linked. Only links are kept: an unknown uid
    /// is read again next time (its first login creates it).
    pub async fn account(&self, provider: &str, uid: &str) -> Result<Option<social_account::Model>, StoreError> {
        let key = (provider.to_owned(), uid.to_owned());
        if let Some(account) = self.accounts.get(&key) {
            return Ok(Some(account));
        }
        let (read_at, epoch) = (Instant::now(), self.accounts.epoch());
        let account = social::find_account(&self.db, provider, uid).await?;
        if let Some(account) = &account {
            self.accounts.put(key, account.clone(), read_at, epoch);
        }
        Ok(account)
    }

    /// Drops the copy of a social account this process changed or deleted.
    pub fn forget_account(&self, provider: &str, uid: &str) {
        self.accounts.forget(&(provider.to_owned(), uid.to_owned()));
    }

    /// The id of the site whose domain is `domain` (lower-case), if any.
    pub async fn site_id_by_domain(&self, domain: &str) -> Result<Option<i32>, StoreError> {
        let key = domain.to_owned();
        if let Some(site) = self.sites.get(&key) {
            return Ok(site);
        }
        let (read_at, epoch) = (Instant::now(), self.sites.epoch());
        let site = sites::find_by_domain(&self.db, domain).await?.map(|s| s.id);
        self.sites.put(key, site, read_at, epoch);
        Ok(site)
    }

    /// Drops every copy of sites and social apps (an admin changed one).
    pub fn forget_sites_and_apps(&self) {
        self.sites.forget_all();
        self.apps.forget_all();
    }

    /// `social::find_app_for_site`, cached.
    pub async fn app_for_site(&self, provider: &str, site_id: i32) -> Result<Option<SocialApp>, StoreError> {
        let key = (provider.to_owned(), site_id);
        if let Some(app) = self.apps.get(&key) {
            return Ok(app);
        }
        let (read_at, epoch) = (Instant::now(), self.apps.epoch());
        let app = social::find_app_for_site(&self.db, provider, site_id).await?;
        self.apps.put(key, app.clone(), read_at, epoch);
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_read_before_a_forget_is_not_kept() {
        let cache = TtlCache::new(Duration::from_secs(60));
        let epoch = cache.epoch();
        // The row changes (and is forgotten) while a read of the old row is in flight.
        cache.forget(&1);
        cache.put(1, "old row", Instant::now(), epoch);
        assert_eq!(cache.get(&1), None);

        let epoch = cache.epoch();
        cache.put(1, "new row", Instant::now(), epoch);
        assert_eq!(cache.get(&1), Some("new row"));
    }
}
