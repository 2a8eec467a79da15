//! weir's own Prometheus metrics, served on the admin listener's `/metrics`.

mod routes;

pub use routes::method_label;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use weir_filters::circuit_breaker::breaker::Breaker;
use weir_filters::StateStore;

/// Labels of `weir_config_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// Labels of `weir_async_completed_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The function's final status (503 when it could not be reached).
    pub status: u16,
}

/// The async queue's metrics (`weir_async_*`).
#[derive(Clone, Default)]
pub struct QueueMetrics {
    /// Requests accepted into the queue.
    pub queued: Counter,
    /// Invocations the worker started.
    pub started: Counter,
    /// Invocations finished, by final status.
    pub completed: Family<StatusLabels, Counter>,
    /// Retried invocation attempts.
    pub retried: Counter,
    /// Callbacks that failed after all their retries.
    pub callback_failures: Counter,
    /// Messages waiting in the embedded queue.
    pub depth: Gauge,
}

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    /// `weir_requests_total` and `weir_request_duration_seconds`.
    routes: Arc<routes::RouteStatsSet>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge<f64, AtomicU64>,
    /// The async queue's metrics.
    pub queue: QueueMetrics,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The circuit breakers' state and calls, read from the breakers at each scrape:
/// `weir_circuit_breaker_state{name}` (0 closed, 1 open, 2 half-open) and
/// `weir_circuit_breaker_calls_total{name,outcome}` (`successful`, `failed`, `slow`,
/// `rejected`).
#[derive(Debug)]
pub struct BreakerCollector(pub Arc<StateStore>);

impl Collector for BreakerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let breakers = self.0.values::<Breaker>();
        if breakers.is_empty() {
            return Ok(());
        }
        {
            let mut family = encoder.encode_descriptor(
                "weir_circuit_breaker_state",
                "Circuit breaker state: 0 closed, 1 open, 2 half-open",
                None,
                MetricType::Gauge,
            )?;
            for (_, breaker) in &breakers {
                let labels = [("name", breaker.name())];
                ConstGauge::new(breaker.state().gauge()).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_circuit_breaker_calls",
            "Calls through circuit breakers, by outcome",
            None,
            MetricType::Counter,
        )?;
        for (_, breaker) in &breakers {
            let c = &breaker.counters;
            for (outcome, value) in [
                ("successful", &c.successful),
                ("failed", &c.failed),
                ("slow", &c.slow),
                ("rejected", &c.rejected),
            ] {
                let labels = [("name", breaker.name()), ("outcome", outcome)];
                ConstCounter::new(value.load(std::sync::atomic::Ordering::Relaxed))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let routes = Arc::new(routes::RouteStatsSet::default());
        registry.register_collector(Box::new(routes::RouteStatsCollector(routes.clone())));
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "weir_config_reloads",
            "Config reloads after start-up, by result",
            reloads.clone(),
        );
        let last_reload_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "weir_config_last_reload_success_timestamp_seconds",
            "When the running config was loaded (start-up or the last successful reload), in Unix seconds",
            last_reload_success.clone(),
        );
        let queue = QueueMetrics::default();
        registry.register(
            "weir_async_queued",
            "Async requests accepted into the queue",
            queue.queued.clone(),
        );
        registry.register(
            "weir_async_started",
            "Async invocations started by the worker",
            queue.started.clone(),
        );
        registry.register(
            "weir_async_completed",
            "Async invocations finished, by final status",
            queue.completed.clone(),
        );
        registry.register(
            "weir_async_retried",
            "Async invocation attempts retried",
            queue.retried.clone(),
        );
        registry.register(
            "weir_async_callback_failures",
            "Async callbacks that failed after all their retries",
            queue.callback_failures.clone(),
        );
        registry.register(
            "weir_async_queue_depth",
            "Messages waiting in the embedded async queue",
            queue.depth.clone(),
        );
        let metrics = Self {
            queue,
            registry,
            routes,
            reloads,
            last_reload_success,
        };
        metrics.last_reload_success.set(unix_now());
        metrics
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn record(&self, route: &Arc<str>, method: &Method, status: u16, elapsed: Duration) {
        self.routes.record(route, method, status, elapsed);
    }

    /// Makes room for these routes' request metrics before they serve (see
    /// `routes::RouteStatsSet::add`); a route not given here still gets its metrics on its
    /// first request.
    pub fn add_routes(&self, routes: impl IntoIterator<Item = Arc<str>>) {
        self.routes.add(routes);
    }

    /// Counts a successful reload and records its time.
    pub fn reload_succeeded(&self) {
        self.reloads
            .get_or_create(&ReloadLabels { result: "success" })
            .inc();
        self.last_reload_success.set(unix_now());
    }

    /// Counts a failed reload.
    pub fn reload_failed(&self) {
        self.reloads
            .get_or_create(&ReloadLabels { result: "failure" })
            .inc();
    }

    /// Lets other parts of weir register their metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`prometheus_text`]: Prometheus's text format, version 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric in Prometheus's text format (0.0.4), as the OpenFaaS gateway serves them: the
/// OpenFaaS function metrics under their own names (`gateway_function_invocation_started` is
/// a counter without `_total`, which OpenMetrics does not allow), then weir's own.
pub fn prometheus_text(metrics: &Metrics, state: &StateStore) -> String {
    let mut out = String::new();
    for (_, faas) in state.values::<weir_filters::function_metrics::FaasMetrics>() {
        faas.encode(&mut out);
    }
    out.push_str(&openmetrics_to_text(&metrics.encode()));
    out
}

/// Rewrites prometheus-client's OpenMetrics text as Prometheus text 0.0.4: a counter family
/// is named after its `_total` samples, and `# EOF` and `# UNIT` go.
fn openmetrics_to_text(text: &str) -> String {
    let counters: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# TYPE ", "# HELP "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The metrics listener (`metrics.listen`): `GET /metrics` and `GET /healthz` (`OK`), nothing
/// else, without authentication, as the OpenFaaS gateway's port 8082.
pub fn metrics_listener(
    metrics: &Metrics,
    state: &StateStore,
    request: &http::Request<weir_filters::Body>,
) -> http::Response<weir_filters::Body> {
    use http::{header, HeaderValue, Response, StatusCode};
    use weir_filters::Body;
    let path = request.uri().path();
    let (body, content_type) = match path {
        "/metrics" => (Body::full(prometheus_text(metrics, state)), PROMETHEUS_TEXT),
        "/healthz" => (Body::full("OK"), "text/plain; charset=utf-8"),
        _ => {
            return weir_filters::error_response(
                StatusCode::NOT_FOUND,
                "the metrics listener serves /metrics and /healthz only",
                path,
                None,
                0,
            )
        }
    };
    if request.method() != http::Method::GET {
        let mut response = weir_filters::error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is allowed here",
            path,
            None,
            0,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod text_tests {
    use super::*;

    #[test]
    fn openmetrics_counters_become_total_families() {
        let metrics = Metrics::default();
        metrics.record(&Arc::from("r"), &Method::GET, 200, Duration::from_millis(3));
        let text = openmetrics_to_text(&metrics.encode());
        assert!(
            text.contains("# TYPE weir_requests_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP weir_requests_total "), "{text}");
        assert!(
            text.contains("weir_requests_total{route=\"r\",method=\"GET\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE weir_request_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}
