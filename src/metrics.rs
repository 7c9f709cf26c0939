//! Prometheus metrics, one registry per `App` (instances and tests never share counts), served as
//! OpenMetrics text at `/metrics`. Recording is a label lookup plus atomic adds (a histogram's
//! buckets sit behind a lock held for the few adds, never across an await). Turned off
//! (`metrics_enabled = false`), every call returns at once. It observes; it decides nothing.

use std::{sync::Arc, time::Duration};

use poem::http::{Method, StatusCode};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// What `/metrics` answers with (OpenMetrics 1.0 text, which Prometheus reads natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Seconds: 0.5 ms (a cached token check) … 10 s (past any provider timeout).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Writes per writer batch: 1, 2, 4 … 64 (its largest batch).
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The recorder handed to every part that counts something; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Recorded>>);

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

struct Recorded {
    registry: Registry,
    http: Histograms<HttpLabels>,
    provider_calls: Histograms<ProviderLabels>,
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<RefreshLabels, Counter>,
    throttled: Family<ThrottleLabels, Counter>,
    pool: Family<PoolLabels, Gauge>,
    writer_batch: Histogram,
    writer_queue: Gauge,
}

/// A route is its template (`/rest-auth/socialaccounts/{id}/disconnect/`), never the raw path:
/// ids and tokens stay out of the labels and the series stay few.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
    endpoint: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    provider: &'static str,
    /// `ok`, or the error `code` of the answer.
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThrottleLabels {
    action: &'static str,
    scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// How a refresh went.
#[derive(Debug, Clone, Copy)]
pub enum RefreshResult {
    /// The token was spent and a successor issued.
    Rotated,
    /// A spent token replayed within the grace interval got the same successor.
    GraceReplay,
    /// A spent token replayed after the grace interval: its family was revoked.
    ReuseRevoked,
    /// Rotation is off: a new access token, the refresh token kept.
    NotRotated,
}

impl RefreshResult {
    fn label(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::GraceReplay => "grace_replay",
            Self::ReuseRevoked => "reuse_revoked",
            Self::NotRotated => "not_rotated",
        }
    }
}

impl Metrics {
    /// A recorder with every metric registered, or one that records nothing.
    pub fn new(enabled: bool) -> Self {
        if !enabled {
            return Self(None);
        }
        let mut registry = Registry::with_prefix("authbridge");
        let http: Histograms<HttpLabels> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "HTTP requests by route template, method and status class (the _count is the request count)",
            Unit::Seconds,
            http.clone(),
        );
        let provider_calls: Histograms<ProviderLabels> = Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "provider_call_duration",
            "Calls to identity providers by provider, endpoint and outcome",
            Unit::Seconds,
            provider_calls.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "logins",
            "Login attempts by provider (`password` for local accounts) and result code",
            logins.clone(),
        );
        let refreshes = Family::<RefreshLabels, Counter>::default();
        registry.register(
            "refreshes",
            "Successful refreshes and detected reuse, by result",
            refreshes.clone(),
        );
        let throttled = Family::<ThrottleLabels, Counter>::default();
        registry.register(
            "rate_limit_refusals",
            "Requests refused with 429 by action and the budget that ran out",
            throttled.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database pool connections by state (in_use, idle), read at scrape time",
            pool.clone(),
        );
        let writer_batch = Histogram::new(BATCH_BUCKETS);
        registry.register(
            "token_writer_batch_size",
            "Writes (logins, rotations, first logins) the token writer committed together",
            writer_batch.clone(),
        );
        let writer_queue = Gauge::default();
        registry.register(
            "token_writer_queue_depth",
            "Writes left waiting when the token writer took its latest batch",
            writer_queue.clone(),
        );
        Self(Some(Arc::new(Recorded {
            registry,
            http,
            provider_calls,
            logins,
            refreshes,
            throttled,
            pool,
            writer_batch,
            writer_queue,
        })))
    }

    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// One answered HTTP request; `route` is a template or a fixed path, never a raw path.
    pub fn http_request(&self, route: &'static str, method: &Method, status: StatusCode, elapsed: Duration) {
        let Some(m) = &self.0 else { return };
        let labels = HttpLabels {
            route,
            method: method_label(method),
            status: status_class(status),
        };
        m.http.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// One provider call (`endpoint`: `access_token`, `code`, `id_token`, `unlink`).
    pub fn provider_call(
        &self,
        provider: &'static str,
        endpoint: &'static str,
        outcome: &'static str,
        elapsed: Duration,
    ) {
        let Some(m) = &self.0 else { return };
        let labels = ProviderLabels {
            provider,
            endpoint,
            outcome,
        };
        m.provider_calls.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// One login attempt; `result` is `ok` or the answer's error code.
    pub fn login(&self, provider: &'static str, result: &str) {
        let Some(m) = &self.0 else { return };
        let labels = LoginLabels {
            provider,
            result: result.to_owned(),
        };
        m.logins.get_or_create(&labels).inc();
    }

    pub fn refresh(&self, result: RefreshResult) {
        let Some(m) = &self.0 else { return };
        m.refreshes
            .get_or_create(&RefreshLabels { result: result.label() })
            .inc();
    }

    /// A 429: `scope` is the budget that ran out (`ip` or `account`).
    pub fn throttled(&self, action: &'static str, scope: &'static str) {
        let Some(m) = &self.0 else { return };
        m.throttled.get_or_create(&ThrottleLabels { action, scope }).inc();
    }

    /// The token writer took `size` writes; `waiting` more were queued behind them.
    pub fn writer_batch(&self, size: usize, waiting: usize) {
        let Some(m) = &self.0 else { return };
        m.writer_batch.observe(size as f64);
        m.writer_queue.set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// The exposition, with the pool gauges read now; `None` when metrics are off.
    pub fn render(&self, pool: PoolStats) -> Option<String> {
        let m = self.0.as_ref()?;
        m.pool.get_or_create(&PoolLabels { state: "in_use" }).set(pool.in_use);
        m.pool.get_or_create(&PoolLabels { state: "idle" }).set(pool.idle);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry).ok()?;
        Some(text)
    }
}

/// Connections of a pool at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub in_use: i64,
    pub idle: i64,
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_recorder_renders_nothing_and_an_enabled_one_names_its_labels() {
        assert!(Metrics::new(false).render(PoolStats::default()).is_none());
        let metrics = Metrics::new(true);
        metrics.http_request("/healthz", &Method::GET, StatusCode::OK, Duration::from_millis(2));
        metrics.refresh(RefreshResult::GraceReplay);
        let text = metrics.render(PoolStats { in_use: 1, idle: 3 }).unwrap();
        assert!(text.contains(
            r#"authbridge_http_request_duration_seconds_count{route="/healthz",method="GET",status="2xx"} 1"#
        ));
        assert!(text.contains(r#"authbridge_refreshes_total{result="grace_replay"} 1"#));
        assert!(text.contains(r#"authbridge_db_pool_connections{state="idle"} 3"#));
    }
}
