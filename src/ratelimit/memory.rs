//! In-process budgets: one governor keyed GCRA limiter per (action, scope), over a store with a
//! hard cap on its entries: a flood of distinct names or addresses cannot grow memory without
//! bound; past the cap the oldest entry is dropped (its holder starts again with a full budget).

use std::{
    collections::{HashMap, VecDeque},
    num::NonZeroU32,
    sync::Mutex,
    time::Duration,
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    nanos::Nanos,
    state::{StateStore, keyed::ShrinkableKeyedStateStore},
};

use super::{Bucket, Rates, Scope};
use crate::config::Rate;

type Key = [u8; 16];
type Limiter = RateLimiter<Key, CappedStore, DefaultClock, NoOpMiddleware<<DefaultClock as Clock>::Instant>>;

pub(super) struct MemoryLimits {
    limiters: Vec<Limiter>,
}

fn quota(rate: Rate) -> Quota {
    let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    // `Rate` is checked at load: count > 0 and interval ≥ 1 ms.
    Quota::with_period(rate.interval())
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

impl MemoryLimits {
    pub(super) fn new(rates: &Rates, max_entries: usize) -> Self {
        let limiters = rates
            .iter()
            .map(|rate| RateLimiter::new(quota(*rate), CappedStore::new(max_entries), DefaultClock::default()))
            .collect();
        Self { limiters }
    }

    /// Spends one request from each bucket in order, stopping at the first that has none left:
    /// a client refused by its IP budget spends nothing of the account's, so a flood from one
    /// address does not lock the account for its owner. The wait of the refusing bucket.
    pub(super) fn check(&self, buckets: &[Bucket]) -> Option<(Scope, Duration)> {
        buckets.iter().find_map(|bucket| {
            let limiter = &self.limiters[bucket.slot()];
            limiter
                .check_key(&bucket.id)
                .err()
                .map(|not_until| (bucket.scope, not_until.wait_time_from(limiter.clock().now())))
        })
    }

    pub(super) fn retain_recent(&self) {
        for limiter in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    #[cfg(test)]
    fn len(&self, slot: usize) -> usize {
        self.limiters[slot].len()
    }
}

/// A governor state store of at most `max` keys; inserting past it drops the oldest key.
struct CappedStore {
    max: usize,
    inner: Mutex<Capped>,
}

#[derive(Default)]
struct Capped {
    /// Each key's theoretical arrival time (governor's state) and when it was inserted.
    entries: HashMap<Key, (u64, u64)>,
    /// Keys in insertion order; an element whose number no longer matches its entry is stale.
    order: VecDeque<(Key, u64)>,
    inserted: u64,
}

impl CappedStore {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: Mutex::new(Capped::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Capped> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Capped {
    fn insert(&mut self, key: Key, tat: u64, max: usize) {
        while self.entries.len() >= max {
            let Some((old, number)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&old).is_some_and(|(_, n)| *n == number) {
                self.entries.remove(&old);
            }
        }
        self.inserted += 1;
        self.entries.insert(key, (tat, self.inserted));
        self.order.push_back((key, self.inserted));
        // Keys removed by `retain` leave stale elements behind: rebuild before they pile up.
        if self.order.len() > 2 * max {
            let mut live: Vec<(Key, u64)> = self.entries.iter().map(|(k, (_, n))| (*k, *n)).collect();
            live.sort_by_key(|(_, n)| *n);
            self.order = live.into();
        }
    }
}

impl StateStore for CappedStore {
    type Key = Key;

    fn measure_and_replace<T, F, E>(&self, key: &Key, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut capped = self.lock();
        let previous = capped.entries.get(key).map(|(tat, _)| *tat).filter(|tat| *tat != 0);
        let (result, tat) = f(previous.map(Nanos::from))?;
        match capped.entries.get_mut(key) {
            Some(entry) => entry.0 = tat.as_u64(),
            None => capped.insert(*key, tat.as_u64(), self.max),
        }
        Ok(result)
    }
}

impl ShrinkableKeyedStateStore<Key> for CappedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = drop_below.as_u64();
        self.lock().entries.retain(|_, (tat, _)| *tat > drop_below);
    }

    fn shrink_to_fit(&self) {
        let mut capped = self.lock();
        capped.entries.shrink_to_fit();
        capped.order.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Action;

    #[test]
    fn a_flood_of_distinct_names_keeps_at_most_the_cap_dropping_the_oldest() {
        let rate = Rate::new(1, Duration::from_secs(3600));
        let limits = MemoryLimits::new(&[rate; 10], 100);
        let first = Bucket::account(Action::Login, "first");
        assert!(limits.check(&[first]).is_none());
        assert!(limits.check(&[first]).is_some(), "its one request is spent");

        for n in 0..1_000 {
            limits.check(&[Bucket::account(Action::Login, &format!("flood-{n}"))]);
        }

        assert_eq!(limits.len(first.slot()), 100);
        assert!(limits.check(&[first]).is_none(), "the oldest entry was dropped");
        let recent = Bucket::account(Action::Login, "flood-999");
        assert!(limits.check(&[recent]).is_some(), "the newest are kept");
    }
}
