//! Services behind `lb://NAME`: their instances, how one is picked, and their health.
//!
//! An instance is skipped while it is ejected (passive health: it failed
//! `consecutive-failures` times in a row; the ejection doubles each time it fails again after
//! coming back) or while active checks find it unhealthy. DNS services re-resolve their name
//! every `resolve-interval`; instances whose address stays keep their state.
//!
//! A service is long-lived state: it survives a reload that leaves its definition unchanged,
//! and its background tasks (checks, DNS) end when the last table using it is dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Method, Request, Uri};
use weir_filters::{random_below, Body, Strategy, TriedInstances};

use super::client::{HttpClient, PoolCache};
use crate::config::{ActiveHealth, PassiveHealth, ServiceDef};

/// Where a request can be sent: scheme, authority, and the `Host` header that goes with it.
#[derive(Debug)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// The `Host` header for it.
    pub host: HeaderValue,
    /// `scheme://authority`, as logs, the admin API and retries name it.
    pub key: Arc<str>,
    /// Its connection pool in the client that used it last.
    pub(crate) pool: PoolCache,
}

impl Endpoint {
    /// An endpoint for `authority` over http or https.
    pub fn new(tls: bool, authority: Authority) -> Self {
        let scheme = if tls { Scheme::HTTPS } else { Scheme::HTTP };
        let host = HeaderValue::from_str(authority.as_str())
            .expect("an authority is a valid header value");
        let key = Arc::from(format!("{scheme}://{authority}"));
        Self {
            scheme,
            authority,
            host,
            key,
            pool: PoolCache::default(),
        }
    }
}

/// Finds the addresses of a DNS service. Blocking; weir calls it off the async workers.
pub trait Resolver: Send + Sync {
    /// The addresses of `host` (all of its A and AAAA records), each with `port`.
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver (`getaddrinfo`).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// One instance and its health.
#[derive(Debug)]
pub struct Instance {
    /// Where it is.
    pub endpoint: Arc<Endpoint>,
    /// Its share for the `weighted` strategy.
    pub weight: u32,
    in_flight: AtomicU32,
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    /// Milliseconds since the service's epoch until which the instance is ejected.
    ejected_until: AtomicU64,
    active_healthy: AtomicBool,
    active_streak: AtomicU32,
}

impl Instance {
    fn new(endpoint: Endpoint, weight: u32) -> Self {
        Self {
            endpoint: Arc::new(endpoint),
            weight: weight.max(1),
            in_flight: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            active_healthy: AtomicBool::new(true),
            active_streak: AtomicU32::new(0),
        }
    }

    /// Requests sent to it that have not answered yet.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts a request in flight for as long as it lives.
pub struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One service.
pub struct Service {
    /// Its definition.
    pub def: ServiceDef,
    instances: ArcSwap<Vec<Arc<Instance>>>,
    next: AtomicUsize,
    epoch: Instant,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// A snapshot of one instance, for the admin API.
#[derive(Debug, serde::Serialize)]
pub struct InstanceStatus {
    /// `scheme://host:port`.
    pub uri: String,
    /// Its weight.
    pub weight: u32,
    /// `true` unless ejected or failing active checks.
    pub healthy: bool,
    /// Ejected by passive health, and for how many more milliseconds.
    pub ejected_for_ms: u64,
    /// What active checks say.
    pub active_healthy: bool,
    /// Failures in a row.
    pub consecutive_failures: u32,
    /// Requests under way.
    pub in_flight: u32,
}

impl Service {
    /// Creates the service and, when a runtime is available, its background tasks (DNS
    /// resolution, active checks).
    pub fn start(def: ServiceDef, client: HttpClient, resolver: Arc<dyn Resolver>) -> Arc<Self> {
        let mut instances: Vec<Arc<Instance>> = def
            .instances
            .iter()
            .map(|i| {
                Arc::new(Instance::new(
                    Endpoint::new(i.tls, i.authority.clone()),
                    i.weight,
                ))
            })
            .collect();
        if let Some(dns) = &def.dns {
            // The first resolution happens now, so the service has instances from the start.
            match resolver.resolve(&dns.host, dns.port) {
                Ok(addrs) => instances.extend(dns_instances(&addrs, dns.tls)),
                Err(e) => {
                    tracing::warn!(service = %def.name, host = %dns.host, error = %e, "cannot resolve the service's name yet")
                }
            }
        }
        let service = Arc::new(Self {
            def,
            instances: ArcSwap::from_pointee(instances),
            next: AtomicUsize::new(random_below(1 << 16)),
            epoch: Instant::now(),
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut tasks = Vec::new();
            if let Some(dns) = service.def.dns.clone() {
                tasks.push(runtime.spawn(resolve_loop(Arc::downgrade(&service), resolver, dns)));
            }
            if let Some(active) = service.def.active.clone() {
                tasks.push(runtime.spawn(check_loop(Arc::downgrade(&service), client, active)));
            }
            *service.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        }
        service
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn healthy(&self, instance: &Instance, now: u64) -> bool {
        instance.ejected_until.load(Ordering::Relaxed) <= now
            && instance.active_healthy.load(Ordering::Relaxed)
    }

    /// Picks an instance with `strategy`, avoiding the ones in `avoid` while others are
    /// healthy. `None` when no instance is healthy.
    pub fn pick(
        &self,
        strategy: Strategy,
        avoid: Option<&TriedInstances>,
    ) -> Option<(Arc<Instance>, InFlight)> {
        let instances = self.instances.load();
        // The clock matters only while an instance is (or was, until its next success)
        // ejected.
        let now = if instances
            .iter()
            .any(|i| i.ejected_until.load(Ordering::Relaxed) != 0)
        {
            self.now_ms()
        } else {
            0
        };
        let chosen = self
            .pick_from(&instances, strategy, now, |i| {
                avoid.is_none_or(|avoid| !avoid.contains(&i.endpoint.key))
            })
            .or_else(|| {
                if avoid.is_none_or(TriedInstances::is_empty) {
                    None
                } else {
                    self.pick_from(&instances, strategy, now, |_| true)
                }
            })?;
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some((chosen.clone(), InFlight(chosen)))
    }

    fn pick_from(
        &self,
        instances: &[Arc<Instance>],
        strategy: Strategy,
        now: u64,
        allowed: impl Fn(&Instance) -> bool,
    ) -> Option<Arc<Instance>> {
        let ok = |i: &Instance| self.healthy(i, now) && allowed(i);
        // Picks are made among the instances that are ok, so that each of them gets an even
        // share: taking the next ok instance after a chosen position would give the one after
        // an ejected instance its share too.
        let eligible = instances.iter().filter(|i| ok(i)).count();
        if eligible == 0 {
            return None;
        }
        // The k-th ok instance (modulo their number). Health can change meanwhile: then any
        // ok one.
        let nth = |k: usize| {
            instances
                .iter()
                .filter(|i| ok(i))
                .nth(k % eligible)
                .or_else(|| instances.iter().find(|i| ok(i)))
                .cloned()
        };
        match strategy {
            Strategy::RoundRobin => nth(self.next.fetch_add(1, Ordering::Relaxed)),
            Strategy::Random => nth(random_below(eligible)),
            Strategy::LeastRequests => {
                let a = nth(random_below(eligible))?;
                let b = nth(random_below(eligible))?;
                Some(if b.in_flight() < a.in_flight() { b } else { a })
            }
            Strategy::Weighted => {
                let total: u64 = instances
                    .iter()
                    .filter(|i| ok(i))
                    .map(|i| u64::from(i.weight))
                    .sum();
                if total == 0 {
                    return None;
                }
                let mut point = (random_below(usize::MAX) as u64) % total;
                for instance in instances.iter().filter(|i| ok(i)) {
                    let w = u64::from(instance.weight);
                    if point < w {
                        return Some(instance.clone());
                    }
                    point -= w;
                }
                None
            }
        }
    }

    /// Passive health: how a call to `instance` went.
    pub fn report(&self, instance: &Instance, failed: bool) {
        let passive: &PassiveHealth = &self.def.passive;
        if !failed {
            // Written only when set: these lines are shared by every request to the instance.
            for counter in [&instance.consecutive_failures, &instance.ejections] {
                if counter.load(Ordering::Relaxed) != 0 {
                    counter.store(0, Ordering::Relaxed);
                }
            }
            // An ejection that is over is forgotten, so that picks stop reading the clock. (A
            // call that started before a current ejection does not end it.)
            let until = instance.ejected_until.load(Ordering::Relaxed);
            if until != 0 && until <= self.now_ms() {
                let _ = instance.ejected_until.compare_exchange(
                    until,
                    0,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            return;
        }
        let failures = instance
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        let on_probation = instance.ejections.load(Ordering::Relaxed) > 0;
        if failures < passive.consecutive_failures && !on_probation {
            return;
        }
        let now = self.now_ms();
        if instance.ejected_until.load(Ordering::Relaxed) > now {
            return; // already ejected (calls that were under way when it was)
        }
        let ejections = instance.ejections.fetch_add(1, Ordering::Relaxed);
        let length = passive
            .base_ejection
            .saturating_mul(1u32 << ejections.min(16))
            .min(passive.max_ejection);
        instance
            .ejected_until
            .store(now + length.as_millis() as u64, Ordering::Relaxed);
        instance.consecutive_failures.store(0, Ordering::Relaxed);
        tracing::warn!(
            service = %self.def.name,
            instance = %instance.endpoint.key,
            failures,
            ejected_ms = length.as_millis() as u64,
            "instance ejected"
        );
    }

    /// The instances and their health, for the admin API.
    pub fn status(&self) -> Vec<InstanceStatus> {
        let now = self.now_ms();
        self.instances
            .load()
            .iter()
            .map(|i| InstanceStatus {
                uri: i.endpoint.key.to_string(),
                weight: i.weight,
                healthy: self.healthy(i, now),
                ejected_for_ms: i.ejected_until.load(Ordering::Relaxed).saturating_sub(now),
                active_healthy: i.active_healthy.load(Ordering::Relaxed),
                consecutive_failures: i.consecutive_failures.load(Ordering::Relaxed),
                in_flight: i.in_flight(),
            })
            .collect()
    }
}

fn dns_instances(addrs: &[SocketAddr], tls: bool) -> Vec<Arc<Instance>> {
    let mut seen = std::collections::HashSet::new();
    addrs
        .iter()
        .filter(|a| seen.insert(**a))
        .filter_map(|a| a.to_string().parse::<Authority>().ok())
        .map(|authority| Arc::new(Instance::new(Endpoint::new(tls, authority), 1)))
        .collect()
}

async fn resolve_loop(
    service: Weak<Service>,
    resolver: Arc<dyn Resolver>,
    dns: crate::config::DnsDef,
) {
    loop {
        tokio::time::sleep(dns.interval).await;
        let (host, port) = (dns.host.clone(), dns.port);
        let resolver = resolver.clone();
        let resolved = tokio::task::spawn_blocking(move || resolver.resolve(&host, port)).await;
        let Some(service) = service.upgrade() else {
            return;
        };
        let addrs = match resolved {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => {
                // Keep the last good answer: a resolver hiccup should not empty the service.
                tracing::warn!(service = %service.def.name, host = %dns.host, error = %e, "DNS resolution failed; keeping the last instances");
                continue;
            }
            Err(_) => continue,
        };
        let fresh = dns_instances(&addrs, dns.tls);
        let old = service.instances.load();
        let statics = service.def.instances.len();
        let mut next: Vec<Arc<Instance>> = old[..statics.min(old.len())].to_vec();
        for instance in fresh {
            match old[statics.min(old.len())..]
                .iter()
                .find(|o| o.endpoint.key == instance.endpoint.key)
            {
                Some(kept) => next.push(kept.clone()),
                None => next.push(instance),
            }
        }
        let changed =
            next.len() != old.len() || next.iter().zip(old.iter()).any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            tracing::info!(service = %service.def.name, instances = next.len() - statics, "DNS instances changed");
            service.instances.store(Arc::new(next));
        }
    }
}

async fn check_loop(service: Weak<Service>, client: HttpClient, active: ActiveHealth) {
    loop {
        tokio::time::sleep(active.interval).await;
        let Some(strong) = service.upgrade() else {
            return;
        };
        let instances = strong.instances.load_full();
        let name = strong.def.name.clone();
        drop(strong);
        for instance in instances.iter() {
            let uri = Uri::builder()
                .scheme(instance.endpoint.scheme.clone())
                .authority(instance.endpoint.authority.clone())
                .path_and_query(active.path.as_str())
                .build();
            let Ok(uri) = uri else { continue };
            let mut request = Request::new(Body::Empty);
            *request.method_mut() = Method::GET;
            *request.uri_mut() = uri;
            request
                .headers_mut()
                .insert(http::header::HOST, instance.endpoint.host.clone());
            let passed = matches!(
                tokio::time::timeout(active.timeout, client.request(request)).await,
                Ok(Ok(response)) if response.status().is_success()
            );
            let healthy = instance.active_healthy.load(Ordering::Relaxed);
            if passed == healthy {
                instance.active_streak.store(0, Ordering::Relaxed);
                continue;
            }
            let streak = instance.active_streak.fetch_add(1, Ordering::Relaxed) + 1;
            let threshold = if healthy {
                active.unhealthy_threshold
            } else {
                active.healthy_threshold
            };
            if streak >= threshold {
                instance.active_healthy.store(passed, Ordering::Relaxed);
                instance.active_streak.store(0, Ordering::Relaxed);
                tracing::info!(service = %name, instance = %instance.endpoint.key, healthy = passed, "active health check changed the instance's health");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InstanceDef;
    use std::time::Duration;

    fn service(weights: &[u32]) -> Arc<Service> {
        let def = ServiceDef {
            name: "s".into(),
            instances: weights
                .iter()
                .enumerate()
                .map(|(i, w)| InstanceDef {
                    tls: false,
                    authority: format!("127.0.0.1:{}", 9000 + i).parse().unwrap(),
                    weight: *w,
                })
                .collect(),
            dns: None,
            passive: PassiveHealth {
                consecutive_failures: 2,
                base_ejection: Duration::from_secs(60),
                max_ejection: Duration::from_secs(600),
            },
            active: None,
            pos: Default::default(),
        };
        let client =
            crate::proxy::Upstream::default().client(Duration::from_secs(1), Default::default());
        Service::start(def, client, Arc::new(SystemResolver))
    }

    fn counts(s: &Service, strategy: Strategy, n: usize) -> Vec<usize> {
        let mut counts = vec![0; s.instances.load().len()];
        for _ in 0..n {
            let (i, _guard) = s.pick(strategy, None).unwrap();
            let port = i.endpoint.authority.port_u16().unwrap() as usize;
            counts[port - 9000] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_is_even_and_weighted_follows_weights() {
        let s = service(&[1, 1, 1]);
        assert_eq!(counts(&s, Strategy::RoundRobin, 300), vec![100, 100, 100]);
        let s = service(&[1, 3]);
        let c = counts(&s, Strategy::Weighted, 40_000);
        assert!((9_000..11_000).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn ejected_instances_get_no_traffic_and_avoid_is_honoured() {
        let s = service(&[1, 1]);
        let first = s.instances.load()[0].clone();
        s.report(&first, true);
        s.report(&first, true);
        assert_eq!(counts(&s, Strategy::RoundRobin, 10), vec![0, 10]);
        let s = service(&[1, 1]);
        let avoid = TriedInstances::new(2);
        avoid.record(&s.instances.load()[0].endpoint.key);
        for _ in 0..10 {
            let (i, _) = s.pick(Strategy::RoundRobin, Some(&avoid)).unwrap();
            assert_eq!(i.endpoint.authority.port_u16(), Some(9001));
        }
    }

    #[test]
    fn least_requests_prefers_the_idle_instance() {
        let s = service(&[1, 1]);
        let busy = s.instances.load()[0].clone();
        let _guards: Vec<_> = (0..5)
            .map(|_| {
                busy.in_flight.fetch_add(1, Ordering::Relaxed);
                InFlight(busy.clone())
            })
            .collect();
        let c = counts(&s, Strategy::LeastRequests, 1000);
        assert!(c[1] > c[0] * 2, "{c:?}");
    }
}
