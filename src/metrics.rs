//! weir's own Prometheus metrics, served on the admin listener's `/metrics`.

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
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use weir_filters::circuit_breaker::breaker::Breaker;
use weir_filters::StateStore;

/// Labels of `weir_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route id, or `unmatched` when no route took the request.
    pub route: Arc<str>,
    /// Request method (`OTHER` for extension methods).
    pub method: &'static str,
    /// Response status.
    pub status: u16,
}

/// Labels of `weir_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route id.
    pub route: Arc<str>,
}

/// Labels of `weir_config_reloads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// The registry and every metric in it.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    reloads: Family<ReloadLabels, Counter>,
    last_reload_success: Gauge<f64, AtomicU64>,
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

/// The method as a static label value.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "weir_requests",
            "Requests handled, by route, method and status",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "weir_request_duration_seconds",
            "Time from receiving a request to sending its response headers, by route",
            duration.clone(),
        );
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
        let metrics = Self {
            registry,
            requests,
            duration,
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
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method_label(method),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
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
