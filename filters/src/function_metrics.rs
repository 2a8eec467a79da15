//! `FunctionMetrics`: the OpenFaaS gateway's Prometheus metrics for function invocations.
//!
//! ```yaml
//! - name: FunctionMetrics
//!   args:
//!     namespace: openfaas-fn          # appended to names without a dot (function_namespace)
//!     provider: http://127.0.0.1:8081/ # optional: watch it for gateway_service_count
//!     basic-auth: true                # send the credentials to the provider
//!     user-file: /run/secrets/basic-auth-user
//!     password-file: /run/secrets/basic-auth-password
//!     watch-interval: 5s              # default
//! ```
//! Records, under OpenFaaS's names, labels and buckets:
//! - `gateway_function_invocation_started{function_name}` before the call;
//! - `gateway_function_invocation_total{function_name,code}` and the histogram
//!   `gateway_functions_seconds{function_name,code}` (buckets .005 to 10) after it, with the
//!   status the client got (weir's 502 or 504 when the provider failed);
//! - with `provider`, `gateway_service_count{function_name}`: each function's desired replicas,
//!   from listing the provider's functions in every namespace every `watch-interval`.
//!
//! `function_name` is the route's `{name}` variable, with `.namespace` appended when it has no
//! dot and a namespace is given. The counters are process-wide: every `FunctionMetrics` filter
//! and the `InvocationCount` filter share them, and they survive reloads.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::faas::{function_key, metric_name, Background, Provider};
use crate::{
    ArgError, Args, Exchange, Filter, FilterContext, FilterFactory, HttpService, LayerFilter,
    Shortcut,
};

/// The name of the process-wide counters in the state store.
pub(crate) const METRICS_STATE: &str = "openfaas-metrics";

/// The most function names recorded: beyond it, new names (a client inventing them, say) are
/// not counted, so that memory and the exposition stay bounded.
pub const MAX_FUNCTIONS: usize = 10_000;

/// `gateway_functions_seconds`' buckets: Prometheus's default buckets, as OpenFaaS uses.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One status code's count and durations, updated without a lock.
#[derive(Default)]
struct CodeStats {
    /// The status code; 0 while the slot is free.
    code: AtomicU16,
    /// The sum of the durations in seconds: an `f64`'s bits.
    sum: AtomicU64,
    /// Observations per bucket (not cumulative); the last slot is above 10 s. Their total is
    /// the count, so a scrape never sees a count its buckets disagree with.
    buckets: [AtomicU64; BUCKETS.len() + 1],
}

impl CodeStats {
    fn observe(&self, seconds: f64) {
        let bucket = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + seconds).to_bits())
            });
    }

    /// (code, count, sum, buckets), read for the exposition; `None` for a free slot.
    fn read(&self) -> Option<(u16, u64, f64, Vec<u64>)> {
        // The code first: a slot's counts are only ever added to after its code is set.
        let code = self.code.load(Ordering::Acquire);
        if code == 0 {
            return None;
        }
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        Some((
            code,
            buckets.iter().sum(),
            f64::from_bits(self.sum.load(Ordering::Relaxed)),
            buckets,
        ))
    }
}

/// The status codes a function's invocations record without a lock; more codes than this
/// (rare: most functions answer two or three) go to a locked list.
const CODE_SLOTS: usize = 4;

#[derive(Default)]
struct FunctionStats {
    started: AtomicU64,
    codes: [CodeStats; CODE_SLOTS],
    more_codes: Mutex<Vec<CodeStats>>,
}

impl FunctionStats {
    /// Records a finished invocation: the code's slot is found (or claimed) with atomics.
    fn finished(&self, status: StatusCode, elapsed: Duration) {
        // Never 0 (a free slot): a status code is 100 to 999.
        let code = status.as_u16();
        let seconds = elapsed.as_secs_f64();
        for slot in &self.codes {
            let claimed = match slot.code.load(Ordering::Acquire) {
                0 => slot
                    .code
                    .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
                    .unwrap_or_else(|current| current),
                current => current,
            };
            // `claimed` is 0 when this call took the slot (the exchange returns the old value).
            if claimed == 0 || claimed == code {
                return slot.observe(seconds);
            }
        }
        // Recorded under the lock: rare.
        let mut more = self.more_codes.lock().unwrap_or_else(|e| e.into_inner());
        let at = match more
            .iter()
            .position(|c| c.code.load(Ordering::Relaxed) == code)
        {
            Some(at) => at,
            None => {
                more.push(CodeStats {
                    code: AtomicU16::new(code),
                    ..Default::default()
                });
                more.len() - 1
            }
        };
        more[at].observe(seconds);
    }

    /// Every code recorded so far, read for the exposition and sorted by code.
    fn read(&self) -> Vec<(u16, u64, f64, Vec<u64>)> {
        let more = self.more_codes.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = self
            .codes
            .iter()
            .chain(more.iter())
            .filter_map(CodeStats::read)
            .filter(|row| row.1 > 0)
            .collect();
        rows.sort_by_key(|r| r.0);
        rows
    }
}

/// An invocation counted as started; [`Invocation::finished`] records how it ended.
#[must_use = "an invocation records nothing until it is finished"]
pub struct Invocation(Option<Arc<FunctionStats>>);

impl Invocation {
    /// Records the invocation's status code and duration.
    pub fn finished(self, status: StatusCode, elapsed: Duration) {
        if let Some(stats) = self.0 {
            stats.finished(status, elapsed);
        }
    }
}

/// The OpenFaaS function metrics of the whole process.
#[derive(Default)]
pub struct FaasMetrics {
    functions: RwLock<HashMap<String, Arc<FunctionStats>>>,
    replicas: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for FaasMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaasMetrics").finish_non_exhaustive()
    }
}

/// Escapes a label value for the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{v}")
    }
}

impl FaasMetrics {
    fn stats(&self, function: &str) -> Option<Arc<FunctionStats>> {
        if let Some(stats) = self
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(function)
        {
            return Some(stats.clone());
        }
        let mut functions = self.functions.write().unwrap_or_else(|e| e.into_inner());
        if functions.len() >= MAX_FUNCTIONS && !functions.contains_key(function) {
            return None;
        }
        Some(functions.entry(function.to_string()).or_default().clone())
    }

    /// Counts a started invocation of `function` (`name.namespace`).
    pub fn started(&self, function: &str) -> Invocation {
        let stats = self.stats(function);
        if let Some(stats) = &stats {
            stats.started.fetch_add(1, Ordering::Relaxed);
        }
        Invocation(stats)
    }

    /// Invocations of `function` (`name.namespace`) that finished, whatever their status.
    pub fn invocations(&self, function: &str) -> u64 {
        let functions = self.functions.read().unwrap_or_else(|e| e.into_inner());
        functions
            .get(function)
            .map_or(0, |stats| stats.read().iter().map(|row| row.1).sum())
    }

    /// Replaces the desired replicas of every function (`gateway_service_count`).
    pub fn set_replicas(&self, replicas: BTreeMap<String, u64>) {
        *self.replicas.lock().unwrap_or_else(|e| e.into_inner()) = replicas;
    }

    /// The metrics in Prometheus's text format (version 0.0.4), as the OpenFaaS gateway
    /// exposes them. Families without samples are left out.
    pub fn encode(&self, out: &mut String) {
        let functions: BTreeMap<String, Arc<FunctionStats>> = self
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !functions.is_empty() {
            out.push_str("# HELP gateway_function_invocation_started The total number of function HTTP requests started.\n# TYPE gateway_function_invocation_started counter\n");
            for (name, stats) in &functions {
                let _ = writeln!(
                    out,
                    "gateway_function_invocation_started{{function_name=\"{}\"}} {}",
                    escape(name),
                    stats.started.load(Ordering::Relaxed)
                );
            }
        }
        let mut finished = Vec::new();
        for (name, stats) in &functions {
            for row in stats.read() {
                finished.push((escape(name), row));
            }
        }
        if !finished.is_empty() {
            out.push_str("# HELP gateway_function_invocation_total Function metrics\n# TYPE gateway_function_invocation_total counter\n");
            for (name, (code, count, _, _)) in &finished {
                let _ = writeln!(
                    out,
                    "gateway_function_invocation_total{{code=\"{code}\",function_name=\"{name}\"}} {count}"
                );
            }
            out.push_str("# HELP gateway_functions_seconds Function time taken\n# TYPE gateway_functions_seconds histogram\n");
            for (name, (code, count, sum, buckets)) in &finished {
                let mut cumulative = 0;
                for (le, n) in BUCKETS.iter().chain([f64::INFINITY].iter()).zip(buckets) {
                    cumulative += n;
                    let _ = writeln!(
                        out,
                        "gateway_functions_seconds_bucket{{code=\"{code}\",function_name=\"{name}\",le=\"{}\"}} {cumulative}",
                        float(*le)
                    );
                }
                let _ = writeln!(
                    out,
                    "gateway_functions_seconds_sum{{code=\"{code}\",function_name=\"{name}\"}} {}",
                    float(*sum)
                );
                let _ = writeln!(
                    out,
                    "gateway_functions_seconds_count{{code=\"{code}\",function_name=\"{name}\"}} {count}"
                );
            }
        }
        let replicas = self.replicas.lock().unwrap_or_else(|e| e.into_inner());
        if !replicas.is_empty() {
            out.push_str("# HELP gateway_service_count Current count of replicas for function\n# TYPE gateway_service_count gauge\n");
            for (name, n) in replicas.iter() {
                let _ = writeln!(
                    out,
                    "gateway_service_count{{function_name=\"{}\"}} {n}",
                    escape(name)
                );
            }
        }
    }
}

/// Builds [`FunctionMetrics`].
pub struct FunctionMetricsFactory;

impl FilterFactory for FunctionMetricsFactory {
    fn name(&self) -> &'static str {
        "FunctionMetrics"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["namespace", "provider"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let metrics = ctx.global_state(METRICS_STATE, FaasMetrics::default);
        let namespace = args.get("namespace").unwrap_or_default().trim().to_string();
        let interval = args
            .duration("watchInterval")?
            .unwrap_or(Duration::from_secs(5));
        let watch = if args.get("provider").is_some() {
            let provider = Provider::from_args(args, ctx)?;
            let watch = ctx.state(args, || ServiceWatch {
                provider,
                metrics: metrics.clone(),
                task: OnceLock::new(),
            });
            watch.task.get_or_init(|| {
                Background::every(
                    Arc::downgrade(&watch),
                    interval.max(Duration::from_millis(100)),
                    |w: Arc<ServiceWatch>| async move { w.tick().await },
                )
            });
            Some(watch)
        } else {
            // Read so that they are not reported as unknown when given without `provider`.
            for name in ["basicAuth", "userFile", "passwordFile"] {
                let _ = args.get(name);
            }
            None
        };
        Ok(Filter::Layer(Arc::new(FunctionMetrics {
            metrics,
            namespace: Arc::from(namespace),
            _watch: watch,
        })))
    }
}

/// Lists the provider's functions for `gateway_service_count`.
struct ServiceWatch {
    provider: Provider,
    metrics: Arc<FaasMetrics>,
    task: OnceLock<Background>,
}

impl ServiceWatch {
    async fn tick(&self) {
        match self.provider.all_functions().await {
            Ok(all) => {
                let replicas = all
                    .iter()
                    .filter_map(|(ns, f)| {
                        let name = f.get("name")?.as_str()?;
                        let replicas = f.get("replicas").and_then(|r| r.as_u64()).unwrap_or(0);
                        Some((metric_name(name, ns), replicas))
                    })
                    .collect();
                self.metrics.set_replicas(replicas);
            }
            Err(e) => {
                tracing::debug!(provider = %self.provider.url, "listing the functions failed: {e}")
            }
        }
    }
}

/// The layer.
pub struct FunctionMetrics {
    metrics: Arc<FaasMetrics>,
    namespace: Arc<str>,
    _watch: Option<Arc<ServiceWatch>>,
}

impl LayerFilter for FunctionMetrics {
    fn layer(&self, inner: HttpService) -> HttpService {
        let metrics = self.metrics.clone();
        let namespace = self.namespace.clone();
        // Counted and called before the future: it holds only the inner call's future and
        // the invocation, not the exchange.
        HttpService::from_fn(move |exchange: Exchange| {
            let invocation = function_key(&exchange, &namespace)
                .map(|name| (metrics.started(&name), Instant::now()));
            let response = inner.handle(exchange);
            async move {
                let response = response.await;
                if let Some((invocation, start)) = invocation {
                    invocation.finished(response.status(), start.elapsed());
                }
                response
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_openfaas_names_and_buckets() {
        let m = FaasMetrics::default();
        m.started("echo.fn")
            .finished(StatusCode::OK, Duration::from_millis(20));
        m.started("echo.fn")
            .finished(StatusCode::BAD_GATEWAY, Duration::from_secs(20));
        let mut replicas = BTreeMap::new();
        replicas.insert("echo.fn".to_string(), 2);
        m.set_replicas(replicas);
        let mut out = String::new();
        m.encode(&mut out);
        for line in [
            "# TYPE gateway_function_invocation_started counter",
            "gateway_function_invocation_started{function_name=\"echo.fn\"} 2",
            "gateway_function_invocation_total{code=\"200\",function_name=\"echo.fn\"} 1",
            "gateway_functions_seconds_bucket{code=\"200\",function_name=\"echo.fn\",le=\"0.01\"} 0",
            "gateway_functions_seconds_bucket{code=\"200\",function_name=\"echo.fn\",le=\"0.025\"} 1",
            "gateway_functions_seconds_bucket{code=\"502\",function_name=\"echo.fn\",le=\"10\"} 0",
            "gateway_functions_seconds_bucket{code=\"502\",function_name=\"echo.fn\",le=\"+Inf\"} 1",
            "gateway_functions_seconds_count{code=\"502\",function_name=\"echo.fn\"} 1",
            "gateway_service_count{function_name=\"echo.fn\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line}\n{out}");
        }
        assert_eq!(m.invocations("echo.fn"), 2);
        assert_eq!(m.invocations("other"), 0);
        // Names beyond the cap are not recorded.
        for i in 0..MAX_FUNCTIONS {
            let _ = m.started(&format!("f{i}"));
        }
        let _ = m.started("one-too-many");
        assert_eq!(m.functions.read().unwrap().len(), MAX_FUNCTIONS);
        let _ = m.started("echo.fn");
        assert_eq!(
            m.functions.read().unwrap()["echo.fn"]
                .started
                .load(Ordering::Relaxed),
            3
        );
    }

    #[test]
    fn every_code_is_counted_once_from_many_threads() {
        let m = Arc::new(FaasMetrics::default());
        // More codes than the lock-free slots, so some go to the locked list.
        let codes = [200u16, 404, 500, 502, 503, 504];
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..600 {
                        let code = codes[(i + t) % codes.len()];
                        let status = StatusCode::from_u16(code).unwrap();
                        m.started("echo.fn")
                            .finished(status, Duration::from_millis(30));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let rows = m.functions.read().unwrap()["echo.fn"].read();
        let seen: Vec<u16> = rows.iter().map(|row| row.0).collect();
        assert_eq!(seen, codes, "each code once, in order");
        for (code, count, sum, buckets) in rows {
            assert_eq!(count, 400, "code {code}");
            assert!((sum - 12.0).abs() < 1e-6, "code {code}: sum {sum}");
            // 30 ms falls in the 0.05 bucket (index 3).
            assert_eq!(buckets[3], 400, "code {code}");
        }
        assert_eq!(m.invocations("echo.fn"), 2400);
    }
}
