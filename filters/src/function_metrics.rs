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
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::faas::{function_of, metric_name, split_name, Background, Provider};
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

#[derive(Default)]
struct CodeStats {
    code: u16,
    count: u64,
    sum: f64,
    /// Observations per bucket (not cumulative); the last slot is above 10 s.
    buckets: [u64; BUCKETS.len() + 1],
}

#[derive(Default)]
struct FunctionStats {
    started: std::sync::atomic::AtomicU64,
    codes: Mutex<Vec<CodeStats>>,
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
    pub fn started(&self, function: &str) {
        if let Some(stats) = self.stats(function) {
            stats
                .started
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Records a finished invocation.
    pub fn finished(&self, function: &str, code: u16, elapsed: Duration) {
        let Some(stats) = self.stats(function) else {
            return;
        };
        let mut codes = stats.codes.lock().unwrap_or_else(|e| e.into_inner());
        let at = match codes.iter().position(|c| c.code == code) {
            Some(at) => at,
            None => {
                codes.push(CodeStats {
                    code,
                    ..Default::default()
                });
                codes.len() - 1
            }
        };
        let entry = &mut codes[at];
        let seconds = elapsed.as_secs_f64();
        entry.count += 1;
        entry.sum += seconds;
        let bucket = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        entry.buckets[bucket] += 1;
    }

    /// Invocations of `function` (`name.namespace`) that finished, whatever their status.
    pub fn invocations(&self, function: &str) -> u64 {
        let functions = self.functions.read().unwrap_or_else(|e| e.into_inner());
        functions.get(function).map_or(0, |stats| {
            stats
                .codes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|c| c.count)
                .sum()
        })
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
                    stats.started.load(std::sync::atomic::Ordering::Relaxed)
                );
            }
        }
        let mut finished = Vec::new();
        for (name, stats) in &functions {
            let codes = stats.codes.lock().unwrap_or_else(|e| e.into_inner());
            let mut rows: Vec<(u16, u64, f64, Vec<u64>)> = codes
                .iter()
                .map(|c| (c.code, c.count, c.sum, c.buckets.to_vec()))
                .collect();
            rows.sort_by_key(|r| r.0);
            for row in rows {
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
        HttpService::from_fn(move |exchange: Exchange| {
            let inner = inner.clone();
            let metrics = metrics.clone();
            let name = function_of(&exchange).map(|full| {
                if full.contains('.') {
                    full
                } else {
                    let (name, ns) = split_name(&full, &namespace);
                    metric_name(name, ns)
                }
            });
            async move {
                let Some(name) = name else {
                    return inner.handle(exchange).await;
                };
                metrics.started(&name);
                let start = Instant::now();
                let response = inner.handle(exchange).await;
                metrics.finished(&name, response.status().as_u16(), start.elapsed());
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
        m.started("echo.fn");
        m.finished("echo.fn", 200, Duration::from_millis(20));
        m.started("echo.fn");
        m.finished("echo.fn", 502, Duration::from_secs(20));
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
            m.started(&format!("f{i}"));
        }
        m.started("one-too-many");
        assert_eq!(m.functions.read().unwrap().len(), MAX_FUNCTIONS);
        m.started("echo.fn");
        assert_eq!(
            m.functions.read().unwrap()["echo.fn"]
                .started
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
    }
}
