//! `weir_requests_total{route,method,status}` and `weir_request_duration_seconds{route}`,
//! recorded on every request without a lock.
//!
//! A prometheus-client `Family` takes a read lock and hashes the labels with SipHash on every
//! record, and its `Histogram` takes a write lock: two locks and two lookups per request,
//! about 840 instructions. Here each route has a [`RouteStats`] of atomics, found in a map
//! that is read without locking (`ArcSwap`) and copied only when a config brings new route
//! ids.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use fnv::FnvHashMap;
use http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

/// Labels of `weir_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// Route id, or `unmatched` when no route took the request.
    route: Arc<str>,
    /// Request method (`OTHER` for extension methods).
    method: &'static str,
    /// Response status.
    status: u16,
}

/// Labels of `weir_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    /// Route id.
    route: Arc<str>,
}

/// Label values of `method`, by index; the last is for extension methods.
const METHODS: [&str; 10] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// The index of `method`'s label in [`METHODS`].
fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => 9,
    }
}

/// The method as a static label value.
pub fn method_label(method: &Method) -> &'static str {
    METHODS[method_index(method)]
}

/// Method and status pairs counted per route in atomics; a route that answers more distinct
/// pairs counts the rest under a lock.
const SLOTS: usize = 32;

/// Upper bounds of the duration buckets, in nanoseconds: 0.5 ms doubling 16 times (to about
/// 16 s), then `+Inf`.
const BUCKETS: [u64; 16] = {
    let mut bounds = [0; 16];
    let mut i = 0;
    while i < 16 {
        bounds[i] = 500_000 << i;
        i += 1;
    }
    bounds
};

/// One route's counts and durations.
struct RouteStats {
    /// Counts by key (see [`key`]); a slot's key is 0 until it is taken.
    slots: [(AtomicU32, AtomicU64); SLOTS],
    /// Counts of the pairs that found no slot.
    overflow: Mutex<HashMap<u32, u64>>,
    /// Observations per bucket (not cumulative); the last is `+Inf`. Their total is the
    /// count, so a scrape always sees the two agree.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    /// The sum of the durations, in microseconds (in nanoseconds, a busy route with slow
    /// responses would wrap it within months).
    sum_micros: AtomicU64,
}

/// A method and status as one non-zero number.
fn key(method: usize, status: u16) -> u32 {
    ((method as u32 + 1) << 16) | u32::from(status)
}

/// The method and status of a key.
fn unkey(key: u32) -> (usize, u16) {
    ((key >> 16) as usize - 1, key as u16)
}

impl RouteStats {
    fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| (AtomicU32::new(0), AtomicU64::new(0))),
            overflow: Mutex::new(HashMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn record(&self, method: &Method, status: u16, elapsed: Duration) {
        self.count_request(key(method_index(method), status));
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(nanos / 1_000, Ordering::Relaxed);
    }

    /// Adds one to `key`'s count: the slot that has the key, or the first free one, probing
    /// from the key's own position.
    fn count_request(&self, key: u32) {
        let start = (key as usize).wrapping_mul(0x9E37_79B9) % SLOTS;
        for i in 0..SLOTS {
            let (slot_key, count) = &self.slots[(start + i) % SLOTS];
            let found = match slot_key.load(Ordering::Acquire) {
                0 => match slot_key.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => true,
                    Err(taken) => taken == key,
                },
                taken => taken == key,
            };
            if found {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        *overflow.entry(key).or_default() += 1;
    }

    /// Whether any request was recorded.
    fn answered(&self) -> bool {
        self.buckets.iter().any(|n| n.load(Ordering::Relaxed) != 0)
    }

    /// Every (key, count) with a count.
    fn counts(&self) -> Vec<(u32, u64)> {
        let mut counts: Vec<(u32, u64)> = self
            .slots
            .iter()
            .map(|(k, c)| (k.load(Ordering::Acquire), c.load(Ordering::Relaxed)))
            .filter(|&(k, c)| k != 0 && c != 0)
            .collect();
        let overflow = self.overflow.lock().unwrap_or_else(|e| e.into_inner());
        counts.extend(overflow.iter().map(|(&k, &c)| (k, c)));
        counts.sort_unstable();
        counts
    }

    /// The histogram as prometheus-client encodes it: sum (seconds), count, and per-bucket
    /// counts with their upper bounds (`f64::MAX` for `+Inf`).
    fn histogram(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .map(|&bound| bound as f64 / 1e9)
            .chain(std::iter::once(f64::MAX))
            .zip(&self.buckets)
            .map(|(bound, n)| (bound, n.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|&(_, n)| n).sum();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, count, buckets)
    }
}

/// Route ids are short strings from the config: FNV hashes them faster than SipHash.
type Map = FnvHashMap<Arc<str>, Arc<RouteStats>>;

/// Every route's stats, by route id.
#[derive(Default)]
pub(super) struct RouteStatsSet {
    routes: ArcSwap<Map>,
    /// Held while a route is added (the map is copied, then swapped).
    adding: Mutex<()>,
}

impl std::fmt::Debug for RouteStatsSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStatsSet")
            .field("routes", &self.routes.load().len())
            .finish()
    }
}

impl RouteStatsSet {
    /// Records one answered request of `route`.
    pub(super) fn record(&self, route: &Arc<str>, method: &Method, status: u16, elapsed: Duration) {
        if let Some(stats) = self.routes.load().get(route) {
            return stats.record(method, status, elapsed);
        }
        // Only for a route [`RouteStatsSet::add`] was not told of.
        self.add([route.clone()]);
        if let Some(stats) = self.routes.load().get(route) {
            stats.record(method, status, elapsed);
        }
    }

    /// Makes room for `routes`, all in one copy of the map, so that their first requests
    /// find it made. Called with a config's routes before they serve: a route first met by
    /// a request would copy the map for itself, and a table of many new routes would copy
    /// it once per route.
    pub(super) fn add(&self, routes: impl IntoIterator<Item = Arc<str>>) {
        let _adding = self.adding.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = Map::clone(&self.routes.load());
        let before = map.len();
        for route in routes {
            map.entry(route)
                .or_insert_with(|| Arc::new(RouteStats::new()));
        }
        if map.len() != before {
            self.routes.store(Arc::new(map));
        }
    }

    /// The routes that have answered a request, sorted by id.
    fn sorted(&self) -> Vec<(Arc<str>, Arc<RouteStats>)> {
        let mut routes: Vec<_> = self
            .routes
            .load()
            .iter()
            .filter(|(_, stats)| stats.answered())
            .map(|(id, stats)| (id.clone(), stats.clone()))
            .collect();
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        routes
    }
}

/// Encodes the set as the two families it stands for.
#[derive(Debug)]
pub(super) struct RouteStatsCollector(pub(super) Arc<RouteStatsSet>);

impl Collector for RouteStatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let routes = self.0.sorted();
        // Like prometheus-client's own families: nothing at all until there is a sample.
        if routes.is_empty() {
            return Ok(());
        }
        {
            let mut family = encoder.encode_descriptor(
                "weir_requests",
                "Requests handled, by route, method and status.",
                None,
                MetricType::Counter,
            )?;
            for (route, stats) in &routes {
                for (key, count) in stats.counts() {
                    let (method, status) = unkey(key);
                    let labels = RequestLabels {
                        route: route.clone(),
                        method: METHODS[method],
                        status,
                    };
                    ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "weir_request_duration_seconds",
            "Time from receiving a request to sending its response headers, by route.",
            None,
            MetricType::Histogram,
        )?;
        for (route, stats) in &routes {
            let (sum, count, buckets) = stats.histogram();
            let labels = RouteLabels {
                route: route.clone(),
            };
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_method_and_status_pair_even_past_the_slots() {
        let stats = RouteStats::new();
        for status in 100..200u16 {
            for _ in 0..2 {
                stats.record(&Method::GET, status, Duration::from_millis(1));
            }
        }
        stats.record(&Method::from_bytes(b"PURGE").unwrap(), 200, Duration::ZERO);
        let counts = stats.counts();
        assert_eq!(counts.len(), 101);
        assert!(counts
            .iter()
            .filter(|&&(k, _)| unkey(k).0 == 0)
            .all(|&(_, c)| c == 2));
        assert_eq!(
            counts.iter().find(|&&(k, _)| unkey(k) == (9, 200)),
            Some(&(key(9, 200), 1))
        );
    }

    #[test]
    fn routes_made_ahead_show_once_answered_and_keep_their_counts() {
        let set = RouteStatsSet::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        set.add([a.clone(), b.clone()]);
        assert!(set.sorted().is_empty(), "no samples yet: nothing to show");
        set.record(&a, &Method::GET, 200, Duration::ZERO);
        set.record(&"late".into(), &Method::GET, 404, Duration::ZERO);
        // A later config with the same route keeps its stats.
        set.add([a.clone(), "c".into()]);
        set.record(&a, &Method::GET, 200, Duration::ZERO);
        let shown: Vec<_> = set
            .sorted()
            .into_iter()
            .map(|(id, s)| (id, s.counts()))
            .collect();
        assert_eq!(
            shown,
            [
                (a, vec![(key(0, 200), 2)]),
                ("late".into(), vec![(key(0, 404), 1)]),
            ]
        );
    }

    #[test]
    fn durations_fall_in_the_first_bucket_that_holds_them() {
        let stats = RouteStats::new();
        stats.record(&Method::GET, 200, Duration::from_micros(500));
        stats.record(&Method::GET, 200, Duration::from_micros(501));
        stats.record(&Method::GET, 200, Duration::from_secs(100));
        let (sum, count, buckets) = stats.histogram();
        assert_eq!(count, 3);
        assert!((sum - 100.001001).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[1], (0.001, 1));
        assert_eq!(buckets[16], (f64::MAX, 1));
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 3);
    }
}
