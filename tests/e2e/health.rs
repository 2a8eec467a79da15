//! The health of a service's instances: passive ejection after failures in a row, active
//! checks, and DNS services that follow their name's resolution.
//!
//! Ejections last a known time; a test that checks an instance gets nothing while ejected only
//! counts the requests that finished before the earliest moment the ejection could end, and
//! waits for recovery by polling, with a bound, for the instance to serve again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use weir::proxy::balance::Resolver;

use crate::backend::*;
use crate::support::*;

/// Two instances `a` and `b` behind `lb://backend`, ejected after 3 failures in a row for
/// `ejection`.
async fn pair_with_passive_health(ejection: &str) -> (Backend, Backend, Gw) {
    pair_with_passive_health_max(ejection, ejection).await
}

/// As [`pair_with_passive_health`], with the longest ejection `max`.
async fn pair_with_passive_health_max(ejection: &str, max: &str) -> (Backend, Backend, Gw) {
    let (a, b) = (backend("a").await, backend("b").await);
    // The flow form, as the documentation writes it.
    let yaml = format!(
        r#"
services:
  backend:
    instances:
    - http://${{A}}
    - http://${{B}}
    health:
      passive: {{ consecutive-failures: 3, base-ejection: {ejection}, max-ejection: {max} }}
gateway:
  routes:
  - id: lb
    uri: lb://backend
"#
    );
    let (sa, sb) = (a.addr.to_string(), b.addr.to_string());
    let gw = gateway(&yaml, None, &[("A", &sa), ("B", &sb)]).await;
    (a, b, gw)
}

/// Sends sequential requests until `a` (set to fail) has failed three times; returns when the
/// third failing request was sent. Every other answer must be b's 200.
async fn fail_three_times(gw: &Gw, client: &HttpClient, failure: u16) -> Instant {
    let mut failures = 0;
    for _ in 0..100 {
        let sent = Instant::now();
        let resp = Req::get(gw.addr, "/x").send_with(client).await;
        if resp.status == 200 {
            assert_eq!(served_by(&resp).as_deref(), Some("b"), "{}", resp.text());
            continue;
        }
        assert_eq!(resp.status.as_u16(), failure, "{}", resp.text());
        failures += 1;
        if failures == 3 {
            return sent;
        }
    }
    panic!("a never failed three times in 100 requests");
}

/// The passive-ejection scenario, with `a` failing in `mode` (answers `failure` to the client)
/// and `received` counting what reaches `a`.
async fn ejected_until_recovered(mode: Mode, failure: u16, received: fn(&Backend) -> usize) {
    let ejection = Duration::from_millis(500);
    let (a, _b, gw) = pair_with_passive_health("500ms").await;
    let client = client();
    a.set(mode);
    let third = fail_three_times(&gw, &client, failure).await;
    let at_ejection = received(&a);

    // The ejection started after the third failing request was sent, so it lasts at least
    // until `third + ejection` (less a millisecond of rounding).
    let end = third + ejection - Duration::from_millis(5);
    let status = service_instance(gw.admin, "backend", a.addr).await;
    if Instant::now() < end {
        assert_eq!(status["healthy"], json!(false), "{status}");
        assert!(status["ejected_for_ms"].as_u64().unwrap() > 0, "{status}");
    }
    let mut during = 0;
    loop {
        let resp = Req::get(gw.addr, "/x").send_with(&client).await;
        if Instant::now() >= end {
            break;
        }
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(served_by(&resp).as_deref(), Some("b"));
        assert_eq!(received(&a), at_ejection, "an ejected instance got traffic");
        during += 1;
    }
    assert!(during > 0, "no request finished during the ejection");

    // It recovers: once the ejection is over, it serves again.
    a.set(Mode::Ok);
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = Req::get(gw.addr, "/x").send_with(&client).await;
        if resp.status == 200 && served_by(&resp).as_deref() == Some("a") {
            break;
        }
        assert!(Instant::now() < deadline, "a never served again");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = service_instance(gw.admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(true), "{status}");
    assert_eq!(status["consecutive_failures"], json!(0), "{status}");
    // And it takes its full share again.
    let counts = spread(gw.addr, "/x", 20, 1).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
}

#[tokio::test]
async fn an_instance_answering_5xx_is_ejected_and_gets_nothing_until_it_recovers() {
    ejected_until_recovered(Mode::Status(503), 503, Backend::requests).await;
}

#[tokio::test]
async fn an_instance_closing_connections_is_ejected_and_gets_nothing_until_it_recovers() {
    // A closed connection reaches the client as weir's 502; while ejected, the instance sees
    // not even a connection.
    ejected_until_recovered(Mode::Close, 502, Backend::connections).await;
}

#[tokio::test]
async fn failures_that_are_not_in_a_row_do_not_eject() {
    let (a, b, gw) = pair_with_passive_health("1h").await;
    let _ = &b;
    // a fails two of every three requests: never three in a row.
    a.cycle(vec![Mode::Status(500), Mode::Status(500), Mode::Ok]);
    let client = client();
    for _ in 0..60 {
        Req::get(gw.addr, "/x").send_with(&client).await;
    }
    assert_eq!(a.requests(), 30, "a kept its share");
    let status = service_instance(gw.admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(true), "{status}");
}

/// `a` and `b` behind `lb://backend`, checked every 30 ms.
async fn pair_with_active_checks() -> (Backend, Backend, Gw) {
    let (a, b) = (backend("a").await, backend("b").await);
    let yaml = r#"
services:
  backend:
    instances:
    - http://${A}
    - http://${B}
    health:
      active:
        path: /healthz
        interval: 30ms
        healthy-threshold: 2
        unhealthy-threshold: 3
        timeout: 1s
gateway:
  routes:
  - id: lb
    uri: lb://backend
"#;
    let (sa, sb) = (a.addr.to_string(), b.addr.to_string());
    let gw = gateway(yaml, None, &[("A", &sa), ("B", &sb)]).await;
    (a, b, gw)
}

/// Polls the admin API until a's `active_healthy` is `healthy`. Each time the API answers,
/// the checks a has answered the other way since `since` (read after the answer) must reach
/// `threshold` if the flag has flipped: it never flips early.
async fn active_flag_flips(gw: &Gw, a: &Backend, healthy: bool, since: usize, threshold: usize) {
    let answered = |a: &Backend| {
        if healthy {
            a.passed_checks()
        } else {
            a.failed_checks()
        }
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let status = service_instance(gw.admin, "backend", a.addr).await;
        let checks = answered(a) - since;
        if status["active_healthy"] == json!(healthy) {
            assert!(
                checks >= threshold,
                "flipped to healthy={healthy} after only {checks} checks: {status}"
            );
            assert_eq!(status["healthy"], json!(healthy), "{status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never flipped to healthy={healthy} after {checks} checks: {status}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn active_checks_take_an_instance_out_and_back_and_traffic_follows() {
    let (a, b, gw) = pair_with_active_checks().await;
    eventually("both instances are checked", || {
        a.passed_checks() > 0 && b.passed_checks() > 0
    })
    .await;
    let counts = spread(gw.addr, "/x", 20, 1).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");

    // a fails its checks (it would still serve requests well).
    let since = a.failed_checks();
    a.set_health(false);
    active_flag_flips(&gw, &a, false, since, 3).await;
    let before = a.requests();
    let counts = spread(gw.addr, "/x", 40, 2).await;
    assert_eq!(counts.get("b"), Some(&40), "{counts:?}");
    assert_eq!(a.requests(), before, "an unhealthy instance got traffic");

    // a passes again.
    let since = a.passed_checks();
    a.set_health(true);
    active_flag_flips(&gw, &a, true, since, 2).await;
    let counts = spread(gw.addr, "/x", 20, 1).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
    assert!(b.health_checks() > 0);
}

/// A resolver whose answer the test sets; `None` is a resolution error. It answers with the
/// addresses as given, whatever port is asked for, so that each origin keeps its own port.
#[derive(Clone, Default)]
struct TestDns {
    answer: Arc<Mutex<Option<Vec<SocketAddr>>>>,
    calls: Arc<AtomicUsize>,
}

impl TestDns {
    fn set(&self, answer: Option<Vec<SocketAddr>>) {
        *self.answer.lock().unwrap() = answer;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Resolver for TestDns {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        assert_eq!((host, port), ("backend.test", 8080));
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer.lock().unwrap().clone().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "test resolver says no")
        })
    }
}

const DNS_CONFIG: &str = r#"
services:
  backend:
    dns: backend.test:8080
    resolve-interval: 20ms
gateway:
  routes:
  - id: lb
    uri: lb://backend
    predicates:
    - Path=/lb/**
  - id: quiet
    uri: lb://backend
    predicates:
    - Path=/quiet/**
    filters:
    - LoadBalancer=round-robin, true
"#;

async fn instance_uris(gw: &Gw) -> Vec<String> {
    service_instances(gw.admin, "backend")
        .await
        .iter()
        .map(|i| i["uri"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn dns_instances_follow_the_resolution() {
    let (a, b) = (backend("a").await, backend("b").await);
    let dns = TestDns::default();
    dns.set(Some(vec![a.addr]));
    let resolver = dns.clone();
    let gw = gateway_with(DNS_CONFIG, &[], |builder| builder.resolver(resolver)).await;
    let counts = spread(gw.addr, "/lb/x", 10, 1).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
    assert_eq!(instance_uris(&gw).await, vec![a.uri()]);
    let resp = get(gw.admin, "/actuator/gateway/services").await;
    assert_eq!(resp.json()[0]["dns"], json!("backend.test:8080"));

    // The name now resolves to b alone: requests move to b, and stay there.
    dns.set(Some(vec![b.addr]));
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = get(gw.addr, "/lb/x").await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        if served_by(&resp).as_deref() == Some("b") {
            break;
        }
        assert!(Instant::now() < deadline, "requests never moved to b");
    }
    let at_switch = a.requests();
    let counts = spread(gw.addr, "/lb/x", 20, 2).await;
    assert_eq!(counts.get("b"), Some(&20), "{counts:?}");
    assert_eq!(a.requests(), at_switch);
    assert_eq!(instance_uris(&gw).await, vec![b.uri()]);

    // Both: both serve.
    dns.set(Some(vec![a.addr, b.addr]));
    let deadline = Instant::now() + WAIT;
    while instance_uris(&gw).await.len() != 2 {
        assert!(
            Instant::now() < deadline,
            "the second instance never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(instance_uris(&gw).await, vec![a.uri(), b.uri()]);
    let counts = spread(gw.addr, "/lb/x", 20, 1).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");

    // A failing resolution keeps the last answer.
    let calls = dns.calls();
    dns.set(None);
    eventually("the resolver is asked twice more", || {
        dns.calls() >= calls + 2
    })
    .await;
    assert_eq!(instance_uris(&gw).await, vec![a.uri(), b.uri()]);
    let counts = spread(gw.addr, "/lb/x", 20, 1).await;
    assert_eq!(counts.len(), 2, "{counts:?}");
}

#[tokio::test]
async fn a_dns_service_without_addresses_has_no_healthy_instance() {
    let a = backend("a").await;
    let dns = TestDns::default();
    dns.set(Some(Vec::new()));
    let resolver = dns.clone();
    let gw = gateway_with(DNS_CONFIG, &[], |builder| builder.resolver(resolver)).await;
    let resp = get(gw.addr, "/lb/x").await;
    assert_error_body(&resp, 503, "/lb/x", Some("lb"));
    let resp = get(gw.addr, "/quiet/x").await;
    assert_error_body(&resp, 404, "/quiet/x", Some("quiet"));
    assert!(instance_uris(&gw).await.is_empty());

    // An address appears: the service serves.
    dns.set(Some(vec![a.addr]));
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = get(gw.addr, "/lb/x").await;
        if resp.status == 200 {
            assert_eq!(served_by(&resp).as_deref(), Some("a"));
            break;
        }
        assert_error_body(&resp, 503, "/lb/x", Some("lb"));
        assert!(
            Instant::now() < deadline,
            "the service never got its instance"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn failing_again_after_an_ejection_ejects_at_once_for_twice_as_long() {
    let base = Duration::from_millis(300);
    let (a, _b, gw) = pair_with_passive_health_max("300ms", "1h").await;
    let client = client();
    a.set(Mode::Status(503));
    fail_three_times(&gw, &client, 503).await;
    // The first ejection ends (nothing is sent meanwhile).
    let deadline = Instant::now() + WAIT;
    while service_instance(gw.admin, "backend", a.addr).await["healthy"] != json!(true) {
        assert!(Instant::now() < deadline, "the first ejection never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Still failing: its next request ejects it again, for twice the base.
    let before = a.requests();
    let sent = loop {
        let sent = Instant::now();
        let resp = Req::get(gw.addr, "/x").send_with(&client).await;
        if a.requests() > before {
            assert_eq!(resp.status, 503);
            break sent;
        }
        assert!(Instant::now() < deadline, "a never got a request again");
    };
    let status = service_instance(gw.admin, "backend", a.addr).await;
    let read = Instant::now();
    let left = status["ejected_for_ms"].as_u64().unwrap();
    assert!(left <= 2 * base.as_millis() as u64, "{status}");
    assert_eq!(
        status["healthy"],
        json!(false),
        "one failure is enough: {status}"
    );
    // The second ejection ends no earlier than `sent` + 600 ms: if the admin API answered
    // within 300 ms of `sent`, more than 300 ms were left.
    if read - sent < base {
        assert!(left > base.as_millis() as u64, "not doubled: {status}");
    }
}

#[tokio::test]
async fn a_dns_instance_that_stays_keeps_its_ejection() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let dns = TestDns::default();
    dns.set(Some(vec![a.addr, b.addr]));
    let resolver = dns.clone();
    let yaml = DNS_CONFIG.replace(
        "    resolve-interval: 20ms\n",
        "    resolve-interval: 20ms\n    health:\n      passive:\n        consecutive-failures: 1\n        base-ejection: 1h\n",
    );
    let gw = gateway_with(&yaml, &[], |builder| builder.resolver(resolver)).await;
    a.set(Mode::Status(503));
    while a.requests() == 0 {
        get(gw.addr, "/lb/x").await;
    }
    a.set(Mode::Ok);
    // c appears; a stays, and stays ejected.
    dns.set(Some(vec![a.addr, b.addr, c.addr]));
    let deadline = Instant::now() + WAIT;
    while instance_uris(&gw).await.len() != 3 {
        assert!(Instant::now() < deadline, "c never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = service_instance(gw.admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(false), "{status}");
    let counts = spread(gw.addr, "/lb/x", 20, 1).await;
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");
    assert_eq!(counts.get("c"), Some(&10), "{counts:?}");
    assert_eq!(a.requests(), 1);
}

/// `a` and `b` behind `lb://backend`, ejected after 2 failures in a row for a minute, with
/// `filter` (a time limit around the forwarder) on the route.
async fn pair_behind_a_time_limit(filter: &str) -> (Backend, Backend, Gw) {
    let (a, b) = (backend("a").await, backend("b").await);
    let yaml = format!(
        r#"
services:
  backend:
    instances:
    - http://${{A}}
    - http://${{B}}
    health:
      passive: {{ consecutive-failures: 2, base-ejection: 1m }}
gateway:
  routes:
  - id: lb
    uri: lb://backend
    filters:
{filter}
"#
    );
    let (sa, sb) = (a.addr.to_string(), b.addr.to_string());
    let gw = gateway(&yaml, None, &[("A", &sa), ("B", &sb)]).await;
    (a, b, gw)
}

/// With `a` too slow for the route's time limit, requests go on until `a` is ejected; then it
/// gets nothing more.
async fn cut_off_attempts_eject(a: Backend, b: Backend, gw: Gw) {
    a.set(Mode::Delay(Duration::from_secs(30)));
    let client = client();
    let mut ejected = false;
    for _ in 0..40 {
        Req::get(gw.addr, "/x").send_with(&client).await;
        let status = service_instance(gw.admin, "backend", a.addr).await;
        if status["healthy"] == json!(false) {
            ejected = true;
            break;
        }
    }
    assert!(
        ejected,
        "attempts cut off by the time limit never ejected a"
    );
    let at_ejection = a.requests();
    assert!(at_ejection >= 2);
    for _ in 0..20 {
        let resp = Req::get(gw.addr, "/x").send_with(&client).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(served_by(&resp).as_deref(), Some("b"));
    }
    assert_eq!(a.requests(), at_ejection, "an ejected instance got traffic");
    assert!(b.requests() >= 20);
}

#[tokio::test]
async fn attempts_cut_off_by_a_retry_timeout_count_as_failures() {
    let (a, b, gw) =
        pair_behind_a_time_limit("    - name: Retry\n      args: { retries: 1, timeout: 150ms }")
            .await;
    cut_off_attempts_eject(a, b, gw).await;
}

#[tokio::test]
async fn calls_cut_off_by_a_breaker_time_limit_count_as_failures() {
    let (a, b, gw) = pair_behind_a_time_limit(
        "    - name: CircuitBreaker\n      args: { name: cb, time-limit: 150ms, minimum-number-of-calls: 1000 }",
    )
    .await;
    cut_off_attempts_eject(a, b, gw).await;
}
