//! `CircuitBreaker`: opening after the threshold, rejecting without touching the upstream,
//! half-open probes, closing again, fallbacks (`forward:` and `http://`) with their
//! `Execution-Exception-*` headers, `status-codes`, `time-limit`, and what the admin API and
//! `/metrics` show.
//!
//! Breakers that must stay open for a whole test wait an hour; the ones that must go half-open
//! wait a fraction of a second, and the test polls the admin API for it.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;

use crate::backend::*;
use crate::support::*;

const OPEN_MESSAGE: &str = "Upstream service is temporarily unavailable";

/// One route `cb` to backend `b` behind a breaker with `args` (YAML lines, indented for the
/// `args:` mapping), plus a `fallback` route to the echo origin at `/fallback`.
fn config(args: &str) -> String {
    format!(
        r#"
gateway:
  routes:
  - id: cb
    uri: http://${{B}}
    predicates:
    - Path=/api/**
    filters:
    - name: CircuitBreaker
      args:
{args}
  - id: fallback
    uri: http://${{ORIGIN}}
    predicates:
    - Path=/fallback
"#
    )
}

async fn start(args: &str) -> (Backend, Origin, Gw) {
    let b = backend("b").await;
    let echo = origin().await;
    let sb = b.addr.to_string();
    let gw = gateway(&config(args), Some(&echo), &[("B", &sb)]).await;
    (b, echo, gw)
}

async fn state(gw: &Gw, name: &str) -> String {
    breaker(gw.admin, name).await["state"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls the admin API until breaker `name` reads `want`.
async fn eventually_state(gw: &Gw, name: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = state(gw, name).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "breaker `{name}` stayed {got}, never {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_open_answer(resp: &Resp, path: &str) {
    assert_error_body(resp, 503, path, Some("cb"));
    assert_eq!(resp.json()["message"], json!(OPEN_MESSAGE));
}

#[tokio::test]
async fn opens_after_the_threshold_and_rejects_without_calling_the_upstream() {
    let (b, _echo, gw) = start(
        "        name: backend
        status-codes: [500]
        sliding-window-size: 4
        minimum-number-of-calls: 4
        failure-rate-threshold: 50
        wait-duration-in-open-state: 1h",
    )
    .await;
    // 2 failures in 4 calls is 50%: judged only once the window holds 4 calls.
    for (i, mode) in [Mode::Status(500), Mode::Ok, Mode::Status(500)]
        .into_iter()
        .enumerate()
    {
        b.set(mode.clone());
        let resp = get(gw.addr, "/api/x").await;
        let want = if mode == Mode::Ok { 200 } else { 500 };
        assert_eq!(resp.status, want, "call {i}: {}", resp.text());
        assert_eq!(state(&gw, "backend").await, "closed", "after call {i}");
    }
    b.set(Mode::Ok);
    assert_eq!(get(gw.addr, "/api/x").await.status, 200);
    assert_eq!(state(&gw, "backend").await, "open");
    assert_eq!(b.requests(), 4);

    // Open: answered by weir, and the upstream sees nothing, one request at a time or many.
    for _ in 0..10 {
        assert_open_answer(&get(gw.addr, "/api/x").await, "/api/x");
    }
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move { get(addr, "/api/y").await }));
    }
    for task in tasks {
        assert_open_answer(&task.await.unwrap(), "/api/y");
    }
    assert_eq!(b.requests(), 4, "an open breaker let a call through");

    let status = breaker(gw.admin, "backend").await;
    assert_eq!(status["state"], json!("open"), "{status}");
    assert_eq!(
        status["calls"],
        json!({"successful": 2, "failed": 2, "slow": 0, "rejected": 20}),
        "{status}"
    );
    assert_eq!(
        status["settings"]["minimum_number_of_calls"],
        json!(4),
        "{status}"
    );
    let m = |outcome: &str| {
        format!("weir_circuit_breaker_calls_total{{name=\"backend\",outcome=\"{outcome}\"}}")
    };
    assert_eq!(
        metric(gw.admin, "weir_circuit_breaker_state{name=\"backend\"}").await,
        Some(1.0)
    );
    assert_eq!(metric(gw.admin, &m("successful")).await, Some(2.0));
    assert_eq!(metric(gw.admin, &m("failed")).await, Some(2.0));
    assert_eq!(metric(gw.admin, &m("rejected")).await, Some(20.0));
}

/// Opens breaker `name` on the `cb` route with two failing calls (window and minimum of 2).
async fn open_with_two_failures(gw: &Gw, b: &Backend, name: &str) {
    b.set(Mode::Status(500));
    for _ in 0..2 {
        assert_eq!(get(gw.addr, "/api/x").await.status, 500);
    }
    assert_eq!(state(gw, name).await, "open");
}

const SHORT_WAIT: &str = "        name: probes
        status-codes: [500]
        sliding-window-size: 2
        minimum-number-of-calls: 2
        wait-duration-in-open-state: 300ms
        permitted-number-of-calls-in-half-open-state: 2";

#[tokio::test]
async fn half_open_lets_exactly_the_permitted_probes_through_and_closes_on_success() {
    let (b, _echo, gw) = start(SHORT_WAIT).await;
    open_with_two_failures(&gw, &b, "probes").await;
    assert_eq!(
        metric(gw.admin, "weir_circuit_breaker_state{name=\"probes\"}").await,
        Some(1.0)
    );
    // The probes will be held by the upstream until the test lets them go.
    b.set(Mode::Hold);
    eventually_state(&gw, "probes", "half_open").await;
    assert_eq!(
        metric(gw.admin, "weir_circuit_breaker_state{name=\"probes\"}").await,
        Some(2.0)
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (addr, tx) = (gw.addr, tx.clone());
        tasks.push(tokio::spawn(async move {
            let resp = get(addr, &format!("/api/{i}")).await;
            let _ = tx.send(resp.status.as_u16());
            resp
        }));
    }
    // Two probes reach the upstream; the three other requests are answered as if open.
    eventually("two probes reach the upstream", || b.requests() == 4).await;
    let mut rejected = 0;
    while rejected < 3 {
        let status = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("the requests beyond the probes are answered at once")
            .unwrap();
        assert_eq!(status, 503, "only the probes may wait for the upstream");
        rejected += 1;
    }
    assert_eq!(b.requests(), 4, "more probes than permitted");
    assert_eq!(state(&gw, "probes").await, "half_open");
    b.release();
    let mut ok = 0;
    for task in tasks {
        let resp = task.await.unwrap();
        if resp.status == 200 {
            ok += 1;
        } else {
            assert_open_answer(&resp, resp.json()["path"].as_str().unwrap());
        }
    }
    assert_eq!(ok, 2);
    // Both probes passed: closed, and calls flow again.
    assert_eq!(state(&gw, "probes").await, "closed");
    for _ in 0..5 {
        assert_eq!(get(gw.addr, "/api/x").await.status, 200);
    }
    assert_eq!(b.requests(), 9);
    assert_eq!(
        metric(gw.admin, "weir_circuit_breaker_state{name=\"probes\"}").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn failing_probes_open_the_breaker_again() {
    let (b, _echo, gw) = start(SHORT_WAIT).await;
    open_with_two_failures(&gw, &b, "probes").await;
    eventually_state(&gw, "probes", "half_open").await;
    // The upstream still fails: the first probe fails, the breaker stays half-open...
    assert_eq!(get(gw.addr, "/api/x").await.status, 500);
    assert_eq!(state(&gw, "probes").await, "half_open");
    // ...and the second failed probe opens it again.
    let sent = Instant::now();
    assert_eq!(get(gw.addr, "/api/x").await.status, 500);
    assert_eq!(b.requests(), 4);
    // The upstream heals, but the breaker does not know: reopened after `sent`, it is open at
    // least until `sent` + 300 ms. (The request that finishes after that may be a probe, and
    // succeeds: so that it cannot reopen the breaker, the upstream is healed first.)
    b.set(Mode::Ok);
    let end = sent + Duration::from_millis(295);
    let mut during = 0;
    loop {
        let resp = get(gw.addr, "/api/x").await;
        if Instant::now() >= end {
            break;
        }
        assert_open_answer(&resp, "/api/x");
        assert_eq!(b.requests(), 4, "a reopened breaker let a call through");
        during += 1;
    }
    assert!(during > 0, "no request finished while the breaker was open");
    // It goes half-open again and, with successful probes, closes.
    let deadline = Instant::now() + WAIT;
    while state(&gw, "probes").await != "closed" {
        let resp = get(gw.addr, "/api/x").await;
        if resp.status != 200 {
            assert_open_answer(&resp, "/api/x");
        }
        assert!(Instant::now() < deadline, "the breaker never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(get(gw.addr, "/api/x").await.status, 200);
}

#[tokio::test]
async fn forward_fallback_gets_the_request_with_the_exception_headers() {
    let (b, _echo, gw) = start(
        "        name: fb
        fallbackUri: forward:/fallback
        status-codes: [500]
        sliding-window-size: 2
        minimum-number-of-calls: 2
        wait-duration-in-open-state: 1h",
    )
    .await;
    b.set(Mode::Status(500));
    // A failed call: the fallback route answers, with why.
    let resp = get(gw.addr, "/api/x?q=1").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.echoed_uri(), "/fallback?q=1");
    assert_eq!(
        resp.echoed("execution-exception-type"),
        vec!["org.springframework.cloud.gateway.support.CircuitBreakerStatusCodeException"]
    );
    assert_eq!(
        resp.echoed("execution-exception-message"),
        vec!["the upstream answered 500"]
    );
    // The body goes to the fallback too.
    let resp = Req::new(Method::POST, gw.addr, "/api/post")
        .body("hello")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["method"], json!("POST"));
    assert_eq!(resp.json()["body"], json!("hello"));
    assert_eq!(b.received()[1].bytes, 5, "the upstream got the body first");
    assert_eq!(state(&gw, "fb").await, "open");
    // Open: straight to the fallback, without touching the upstream.
    let resp = get(gw.addr, "/api/z").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.echoed_uri(), "/fallback");
    assert_eq!(
        resp.echoed("execution-exception-type"),
        vec!["io.github.resilience4j.circuitbreaker.CallNotPermittedException"]
    );
    assert!(resp.echoed("execution-exception-message")[0].contains("`fb` is open"));
    assert_eq!(b.requests(), 2);
}

#[tokio::test]
async fn http_fallback_gets_the_request_with_its_path() {
    let echo = origin().await;
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: down
    uri: http://${REFUSED}
    filters:
    - StripPrefix=1
    - CircuitBreaker=down, http://${ORIGIN}
"#,
        Some(&echo),
        &[],
    )
    .await;
    let resp = Req::new(Method::PUT, gw.addr, "/strip/me?x=1")
        .body("payload")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.echoed_uri(),
        "/me?x=1",
        "the path as the breaker saw it"
    );
    assert_eq!(resp.json()["method"], json!("PUT"));
    assert_eq!(resp.json()["body"], json!("payload"));
    assert_eq!(
        resp.echoed("execution-exception-type"),
        vec!["java.net.ConnectException"]
    );
    assert_eq!(echo.requests(), 1);
}

#[tokio::test]
async fn only_the_listed_status_codes_are_failures() {
    let b = backend("b").await;
    let sb = b.addr.to_string();
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: lenient
    uri: http://${B}
    predicates:
    - Path=/lenient/**
    filters:
    - name: CircuitBreaker
      args:
        sliding-window-size: 4
        minimum-number-of-calls: 4
        wait-duration-in-open-state: 1h
  - id: strict
    uri: http://${B}
    predicates:
    - Path=/strict/**
    filters:
    - name: CircuitBreaker
      args:
        status-codes: [503, INTERNAL_SERVER_ERROR]
        sliding-window-size: 4
        minimum-number-of-calls: 4
        wait-duration-in-open-state: 1h
"#,
        None,
        &[("B", &sb)],
    )
    .await;
    b.set(Mode::Status(500));
    for _ in 0..10 {
        assert_eq!(get(gw.addr, "/lenient/x").await.status, 500);
    }
    let lenient = breaker(gw.admin, "lenient").await;
    assert_eq!(lenient["state"], json!("closed"), "{lenient}");
    assert_eq!(lenient["calls"]["successful"], json!(10), "{lenient}");
    assert_eq!(b.requests(), 10);

    for _ in 0..4 {
        assert_eq!(get(gw.addr, "/strict/x").await.status, 500);
    }
    let strict = breaker(gw.admin, "strict").await;
    assert_eq!(strict["state"], json!("open"), "{strict}");
    assert_eq!(strict["calls"]["failed"], json!(4), "{strict}");
    let resp = get(gw.addr, "/strict/x").await;
    assert_error_body(&resp, 503, "/strict/x", Some("strict"));
    assert_eq!(b.requests(), 14);
}

#[tokio::test]
async fn time_limit_is_a_504_and_a_failure() {
    let (b, _echo, gw) = start(
        "        name: limited
        time-limit: 200ms
        sliding-window-size: 2
        minimum-number-of-calls: 2
        wait-duration-in-open-state: 1h",
    )
    .await;
    b.set(Mode::Delay(Duration::from_secs(30)));
    for i in 0..2 {
        let path = format!("/api/slow{i}");
        let resp = get(gw.addr, &path).await;
        assert_error_body(&resp, 504, &path, Some("cb"));
        let message = resp.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("time limit of 200 ms"), "{message}");
    }
    // Both calls were given up: the upstream saw its requests go away.
    eventually("the upstream sees both calls cancelled", || {
        b.cancelled() == 2
    })
    .await;
    let status = breaker(gw.admin, "limited").await;
    assert_eq!(status["state"], json!("open"), "{status}");
    assert_eq!(status["calls"]["failed"], json!(2), "{status}");
    assert_open_answer(&get(gw.addr, "/api/x").await, "/api/x");
    assert_eq!(b.requests(), 2);
}

#[tokio::test]
async fn routes_naming_the_same_breaker_share_it() {
    let b = backend("b").await;
    let sb = b.addr.to_string();
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: one
    uri: http://${B}
    predicates:
    - Path=/one/**
    filters:
    - name: CircuitBreaker
      args: { name: shared, status-codes: 500, sliding-window-size: 2, minimum-number-of-calls: 2, wait-duration-in-open-state: 1h }
  - id: two
    uri: http://${B}
    predicates:
    - Path=/two/**
    filters:
    - name: CircuitBreaker
      args: { name: shared, status-codes: 500, sliding-window-size: 2, minimum-number-of-calls: 2, wait-duration-in-open-state: 1h }
"#,
        None,
        &[("B", &sb)],
    )
    .await;
    b.set(Mode::Status(500));
    assert_eq!(get(gw.addr, "/one/x").await.status, 500);
    assert_eq!(get(gw.addr, "/two/x").await.status, 500);
    assert_eq!(state(&gw, "shared").await, "open");
    assert_error_body(&get(gw.addr, "/one/x").await, 503, "/one/x", Some("one"));
    assert_error_body(&get(gw.addr, "/two/x").await, 503, "/two/x", Some("two"));
    assert_eq!(b.requests(), 2);
}

#[tokio::test]
async fn a_body_too_large_to_keep_is_streamed_and_the_fallback_gets_the_head() {
    let (b, _echo, gw) = start(
        "        name: big
        fallback-uri: forward:/fallback
        status-codes: [500]
        max-replay-body: 1KiB
        wait-duration-in-open-state: 1h",
    )
    .await;
    b.set(Mode::Status(500));
    let body: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    let resp = Req::new(Method::POST, gw.addr, "/api/upload")
        .body(body.clone())
        .send()
        .await;
    // The upstream got the whole body, once.
    let received = b.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].bytes, body.len());
    assert_eq!(received[0].fnv, fnv(&body));
    // Its failure sends the request's head to the fallback.
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.echoed_uri(), "/fallback");
    assert_eq!(resp.json()["method"], json!("POST"));
    assert_eq!(resp.json()["body"], json!(""));
    assert_eq!(
        resp.echoed("execution-exception-type"),
        vec!["org.springframework.cloud.gateway.support.CircuitBreakerStatusCodeException"]
    );
}

#[tokio::test]
async fn a_probe_whose_client_goes_away_gives_its_place_back() {
    let (b, _echo, gw) = start(
        "        name: one-probe
        status-codes: [500]
        sliding-window-size: 2
        minimum-number-of-calls: 2
        wait-duration-in-open-state: 200ms
        permitted-number-of-calls-in-half-open-state: 1",
    )
    .await;
    open_with_two_failures(&gw, &b, "one-probe").await;
    b.set(Mode::Hold);
    eventually_state(&gw, "one-probe", "half_open").await;
    // The only probe is taken by a client that then hangs up.
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"GET /api/gone HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    eventually("the probe reaches the upstream", || b.requests() == 3).await;
    assert_open_answer(&get(gw.addr, "/api/x").await, "/api/x");
    drop(stream);
    eventually("the upstream sees the probe go away", || b.cancelled() == 1).await;
    // Its place is given back: the next request is the probe, and closes the breaker.
    b.set(Mode::Ok);
    let deadline = Instant::now() + WAIT;
    loop {
        let resp = get(gw.addr, "/api/x").await;
        if resp.status == 200 {
            break;
        }
        assert_open_answer(&resp, "/api/x");
        assert!(
            Instant::now() < deadline,
            "the abandoned probe's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state(&gw, "one-probe").await, "closed");
}

#[tokio::test]
async fn slow_calls_and_a_time_window_open_breakers() {
    let b = backend("b").await;
    let sb = b.addr.to_string();
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: slow
    uri: http://${B}
    predicates:
    - Path=/slow/**
    filters:
    - name: CircuitBreaker
      args:
        slow-call-duration-threshold: 100ms
        slow-call-rate-threshold: 50
        sliding-window-size: 2
        minimum-number-of-calls: 2
        wait-duration-in-open-state: 1h
  - id: timed
    uri: http://${B}
    predicates:
    - Path=/timed/**
    filters:
    - name: CircuitBreaker
      args:
        status-codes: 500
        sliding-window-type: time
        sliding-window-size: 60
        minimum-number-of-calls: 3
        wait-duration-in-open-state: 1h
"#,
        None,
        &[("B", &sb)],
    )
    .await;
    // Slow calls succeed, but half of them slow is enough to open.
    b.set(Mode::Delay(Duration::from_millis(150)));
    for _ in 0..2 {
        assert_eq!(get(gw.addr, "/slow/x").await.status, 200);
    }
    let status = breaker(gw.admin, "slow").await;
    assert_eq!(status["state"], json!("open"), "{status}");
    assert_eq!(status["calls"]["slow"], json!(2), "{status}");
    assert_eq!(
        metric(
            gw.admin,
            "weir_circuit_breaker_calls_total{name=\"slow\",outcome=\"slow\"}"
        )
        .await,
        Some(2.0)
    );
    assert_error_body(&get(gw.addr, "/slow/x").await, 503, "/slow/x", Some("slow"));

    // A time window: three failures within the minute.
    b.set(Mode::Status(500));
    for i in 0..3 {
        assert_eq!(
            breaker(gw.admin, "timed").await["state"],
            json!("closed"),
            "before {i}"
        );
        assert_eq!(get(gw.addr, "/timed/x").await.status, 500);
    }
    let status = breaker(gw.admin, "timed").await;
    assert_eq!(status["state"], json!("open"), "{status}");
    assert_eq!(
        status["settings"]["sliding_window"],
        json!("time 60s"),
        "{status}"
    );
    assert_eq!(b.requests(), 5);
}

#[tokio::test]
async fn each_kind_of_failure_reaches_the_fallback_with_its_exception_type() {
    let (slow, closing) = (backend("slow").await, backend("closing").await);
    let echo = origin().await;
    let (s, c) = (slow.addr.to_string(), closing.addr.to_string());
    let gw = gateway(
        r#"
services:
  gone:
    instances:
    - http://${REFUSED}
    health:
      passive: { consecutive-failures: 1, base-ejection: 1h }
gateway:
  routes:
  - id: slow
    uri: http://${SLOW}
    predicates:
    - Path=/slow
    filters:
    - name: CircuitBreaker
      args: { fallbackUri: "forward:/fallback", time-limit: 200ms }
  - id: closing
    uri: http://${CLOSING}
    predicates:
    - Path=/closing
    filters:
    - CircuitBreaker=closing, forward:/fallback
  - id: gone
    uri: lb://gone
    predicates:
    - Path=/gone
    filters:
    - CircuitBreaker=gone, forward:/fallback
  - id: fallback
    uri: http://${ORIGIN}
    predicates:
    - Path=/fallback
"#,
        Some(&echo),
        &[("SLOW", &s), ("CLOSING", &c)],
    )
    .await;
    slow.set(Mode::Hold);
    closing.cycle(vec![Mode::Close]);
    let cases = [
        ("/slow", "java.util.concurrent.TimeoutException"),
        (
            "/closing",
            "reactor.netty.http.client.PrematureCloseException",
        ),
        // The instance refuses the connection, then is ejected: no instance is left.
        ("/gone", "java.net.ConnectException"),
        ("/gone", "java.net.ConnectException"),
    ];
    for (path, exception) in cases {
        let resp = get(gw.addr, path).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        assert_eq!(resp.echoed_uri(), "/fallback");
        assert_eq!(
            resp.echoed("execution-exception-type"),
            vec![exception],
            "{path}"
        );
    }
    eventually("the timed-out call is cancelled", || slow.cancelled() == 1).await;
    assert_eq!(closing.requests(), 1);
    assert_eq!(breaker(gw.admin, "gone").await["calls"]["failed"], json!(2));
}
