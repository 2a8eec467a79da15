//! Resilience state across reloads of a config file: a breaker stays open and a service keeps
//! its ejections when a reload leaves them unchanged; changed arguments start fresh; a service
//! that a reload changes runs its health checks, and the checks of the one it replaced stop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use weir::{Gateway, RunningGateway};

use crate::backend::*;
use crate::support::*;

async fn start_file(path: &Path) -> RunningGateway {
    Gateway::builder()
        .config_file(path)
        .listen(([127, 0, 0, 1], 0).into())
        .admin_listen(([127, 0, 0, 1], 0).into())
        .env(|_| None)
        .start()
        .await
        .expect("gateway starts")
}

fn config_path(name: &str) -> PathBuf {
    let dir = scratch_file(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join("routes.yaml")
}

/// Writes `text` and waits until `GET /other` answers `marker`, the status that tells this
/// version of the file is the one serving.
async fn rewrite(path: &Path, text: &str, addr: std::net::SocketAddr, marker: u16) {
    std::fs::write(path, text).expect("write config");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = get(addr, "/other").await.status;
        if got == marker {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reload to {marker} never took effect (still {got})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn breaker_config(b: &Backend, threshold: u32, marker: u16) -> String {
    format!(
        r#"
reload:
  debounce: 20ms
gateway:
  routes:
  - id: cb
    uri: {uri}
    predicates:
    - Path=/api/**
    filters:
    - name: CircuitBreaker
      args:
        name: backend
        status-codes: [500]
        sliding-window-size: 2
        minimum-number-of-calls: 2
        failure-rate-threshold: {threshold}
        wait-duration-in-open-state: 1h
  - id: other
    uri: no://op
    predicates:
    - Path=/other
    filters:
    - SetStatus={marker}
"#,
        uri = b.uri()
    )
}

#[tokio::test]
async fn an_open_breaker_stays_open_across_a_reload_unless_its_arguments_change() {
    let b = backend("b").await;
    let path = config_path("breaker-reload");
    std::fs::write(&path, breaker_config(&b, 50, 201)).unwrap();
    let gw = start_file(&path).await;
    let (addr, admin) = (gw.listen_addr(), gw.admin_addr());
    b.set(Mode::Status(500));
    for _ in 0..2 {
        assert_eq!(get(addr, "/api/x").await.status, 500);
    }
    assert_eq!(breaker(admin, "backend").await["state"], json!("open"));

    // Another route changes: the breaker is the same one, still open.
    b.set(Mode::Ok);
    rewrite(&path, &breaker_config(&b, 50, 202), addr, 202).await;
    let resp = get(addr, "/api/x").await;
    assert_error_body(&resp, 503, "/api/x", Some("cb"));
    assert_eq!(b.requests(), 2, "the reloaded breaker let a call through");
    let status = breaker(admin, "backend").await;
    assert_eq!(status["state"], json!("open"), "{status}");
    assert_eq!(status["calls"]["failed"], json!(2), "{status}");
    assert_eq!(
        metric(admin, "weir_circuit_breaker_state{name=\"backend\"}").await,
        Some(1.0)
    );

    // Its own arguments change: a new breaker, closed, and the old one is gone.
    rewrite(&path, &breaker_config(&b, 60, 203), addr, 203).await;
    let resp = get(addr, "/api/x").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(b.requests(), 3);
    let status = breaker(admin, "backend").await;
    assert_eq!(status["state"], json!("closed"), "{status}");
    assert_eq!(
        status["settings"]["failure_rate_threshold"],
        json!(60.0),
        "{status}"
    );
    assert_eq!(
        status["calls"],
        json!({"successful": 1, "failed": 0, "slow": 0, "rejected": 0}),
        "{status}"
    );
    assert_eq!(
        metric(admin, "weir_circuit_breaker_state{name=\"backend\"}").await,
        Some(0.0)
    );
}

fn service_config(a: &Backend, b: &Backend, ejection: &str, active: &str, marker: u16) -> String {
    format!(
        r#"
reload:
  debounce: 20ms
services:
  backend:
    instances:
    - {a}
    - {b}
    health:
      passive:
        consecutive-failures: 1
        base-ejection: {ejection}
{active}
gateway:
  routes:
  - id: lb
    uri: lb://backend
    predicates:
    - Path=/lb/**
  - id: other
    uri: no://op
    predicates:
    - Path=/other
    filters:
    - SetStatus={marker}
"#,
        a = a.uri(),
        b = b.uri()
    )
}

const CHECKS: &str = "      active:
        path: /healthz
        interval: 20ms
        healthy-threshold: 1
        unhealthy-threshold: 1";

#[tokio::test]
async fn an_ejection_survives_a_reload_unless_the_service_changes() {
    let (a, b) = (backend("a").await, backend("b").await);
    let path = config_path("service-reload");
    std::fs::write(&path, service_config(&a, &b, "1h", "", 201)).unwrap();
    let gw = start_file(&path).await;
    let (addr, admin) = (gw.listen_addr(), gw.admin_addr());
    a.set(Mode::Status(503));
    // One failure ejects a.
    let client = client();
    while a.requests() == 0 {
        let resp = Req::get(addr, "/lb/x").send_with(&client).await;
        assert!(resp.status == 200 || resp.status == 503, "{}", resp.text());
    }
    a.set(Mode::Ok);

    rewrite(&path, &service_config(&a, &b, "1h", "", 202), addr, 202).await;
    let status = service_instance(admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(false), "{status}");
    let counts = spread(addr, "/lb/x", 20, 2).await;
    assert_eq!(counts.get("b"), Some(&20), "{counts:?}");
    assert_eq!(a.requests(), 1, "the ejection was lost in the reload");

    // The service's definition changes: a fresh service, every instance healthy.
    rewrite(&path, &service_config(&a, &b, "2h", "", 203), addr, 203).await;
    let status = service_instance(admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(true), "{status}");
    let counts = spread(addr, "/lb/x", 20, 1).await;
    assert_eq!(counts.get("a"), Some(&10), "{counts:?}");
}

#[tokio::test]
async fn health_checks_added_by_a_reload_run_and_stop_when_removed() {
    let (a, b) = (backend("a").await, backend("b").await);
    let path = config_path("checks-reload");
    std::fs::write(&path, service_config(&a, &b, "1h", "", 201)).unwrap();
    let gw = start_file(&path).await;
    let (addr, admin) = (gw.listen_addr(), gw.admin_addr());
    assert_eq!(a.health_checks(), 0);

    // Checks are added: they run, and a failing one takes a out.
    rewrite(&path, &service_config(&a, &b, "1h", CHECKS, 202), addr, 202).await;
    eventually("the new service checks its instances", || {
        a.health_checks() > 0 && b.health_checks() > 0
    })
    .await;
    a.set_health(false);
    let deadline = tokio::time::Instant::now() + WAIT;
    while service_instance(admin, "backend", a.addr).await["active_healthy"] != json!(false) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a was never taken out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counts = spread(addr, "/lb/x", 10, 1).await;
    assert_eq!(counts.get("b"), Some(&10), "{counts:?}");

    // Checks are removed: a serves again, and the old service's checks stop. b's checks by a
    // second service, at the same pace, are the clock: ten of them and a gets none (one may
    // have been under way at the swap).
    rewrite(&path, &service_config(&a, &b, "1h", "", 203), addr, 203).await;
    let counts = spread(addr, "/lb/x", 10, 1).await;
    assert_eq!(counts.get("a"), Some(&5), "{counts:?}");
    let after = a.health_checks();
    let text = service_config(&a, &b, "1h", "", 204).replace(
        "gateway:",
        &format!(
            "  clock:\n    instances:\n    - {}\n    health:\n{CHECKS}\ngateway:",
            b.uri()
        ),
    );
    rewrite(&path, &text, addr, 204).await;
    let start = b.health_checks();
    eventually("the clock service checks b ten times", || {
        b.health_checks() >= start + 10
    })
    .await;
    assert!(
        a.health_checks() <= after + 1,
        "the replaced service kept checking: {} checks after {after}",
        a.health_checks()
    );
}
