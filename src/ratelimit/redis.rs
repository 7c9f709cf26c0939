//! Budgets shared by all instances: the same GCRA as governor's, run atomically in Redis by one
//! Lua script on Redis's clock, one key per bucket that expires when the bucket is full again.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use secrecy::{ExposeSecret, SecretString};

use super::{Bucket, Rates, Scope};

/// While Redis is failing, it is tried again this long after the last failure.
const OUTAGE_RETRY: Duration = Duration::from_secs(5);

/// KEYS: one per bucket; ARGV: its interval (ms) and burst, in the same order. Spends one request
/// from each bucket in order, stopping at the first that has none left (the buckets after it are
/// not touched); returns {its wait in ms, its index}, or {0, 0}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = math.max(tonumber(redis.call('GET', key)) or now, now)
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then
    return {allow_at - now, i}
  end
  redis.call('SET', key, string.format('%d', new_tat), 'PX', string.format('%d', new_tat - now))
end
return {0, 0}
";

#[derive(Debug, thiserror::Error)]
pub(super) enum RedisFailure {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

pub(super) struct RedisLimits {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    timeout: Duration,
    rates: Rates,
    /// Time of the last failure while Redis is failing; `None` while it answers.
    outage: Mutex<Option<Instant>>,
}

impl RedisLimits {
    /// Connects lazily: a Redis that is down at start-up does not stop the server.
    pub(super) fn new(url: &SecretString, prefix: String, timeout: Duration, rates: Rates) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.expose_secret())
            .ok()
            .context("AUTHBRIDGE_REDIS_URL is not a Redis URL (redis://[:password@]host:6379[/db])")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client, config).context("setting up the Redis client")?;
        Ok(Self {
            conn,
            script: Script::new(GCRA),
            prefix,
            timeout,
            rates,
            outage: Mutex::new(None),
        })
    }

    fn key(&self, bucket: &Bucket) -> String {
        format!(
            "{}{}:{}:{}",
            self.prefix,
            bucket.action.name(),
            bucket.scope.name(),
            hex::encode(bucket.id)
        )
    }

    /// False for a while after a failure, so an outage costs each request nothing.
    pub(super) fn is_up(&self) -> bool {
        self.outage
            .lock()
            .map(|outage| outage.is_none_or(|at| at.elapsed() >= OUTAGE_RETRY))
            .unwrap_or(true)
    }

    /// Warns once per outage (the outside world misbehaves), not once per request.
    pub(super) fn mark_down(&self, e: &RedisFailure) {
        if let Ok(mut outage) = self.outage.lock() {
            if outage.is_none() {
                tracing::warn!(
                    error = %e,
                    "Redis unavailable: rate limits count in this instance's memory until it answers"
                );
            }
            *outage = Some(Instant::now());
        }
    }

    fn mark_up(&self) {
        if let Ok(mut outage) = self.outage.lock()
            && outage.take().is_some()
        {
            tracing::info!("Redis answers again: rate limits are shared again");
        }
    }

    pub(super) async fn check(&self, buckets: &[Bucket]) -> Result<Option<(Scope, Duration)>, RedisFailure> {
        let mut invocation = self.script.prepare_invoke();
        for bucket in buckets {
            let rate = self.rates[bucket.slot()];
            invocation
                .key(self.key(bucket))
                .arg(rate.interval().as_millis().max(1) as u64)
                .arg(rate.count);
        }
        let mut conn = self.conn.clone();
        let (wait_ms, which): (u64, usize) = tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| RedisFailure::Timeout(self.timeout))??;
        self.mark_up();
        Ok(match which.checked_sub(1).and_then(|i| buckets.get(i)) {
            Some(bucket) if wait_ms > 0 => Some((bucket.scope, Duration::from_millis(wait_ms))),
            _ => None,
        })
    }
}
