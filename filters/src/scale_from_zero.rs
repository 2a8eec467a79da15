//! `ScaleFromZero`: before a function is invoked, makes sure it has a replica ready, scaling
//! it up from zero when it has none; and scales idle functions down to zero.
//!
//! ```yaml
//! - name: ScaleFromZero
//!   args:
//!     provider: http://127.0.0.1:8081/     # the faas-provider (required)
//!     namespace: openfaas-fn               # for names without a dot (function_namespace)
//!     basic-auth: true                     # send the credentials to the provider
//!     user-file: /run/secrets/basic-auth-user
//!     password-file: /run/secrets/basic-auth-password
//!     cache-expiry: 250ms                  # how long a "ready" answer is believed
//!     poll-interval: 100ms                 # how often to ask while waiting
//!     max-wait: 30s                        # then 503
//!     scale-to-zero: true                  # scale idle functions to zero (see below)
//!     idle-check-interval: 10s             # how often to look for idle functions
//! ```
//! For each request, the function (the route's `{name}`, `name.namespace` split at the last
//! dot) is looked up on the provider (`GET system/function/NAME?namespace=NS`); a ready answer
//! is kept for `cache-expiry`. With no replica available and none desired, weir asks the
//! provider for max(1, `com.openfaas.scale.min`) replicas (`POST system/scale-function/NAME`),
//! then polls every `poll-interval` until one is available, and forwards. Concurrent requests
//! for one function share one look-up, one scale call and one polling loop.
//!
//! Answers: an unknown function gets 404 naming it; a function not ready within `max-wait`
//! gets 503 saying so; a provider that cannot be reached or answers an error gets 502.
//!
//! Idle functions: a function labelled `com.openfaas.scale.zero=true` that has had no
//! invocation through this weir for `com.openfaas.scale.zero-duration` (default `15m`; `90s`,
//! `1h30m`...) is scaled to zero. Weir's first sight of a function (at its start, after a
//! reload that changes this filter's arguments, or when it is deployed later) counts as an
//! invocation, so a restart never scales everything down at once.
//! Without `namespace`, a request for a bare name counts for that name in every namespace
//! (the provider's default namespace is not known), so a function is never scaled down while
//! it is used. Each idle check also forgets the functions the provider no longer lists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::faas::{function_key, metric_name, split_name, Background, Provider, Status};
use crate::{
    parse_duration, ArgError, Args, BoxFuture, Exchange, Filter, FilterContext, FilterFactory,
    HttpService, LayerFilter, Shortcut,
};

/// The label that opts a function into idle scale-down.
pub const ZERO_LABEL: &str = "com.openfaas.scale.zero";
/// How long a function must be idle before it is scaled down.
pub const ZERO_DURATION_LABEL: &str = "com.openfaas.scale.zero-duration";
/// The replicas a function is scaled up to from zero (at least 1).
pub const MIN_LABEL: &str = "com.openfaas.scale.min";
/// The idle time after which a `com.openfaas.scale.zero` function is scaled down by default.
pub const DEFAULT_ZERO_DURATION: Duration = Duration::from_secs(15 * 60);

/// Builds [`ScaleFromZero`].
pub struct ScaleFromZeroFactory;

impl FilterFactory for ScaleFromZeroFactory {
    fn name(&self) -> &'static str {
        "ScaleFromZero"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["provider", "namespace"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let provider = Provider::from_args(args, ctx)?;
        let positive = |name: &str, default: Duration| -> Result<Duration, ArgError> {
            let d = args.duration(name)?.unwrap_or(default);
            if d.is_zero() {
                return Err(ArgError::for_arg(name, "must be more than zero"));
            }
            Ok(d)
        };
        let settings = Settings {
            cache_expiry: args
                .duration("cacheExpiry")?
                .unwrap_or(Duration::from_millis(250)),
            poll_interval: positive("pollInterval", Duration::from_millis(100))?,
            max_wait: positive("maxWait", Duration::from_secs(30))?,
            scale_to_zero: args.flag("scaleToZero", true)?,
            idle_check_interval: positive("idleCheckInterval", Duration::from_secs(10))?,
        };
        let scaler = ctx.state(args, || Scaler {
            provider,
            settings,
            slots: RwLock::new(HashMap::new()),
            started: Instant::now(),
            idle: OnceLock::new(),
        });
        if scaler.settings.scale_to_zero {
            scaler.idle.get_or_init(|| {
                Background::every(
                    Arc::downgrade(&scaler),
                    scaler.settings.idle_check_interval,
                    |s: Arc<Scaler>| async move { s.scale_idle_down().await },
                )
            });
        }
        Ok(Filter::Layer(Arc::new(ScaleFromZero { scaler })))
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    cache_expiry: Duration,
    poll_interval: Duration,
    max_wait: Duration,
    scale_to_zero: bool,
    idle_check_interval: Duration,
}

/// What one look-up (and scale, and wait) concluded.
#[derive(Debug, Clone)]
enum Outcome {
    Ready,
    NotFound,
    Failed(StatusCode, String),
}

/// One function's record. Every request reads and writes its times, so they are atomics:
/// nanoseconds since `epoch`.
struct Slot {
    /// The scaler's start (weir's, or the reload that changed the filter's arguments), which
    /// the times count from.
    epoch: Instant,
    /// When a replica was last known to be available, plus one; 0 when none is known.
    ready_at: AtomicU64,
    /// When the function was last invoked (or the slot was made).
    last_used: AtomicU64,
    /// Invocations under way.
    in_flight: AtomicUsize,
    /// Requests waiting for a look-up ([`Pending`]); changed under the slots map's lock.
    waiting: AtomicUsize,
    /// Held by the request that looks up (and scales, and waits) for everyone.
    cycle: tokio::sync::Mutex<()>,
    /// Counts finished look-ups; with `outcome`, what requests that waited for one get.
    generation: AtomicU64,
    outcome: Mutex<Outcome>,
}

impl Slot {
    /// A slot whose times count from `epoch` (the scaler's start). Its making counts as an
    /// invocation: a function weir has just seen (at its start, or deployed since) is not
    /// idle yet.
    fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            ready_at: AtomicU64::new(0),
            last_used: AtomicU64::new(epoch.elapsed().as_nanos() as u64),
            in_flight: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            cycle: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
            outcome: Mutex::new(Outcome::NotFound),
        }
    }

    /// Now, in nanoseconds since `epoch` (enough for 584 years).
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn touch(&self) {
        self.last_used.fetch_max(self.now(), Ordering::Relaxed);
    }

    /// How long since the function was last invoked (or the slot was made).
    fn idle_for(&self) -> Duration {
        let last_used = self.last_used.load(Ordering::Relaxed);
        Duration::from_nanos(self.now().saturating_sub(last_used))
    }

    fn fresh(&self, expiry: Duration) -> bool {
        match self.ready_at.load(Ordering::Acquire) {
            0 => false,
            at => Duration::from_nanos(self.now().saturating_sub(at - 1)) < expiry,
        }
    }

    /// Whether a look-up of the function has ended (or is ending with a ready answer); once
    /// true, always true.
    fn looked_up(&self) -> bool {
        self.generation.load(Ordering::Acquire) > 0 || self.ready_at.load(Ordering::Acquire) > 0
    }

    fn set_ready(&self, ready: bool) {
        let at = if ready { self.now() + 1 } else { 0 };
        self.ready_at.store(at, Ordering::Release);
    }
}

/// The scaler of one filter (kept across reloads while its arguments do not change).
struct Scaler {
    provider: Provider,
    settings: Settings,
    /// Read by every request; written when a function is first seen or found unknown.
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    started: Instant,
    idle: OnceLock<Background>,
}

impl Scaler {
    /// `key`'s slot, made if need be.
    fn slot(&self, key: &str) -> Arc<Slot> {
        self.with_slot(key, Arc::clone)
    }

    /// Applies `f` to `key`'s slot (made if need be) under the map's lock: the read lock when
    /// the slot is there, the write lock when it must be made.
    fn with_slot<T>(&self, key: &str, f: impl Fn(&Arc<Slot>) -> T) -> T {
        if let Some(slot) = self
            .slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return f(slot);
        }
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        f(slots
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Slot::new(self.started))))
    }

    /// Makes sure `name` in `ns` has a replica available; one caller at a time per function,
    /// and callers that waited for another's look-up (one that ended after they started
    /// waiting, [`Scaler::wait_for`]) share its outcome.
    async fn ensure_ready(&self, name: &str, ns: &str, pending: &Pending) -> Outcome {
        let (key, slot, seen) = (pending.key.as_str(), &*pending.slot, pending.seen);
        if slot.fresh(self.settings.cache_expiry) {
            return Outcome::Ready;
        }
        let _cycle = slot.cycle.lock().await;
        if slot.generation.load(Ordering::Acquire) != seen {
            return slot
                .outcome
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
        }
        if slot.fresh(self.settings.cache_expiry) {
            return Outcome::Ready;
        }
        let outcome = self.look_up_and_scale(name, ns, key, slot).await;
        *slot.outcome.lock().unwrap_or_else(|e| e.into_inner()) = outcome.clone();
        // Unknown names are not remembered: a client cannot fill memory with them. The
        // generation moves under the map's lock, so a request that started waiting for this
        // slot before it went sees that it moved (and takes this outcome) rather than looking
        // up on a slot no longer in the map.
        let forget = matches!(outcome, Outcome::NotFound)
            .then(|| self.slots.write().unwrap_or_else(|e| e.into_inner()));
        slot.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(mut slots) = forget {
            if slots.get(key).is_some_and(|s| std::ptr::eq(&**s, slot)) {
                slots.remove(key);
            }
        }
        outcome
    }

    /// `key`'s slot (made if need be), counted as waited for by one more request. The count
    /// is taken under the map's lock, as [`Pending`] gives it back, so that a request leaving
    /// cannot forget a slot another has just started waiting for.
    fn wait_for(self: &Arc<Self>, key: String) -> Pending {
        let (slot, seen) = self.with_slot(&key, |slot| {
            slot.waiting.fetch_add(1, Ordering::AcqRel);
            (slot.clone(), slot.generation.load(Ordering::Acquire))
        });
        Pending {
            scaler: self.clone(),
            key,
            slot,
            seen,
        }
    }

    /// Forgets the functions the provider did not list (`listed`, by key) that no request
    /// waits for or is invoking: names whose look-up failed (the provider down, a namespace
    /// it refuses) are otherwise kept, and a client could fill memory with invented ones.
    fn forget_unlisted(&self, listed: &std::collections::HashSet<String>) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        slots.retain(|key, slot| {
            listed.contains(key)
                || slot.waiting.load(Ordering::Acquire) > 0
                || slot.in_flight.load(Ordering::Acquire) > 0
        });
    }

    async fn look_up_and_scale(&self, name: &str, ns: &str, key: &str, slot: &Slot) -> Outcome {
        let start = Instant::now();
        let deadline = start + self.settings.max_wait;
        let unreachable = |e: crate::faas::ProviderError| {
            tracing::warn!(function = key, "scale from zero: {e}");
            Outcome::Failed(
                StatusCode::BAD_GATEWAY,
                format!("cannot look up function `{key}`: {}", e.short()),
            )
        };
        let status = match self.provider.function(name, ns).await {
            Ok(Some(status)) => status,
            Ok(None) => return Outcome::NotFound,
            Err(e) => return unreachable(e),
        };
        if status.available > 0 {
            slot.set_ready(true);
            return Outcome::Ready;
        }
        if status.replicas == 0 {
            let target = status.label_u64(MIN_LABEL, 1).max(1);
            tracing::info!(
                function = key,
                replicas = target,
                "[Scale] function={key} 0 => {target} requested"
            );
            if let Err(e) = self.provider.scale(name, ns, target).await {
                return unreachable(e);
            }
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    function = key,
                    "[Scale] function={key} not ready within {:?}",
                    self.settings.max_wait
                );
                return Outcome::Failed(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "function `{key}` did not become ready within {}",
                        human(self.settings.max_wait)
                    ),
                );
            }
            tokio::time::sleep(self.settings.poll_interval.min(deadline - now)).await;
            match self.provider.function(name, ns).await {
                Ok(Some(status)) if status.available > 0 => {
                    slot.set_ready(true);
                    tracing::info!(
                        function = key,
                        "[Ready] function={key} waited for {:.3}s",
                        start.elapsed().as_secs_f64()
                    );
                    return Outcome::Ready;
                }
                Ok(Some(_)) => {}
                Ok(None) => return Outcome::NotFound,
                Err(e) => tracing::debug!(function = key, "polling: {e}"),
            }
        }
    }

    /// The keys requests for function `name` in namespace `ns` are recorded under:
    /// `name.ns`, and the bare name too when this filter has no namespace of its own (its
    /// requests for a bare name then name no namespace, and the provider picks its default,
    /// which weir does not know).
    fn keys_of(&self, name: &str, ns: &str) -> Vec<String> {
        let mut keys = vec![metric_name(name, ns)];
        if self.provider.namespace.is_empty() && !ns.is_empty() {
            keys.push(name.to_string());
        }
        keys
    }

    /// One pass of idle scale-down; it also forgets functions the provider no longer lists.
    async fn scale_idle_down(&self) {
        let all = match self.provider.all_functions().await {
            Ok(all) => all,
            Err(e) => {
                tracing::debug!(provider = %self.provider.url, "idle check: listing the functions failed: {e}");
                return;
            }
        };
        let names = |function: &serde_json::Value| {
            function
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_string)
        };
        let listed: std::collections::HashSet<String> = all
            .iter()
            .filter_map(|(ns, function)| Some(self.keys_of(&names(function)?, ns)))
            .flatten()
            .collect();
        self.forget_unlisted(&listed);
        for (ns, function) in all {
            let Some(name) = names(&function) else {
                continue;
            };
            let status = Status::from_json(&function);
            if status.replicas == 0 || status.label(ZERO_LABEL) != Some("true") {
                continue;
            }
            let keys = self.keys_of(&name, &ns);
            let key = &keys[0];
            let idle_for = match status.label(ZERO_DURATION_LABEL) {
                None => DEFAULT_ZERO_DURATION,
                Some(text) => match zero_duration(text) {
                    Some(d) => d,
                    None => {
                        tracing::warn!(function = %key, "`{ZERO_DURATION_LABEL}={text}` is not a duration such as 90s, 15m or 1h30m; using 15m");
                        DEFAULT_ZERO_DURATION
                    }
                },
            };
            let slots: Vec<Arc<Slot>> = keys.iter().map(|key| self.slot(key)).collect();
            // A look-up under way (its cycle held) means the function is in use: skipped,
            // rather than waited for.
            let Ok(_cycles) = slots
                .iter()
                .map(|slot| slot.cycle.try_lock())
                .collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let idle = slots.iter().map(|slot| slot.idle_for()).min();
            let in_use = slots.iter().any(|slot| {
                slot.in_flight.load(Ordering::Acquire) > 0
                    || slot.waiting.load(Ordering::Acquire) > 0
            });
            let Some(idle) = idle.filter(|idle| !in_use && *idle >= idle_for) else {
                continue;
            };
            // Not ready from now on: a request arriving during the scale call looks up again
            // (once the cycles are free) rather than trusting the cache.
            slots.iter().for_each(|slot| slot.set_ready(false));
            match self.provider.scale(&name, &ns, 0).await {
                Ok(()) => {
                    tracing::info!(function = %key, "[Idle] function={key} scaled to zero after {} without invocations", human(idle));
                }
                Err(e) => {
                    tracing::warn!(function = %key, "[Idle] scaling function={key} to zero failed: {e}")
                }
            }
        }
    }
}

/// `com.openfaas.scale.zero-duration`: a duration (`90s`, `15m`, `1h30m`); a bare number is
/// seconds.
fn zero_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    parse_duration(text).ok()
}

fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// The layer.
pub struct ScaleFromZero {
    scaler: Arc<Scaler>,
}

/// A request that waits for a look-up of its function ([`Scaler::wait_for`]). A slot is made
/// for a function when a request for it first arrives; if every request that waited for the
/// slot's first look-up is gone before it ends (its client left, say), the slot is
/// forgotten, so that names a client invents cannot fill memory.
struct Pending {
    scaler: Arc<Scaler>,
    key: String,
    slot: Arc<Slot>,
    /// The slot's generation when the request started waiting.
    seen: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.slot.looked_up() {
            // Never forgotten here, so the count needs no lock.
            self.slot.waiting.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let mut slots = self.scaler.slots.write().unwrap_or_else(|e| e.into_inner());
        let last = self.slot.waiting.fetch_sub(1, Ordering::AcqRel) == 1;
        if last
            && !self.slot.looked_up()
            && slots
                .get(&self.key)
                .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            slots.remove(&self.key);
        }
    }
}

/// Counts an invocation under way, and when it ends.
struct InFlight(Arc<Slot>);

impl InFlight {
    fn start(slot: Arc<Slot>) -> Self {
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(slot)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

impl LayerFilter for ScaleFromZero {
    fn layer(&self, inner: HttpService) -> HttpService {
        let scaler = self.scaler.clone();
        // A function known to be ready (the cached answer, nearly every request) is called
        // before the future, which then holds only the inner call's future and the in-flight
        // count; otherwise the future looks up (and scales, and waits) first.
        let owned = move |exchange: Exchange| -> BoxFuture {
            let Some(key) = function_key(&exchange, &scaler.provider.namespace) else {
                return inner.call_boxed(exchange);
            };
            let slot = scaler.slot(&key);
            slot.touch();
            if slot.fresh(scaler.settings.cache_expiry) {
                let in_flight = InFlight::start(slot);
                let response = inner.call_boxed(exchange);
                return Box::pin(async move {
                    let _in_flight = in_flight;
                    response.await
                });
            }
            drop(slot);
            let inner = inner.clone();
            let pending = scaler.wait_for(key);
            Box::pin(async move {
                let (scaler, key) = (&pending.scaler, &pending.key);
                let (name, ns) = split_name(key, &scaler.provider.namespace);
                match scaler.ensure_ready(name, ns, &pending).await {
                    Outcome::Ready => {
                        let _in_flight = InFlight::start(pending.slot.clone());
                        inner.handle(exchange).await
                    }
                    Outcome::NotFound => exchange.error(
                        StatusCode::NOT_FOUND,
                        &format!("function `{key}` was not found"),
                    ),
                    Outcome::Failed(status, message) => exchange.error(status, &message),
                }
            })
        };
        HttpService::from_fns(owned, |_| None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_tells_its_idle_time_and_whether_its_ready_answer_is_fresh() {
        let now = Instant::now();
        let epoch = now.checked_sub(Duration::from_secs(60)).unwrap_or(now);
        let slot = Slot::new(epoch);
        // Its making counts as the last invocation, however long ago the scaler started.
        assert!(slot.idle_for() < Duration::from_secs(30));
        slot.last_used.store(0, Ordering::Relaxed);
        assert!(slot.idle_for() >= now - epoch);
        slot.touch();
        assert!(slot.idle_for() < Duration::from_secs(30));
        assert!(!slot.fresh(Duration::from_secs(30)), "no answer yet");
        slot.set_ready(true);
        assert!(slot.fresh(Duration::from_secs(30)));
        assert!(!slot.fresh(Duration::ZERO), "older than a zero expiry");
        slot.set_ready(false);
        assert!(!slot.fresh(Duration::from_secs(30)));
    }

    fn scaler(namespace: &str) -> Arc<Scaler> {
        scaler_with(HttpService::from_fn(|_| std::future::pending()), namespace)
    }

    /// A scaler whose provider is `provider`.
    fn scaler_with(provider: HttpService, namespace: &str) -> Arc<Scaler> {
        Arc::new(Scaler {
            provider: Provider::for_test(provider, namespace),
            settings: Settings {
                cache_expiry: Duration::from_millis(250),
                poll_interval: Duration::from_millis(100),
                max_wait: Duration::from_secs(30),
                scale_to_zero: false,
                idle_check_interval: Duration::from_secs(10),
            },
            slots: RwLock::default(),
            started: Instant::now(),
            idle: OnceLock::new(),
        })
    }

    fn known(scaler: &Scaler, key: &str) -> bool {
        scaler.slots.read().unwrap().contains_key(key)
    }

    #[test]
    fn a_slot_no_request_waits_for_before_its_first_look_up_is_forgotten() {
        let scaler = scaler("fn");
        // Two requests wait for an invented name; the slot goes with the last of them.
        let (first, second) = (
            scaler.wait_for("ghost.fn".into()),
            scaler.wait_for("ghost.fn".into()),
        );
        assert!(Arc::ptr_eq(&first.slot, &second.slot));
        drop(first);
        assert!(
            known(&scaler, "ghost.fn"),
            "still awaited by the second request"
        );
        drop(second);
        assert!(!known(&scaler, "ghost.fn"), "nobody waits for it any more");

        // A slot that was looked up once (even if that failed) is kept, as is a ready one.
        let failed = scaler.wait_for("flaky.fn".into());
        failed.slot.generation.fetch_add(1, Ordering::AcqRel);
        drop(failed);
        assert!(known(&scaler, "flaky.fn"));
        let ready = scaler.wait_for("echo.fn".into());
        ready.slot.set_ready(true);
        drop(ready);
        assert!(known(&scaler, "echo.fn"));
        assert_eq!(scaler.slot("echo.fn").waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_request_that_waited_across_a_not_found_takes_it_without_a_look_up() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let provider = HttpService::from_fn(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                let mut response = http::Response::new(crate::Body::Empty);
                *response.status_mut() = StatusCode::NOT_FOUND;
                response
            }
        });
        let scaler = scaler_with(provider, "fn");
        // `late` starts waiting; another request's look-up then ends NotFound, forgetting the
        // slot, before `late` is polled.
        let late = scaler.wait_for("ghost.fn".into());
        let first = scaler.wait_for("ghost.fn".into());
        let outcome = scaler.ensure_ready("ghost", "fn", &first).await;
        assert!(matches!(outcome, Outcome::NotFound), "{outcome:?}");
        assert!(!known(&scaler, "ghost.fn"));
        let outcome = scaler.ensure_ready("ghost", "fn", &late).await;
        assert!(matches!(outcome, Outcome::NotFound), "{outcome:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one look-up for both");
    }

    #[tokio::test]
    async fn the_idle_pass_leaves_a_function_in_use_alone() {
        let scale_calls = Arc::new(AtomicUsize::new(0));
        let counted = scale_calls.clone();
        let provider = HttpService::from_fn(move |exchange: Exchange| {
            let path = exchange.request.uri().path().to_string();
            if path == "/system/scale-function/busy" {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                let (status, body) = match path.as_str() {
                    // Idle after no time at all: only being in use keeps it.
                    "/system/functions" => (
                        StatusCode::OK,
                        r#"[{"name": "busy", "replicas": 1, "availableReplicas": 1, "labels":
                            {"com.openfaas.scale.zero": "true",
                             "com.openfaas.scale.zero-duration": "0"}}]"#,
                    ),
                    "/system/scale-function/busy" => (StatusCode::OK, ""),
                    _ => (StatusCode::NOT_FOUND, ""),
                };
                let mut response = http::Response::new(crate::Body::full(body));
                *response.status_mut() = status;
                response
            }
        });
        let scaler = scaler_with(provider, "fn");
        let idle_pass = || {
            let scaler = scaler.clone();
            async move {
                // Bounded: an idle pass that waited for a look-up would hang here.
                tokio::time::timeout(Duration::from_secs(5), scaler.scale_idle_down())
                    .await
                    .expect("the idle pass waited for a look-up under way");
            }
        };
        let scale_calls = || scale_calls.load(Ordering::SeqCst);

        let waiting = scaler.wait_for("busy.fn".into());
        let slot = waiting.slot.clone();
        slot.set_ready(true);
        idle_pass().await;
        assert_eq!(scale_calls(), 0, "a request waits for a look-up");
        drop(waiting);

        let look_up = slot.cycle.try_lock().unwrap();
        idle_pass().await;
        assert_eq!(scale_calls(), 0, "a look-up is under way");
        drop(look_up);

        let invoking = InFlight::start(slot.clone());
        idle_pass().await;
        assert_eq!(scale_calls(), 0, "a request is invoking it");
        drop(invoking);

        idle_pass().await;
        assert_eq!(scale_calls(), 1, "idle at last");
        assert!(!slot.fresh(Duration::from_secs(30)), "no longer ready");
    }

    #[test]
    fn the_idle_check_forgets_functions_the_provider_does_not_list() {
        let scaler = scaler("fn");
        for key in ["echo.fn", "gone.fn", "invented.fn"] {
            let pending = scaler.wait_for(key.into());
            pending.slot.generation.fetch_add(1, Ordering::AcqRel);
        }
        let waiting = scaler.wait_for("awaited.fn".into());
        waiting.slot.generation.fetch_add(1, Ordering::AcqRel);
        let invoked = scaler.slot("invoked.fn");
        let _in_flight = InFlight::start(invoked);
        let listed = scaler.keys_of("echo", "fn").into_iter().collect();
        scaler.forget_unlisted(&listed);
        assert!(known(&scaler, "echo.fn"));
        assert!(!known(&scaler, "gone.fn"));
        assert!(!known(&scaler, "invented.fn"));
        assert!(known(&scaler, "awaited.fn"), "a request waits for it");
        assert!(known(&scaler, "invoked.fn"), "a request is invoking it");
    }

    #[test]
    fn without_a_namespace_of_its_own_a_listed_function_has_its_bare_name_too() {
        assert_eq!(scaler("fn").keys_of("echo", "fn"), ["echo.fn"]);
        assert_eq!(scaler("").keys_of("echo", "fn"), ["echo.fn", "echo"]);
        assert_eq!(scaler("").keys_of("echo", ""), ["echo"]);
    }

    #[test]
    fn zero_durations() {
        assert_eq!(zero_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(zero_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(zero_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(zero_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(zero_duration("soon"), None);
    }
}
