//! Short-lived copies of the rows read on nearly every request: the user behind a token, the
//! social account a provider login names, the site of a Host and the social app of a site. One SELECT through the pool costs ~80 µs of CPU and a
//! few thread hops, far more than the rest of `GET /rest-auth/user/`; a copy costs well under 1 µs.
//!
//! Staleness is bounded by `cache_ttl` (1 s by default; 0 turns caching off). Writes made through
//! this process drop or replace their copy at once; writes made elsewhere (another instance, the
//! CLI) are seen within `cache_ttl`.

use std::{
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::{social_account, user};
use sea_orm::DatabaseConnection;

use super::{StoreError, sites, social, social::SocialApp, users};

/// Entries per cache: bounds memory (~400 bytes a user) whatever the traffic.
const CAPACITY: usize = 20_000;

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

/// The database behind the caches; cheap to clone (one per `AppState` and `Tokens`).
#[derive(Clone)]
pub struct Cached {
    db: DatabaseConnection,
    users: Arc<TtlCache<i32, user::Model>>,
    accounts: Arc<TtlCache<(String, String), social_account::Model>>,
    sites: Arc<TtlCache<String, Option<i32>>>,
    apps: Arc<TtlCache<(String, i32), Option<SocialApp>>>,
}

impl Cached {
    pub fn new(db: DatabaseConnection, ttl: Duration) -> Self {
        Self {
            db,
            users: Arc::new(TtlCache::new(ttl)),
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

    /// Drops the copy of a user this process changed or deleted.
    pub fn forget_user(&self, id: i32) {
        self.users.forget(&id);
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
