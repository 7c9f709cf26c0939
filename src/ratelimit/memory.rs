//! In-process budgets: one governor keyed GCRA limiter per (action, scope).

use std::{num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use super::{Bucket, Rates, Scope, longest};
use crate::config::Rate;

pub(super) struct MemoryLimits {
    limiters: Vec<DefaultKeyedRateLimiter<[u8; 16]>>,
}

fn quota(rate: Rate) -> Quota {
    let burst = NonZeroU32::new(rate.count).unwrap_or(NonZeroU32::MIN);
    // `Rate` is checked at load: count > 0 and interval ≥ 1 ms.
    Quota::with_period(rate.interval())
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst)
}

impl MemoryLimits {
    pub(super) fn new(rates: &Rates) -> Self {
        let limiters = rates
            .iter()
            .map(|rate| DefaultKeyedRateLimiter::dashmap(quota(*rate)))
            .collect();
        Self { limiters }
    }

    /// Spends one request from each bucket that has one left (as DRF's throttles do); the longest
    /// wait among those that have none.
    pub(super) fn check(&self, buckets: &[Bucket]) -> Option<(Scope, Duration)> {
        longest(buckets.iter().filter_map(|bucket| {
            let limiter = &self.limiters[bucket.slot()];
            limiter
                .check_key(&bucket.id)
                .err()
                .map(|not_until| (bucket.scope, not_until.wait_time_from(limiter.clock().now())))
        }))
    }

    pub(super) fn retain_recent(&self) {
        for limiter in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
