//! `lb://NAME` routes: how the strategies spread requests over a service's instances, what
//! the admin API shows of them, and the answer when no instance is healthy.

use std::collections::HashMap;

use serde_json::json;

use crate::backend::*;
use crate::support::*;

/// The share of `n` requests that `name` served.
fn share(counts: &HashMap<String, usize>, name: &str, n: usize) -> f64 {
    counts.get(name).copied().unwrap_or(0) as f64 / n as f64
}

#[tokio::test]
async fn round_robin_is_even_over_three_instances() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let yaml = r#"
services:
  backend:
    instances:
    - http://${A}
    - http://${B}
    - http://${C}
gateway:
  routes:
  - id: implicit
    uri: lb://backend
    predicates:
    - Path=/implicit/**
  - id: explicit
    uri: lb://backend
    predicates:
    - Path=/explicit/**
    filters:
    - LoadBalancer=round-robin
"#;
    let (sa, sb, sc) = (a.addr.to_string(), b.addr.to_string(), c.addr.to_string());
    let gw = gateway(yaml, None, &[("A", &sa), ("B", &sb), ("C", &sc)]).await;
    // Round-robin is the default, with or without the filter.
    for path in ["/implicit/x", "/explicit/x"] {
        let before = [a.requests(), b.requests(), c.requests()];
        let counts = spread(gw.addr, path, 3_000, 4).await;
        for name in ["a", "b", "c"] {
            let n = counts.get(name).copied().unwrap_or(0);
            assert!(
                (950..=1_050).contains(&n),
                "{path}: `{name}` served {n} of 3,000, not within 5% of 1,000: {counts:?}"
            );
        }
        let after = [a.requests(), b.requests(), c.requests()];
        let seen: usize = after.iter().zip(before).map(|(x, y)| x - y).sum();
        assert_eq!(seen, 3_000, "each request reached exactly one instance");
    }
    let instances = service_instances(gw.admin, "backend").await;
    assert_eq!(instances.len(), 3, "{instances:?}");
    for (instance, addr) in instances.iter().zip([a.addr, b.addr, c.addr]) {
        assert_eq!(instance["uri"], json!(format!("http://{addr}")));
        assert_eq!(instance["healthy"], json!(true));
        assert_eq!(instance["weight"], json!(1));
    }
}

#[tokio::test]
async fn weighted_follows_the_weights() {
    let (light, heavy) = (backend("light").await, backend("heavy").await);
    let yaml = r#"
services:
  backend:
    instances:
    - uri: http://${LIGHT}
      weight: 1
    - uri: http://${HEAVY}
      weight: 3
gateway:
  routes:
  - id: weighted
    uri: lb://backend
    filters:
    - LoadBalancer=weighted
"#;
    let (l, h) = (light.addr.to_string(), heavy.addr.to_string());
    let gw = gateway(yaml, None, &[("LIGHT", &l), ("HEAVY", &h)]).await;
    // 4,000 draws: a share's standard deviation is sqrt(0.25 × 0.75 / 4,000) ≈ 0.7 percentage
    // points, so the 5-point margin is more than 7 deviations wide.
    let n = 4_000;
    let counts = spread(gw.addr, "/w", n, 4).await;
    let (l, h) = (share(&counts, "light", n), share(&counts, "heavy", n));
    assert!(
        (l - 0.25).abs() <= 0.05,
        "light served {l:.3}, not 0.25 ± 0.05: {counts:?}"
    );
    assert!(
        (h - 0.75).abs() <= 0.05,
        "heavy served {h:.3}, not 0.75 ± 0.05: {counts:?}"
    );
    let instances = service_instances(gw.admin, "backend").await;
    assert_eq!(instances[0]["weight"], json!(1), "{instances:?}");
    assert_eq!(instances[1]["weight"], json!(3), "{instances:?}");
}

#[tokio::test]
async fn random_and_least_requests_reach_every_instance() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let yaml = r#"
services:
  backend:
    instances: [ "http://${A}", "http://${B}", "http://${C}" ]
gateway:
  routes:
  - id: random
    uri: lb://backend
    predicates:
    - Path=/random/**
    filters:
    - LoadBalancer=random
  - id: least
    uri: lb://backend
    predicates:
    - Path=/least/**
    filters:
    - name: LoadBalancer
      args:
        strategy: least-requests
"#;
    let (sa, sb, sc) = (a.addr.to_string(), b.addr.to_string(), c.addr.to_string());
    let gw = gateway(yaml, None, &[("A", &sa), ("B", &sb), ("C", &sc)]).await;
    for path in ["/random/x", "/least/x"] {
        // 600 draws, 200 expected each with a deviation of about 11.5: 100 is 8 deviations off.
        let counts = spread(gw.addr, path, 600, 2).await;
        for name in ["a", "b", "c"] {
            let n = counts.get(name).copied().unwrap_or(0);
            assert!(
                n >= 100,
                "{path}: `{name}` served only {n} of 600: {counts:?}"
            );
        }
    }
}

#[tokio::test]
async fn no_healthy_instance_is_a_json_503_or_a_404_with_use404() {
    let yaml = r#"
services:
  down:
    instances:
    - http://${REFUSED}
    health:
      passive:
        consecutive-failures: 1
        base-ejection: 1h
gateway:
  routes:
  - id: plain
    uri: lb://down
    predicates:
    - Path=/plain/**
  - id: quiet
    uri: lb://down
    predicates:
    - Path=/quiet/**
    filters:
    - name: LoadBalancer
      args:
        use404: true
"#;
    let gw = gateway(yaml, None, &[]).await;
    // The one instance refuses connections: a 502, and one failure ejects it.
    let resp = get(gw.addr, "/plain/first").await;
    assert_error_body(&resp, 502, "/plain/first", Some("plain"));
    let instance = service_instance(gw.admin, "down", gw.refused.addr).await;
    assert_eq!(instance["healthy"], json!(false), "{instance}");
    assert!(
        instance["ejected_for_ms"].as_u64().unwrap() > 0,
        "{instance}"
    );

    let resp = get(gw.addr, "/plain/x?q=1").await;
    assert_error_body(&resp, 503, "/plain/x", Some("plain"));
    let message = resp.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("`down`"),
        "the message names the service: {message}"
    );

    let resp = get(gw.addr, "/quiet/y").await;
    assert_error_body(&resp, 404, "/quiet/y", Some("quiet"));
    let resp = Req::new(http::Method::POST, gw.addr, "/quiet/z")
        .body("data")
        .send()
        .await;
    assert_error_body(&resp, 404, "/quiet/z", Some("quiet"));
}

#[tokio::test]
async fn an_ejected_instance_leaves_an_even_spread_over_the_others() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let yaml = r#"
services:
  backend:
    instances: [ "http://${A}", "http://${B}", "http://${C}" ]
    health:
      passive:
        consecutive-failures: 1
        base-ejection: 1h
gateway:
  routes:
  - id: rr
    uri: lb://backend
    predicates:
    - Path=/rr/**
  - id: random
    uri: lb://backend
    predicates:
    - Path=/random/**
    filters:
    - LoadBalancer=random
"#;
    let (sa, sb, sc) = (a.addr.to_string(), b.addr.to_string(), c.addr.to_string());
    let gw = gateway(yaml, None, &[("A", &sa), ("B", &sb), ("C", &sc)]).await;
    a.set(Mode::Status(503));
    while a.requests() == 0 {
        get(gw.addr, "/rr/x").await;
    }
    let status = service_instance(gw.admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(false), "{status}");

    let counts = spread(gw.addr, "/rr/x", 1_000, 2).await;
    for name in ["b", "c"] {
        let n = counts.get(name).copied().unwrap_or(0);
        assert!(
            (475..=525).contains(&n),
            "round-robin: `{name}` served {n} of 1,000 with a ejected: {counts:?}"
        );
    }
    // Random: a share's deviation over 1,000 draws is about 1.6 points; 8 points is 5.
    let counts = spread(gw.addr, "/random/x", 1_000, 2).await;
    for name in ["b", "c"] {
        let s = share(&counts, name, 1_000);
        assert!(
            (s - 0.5).abs() <= 0.08,
            "random: `{name}` served {s:.3} with a ejected: {counts:?}"
        );
    }
    assert_eq!(a.requests(), 1);
}
