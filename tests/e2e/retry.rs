//! `Retry`: flaky upstreams turned into successes, the methods that are (not) retried, bodies
//! replayed intact or, when too large, streamed once, and retries behind `lb://` that go to
//! another instance.

use std::time::Duration;

use http::Method;

use crate::backend::*;
use crate::support::*;

/// One route to backend `b` with a `Retry` filter of `args` (YAML lines for `args:`).
async fn retry_route(args: &str) -> (Backend, Gw) {
    let b = backend("b").await;
    let yaml = format!(
        r#"
gateway:
  routes:
  - id: retried
    uri: http://${{B}}
    filters:
    - name: Retry
      args:
{args}
"#
    );
    let sb = b.addr.to_string();
    let gw = gateway(&yaml, None, &[("B", &sb)]).await;
    (b, gw)
}

#[tokio::test]
async fn a_get_to_a_flaky_upstream_always_succeeds() {
    let (b, gw) = retry_route("        retries: 3").await;
    let client = client();
    // The upstream fails two of every three requests: with 5xx, then by closing the connection.
    for failing in [Mode::Status(500), Mode::Close] {
        let before = b.requests();
        b.cycle(vec![failing.clone(), failing.clone(), Mode::Ok]);
        for i in 0..30 {
            let resp = Req::get(gw.addr, &format!("/flaky/{i}"))
                .send_with(&client)
                .await;
            assert_eq!(
                resp.status,
                200,
                "{failing:?}, request {i}: {}",
                resp.text()
            );
            assert_eq!(resp.json()["uri"], format!("/flaky/{i}"));
        }
        assert_eq!(
            b.requests() - before,
            90,
            "{failing:?}: three attempts each"
        );
    }
}

#[tokio::test]
async fn retries_wait_their_backoff_and_then_succeed() {
    let (b, gw) = retry_route(
        "        retries: 3\n        backoff: { firstBackoff: 5ms, maxBackoff: 20ms, factor: 2 }",
    )
    .await;
    b.cycle(vec![Mode::Status(502), Mode::Status(502), Mode::Ok]);
    for i in 0..5 {
        let started = std::time::Instant::now();
        let resp = get(gw.addr, &format!("/backoff/{i}")).await;
        assert_eq!(resp.status, 200, "request {i}: {}", resp.text());
        // Two retries: 5 ms, then 10 ms, of waiting at the least.
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(15),
            "request {i} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(b.requests(), 15, "three attempts each");
}

#[tokio::test]
async fn retries_run_out_and_the_last_failure_is_answered() {
    let (b, gw) = retry_route("        retries: 2\n        statuses: 503").await;
    b.set(Mode::Status(503));
    let resp = get(gw.addr, "/x").await;
    assert_eq!(resp.status, 503);
    assert_eq!(served_by(&resp).as_deref(), Some("b"));
    assert_eq!(b.requests(), 3, "the first attempt and two retries");
    // A status that is not listed is not retried.
    b.set(Mode::Status(500));
    assert_eq!(get(gw.addr, "/x").await.status, 500);
    assert_eq!(b.requests(), 4);
}

/// The headers an upstream received, sorted (hyper's client and weir's own write them in
/// different orders).
fn sorted(mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers.sort();
    headers
}

#[tokio::test]
async fn every_attempt_sends_the_same_head() {
    let (b, gw) = retry_route("        retries: 3").await;
    // A short head goes out lent to weir's own HTTP/1 client; one over 16 KiB is copied for
    // hyper's client. Either way each attempt sends the same head, with the forwarder's
    // changes made (the list below).
    for long in ["", &"x".repeat(20 * 1024)] {
        b.cycle(vec![Mode::Status(500), Mode::Close, Mode::Ok]);
        let before = b.received().len();
        let raw = format!(
            "GET /same?q=1 HTTP/1.1\r\nHost: client.example:8443\r\n\
             Connection: close, X-Hop\r\nX-Hop: 1\r\nX-Forwarded-For: 203.0.113.9\r\n\
             X-Long: {long}\r\nX-Kept: a\r\nX-Kept: b\r\n\r\n"
        );
        let resp = raw_request(gw.addr, &raw).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let received = b.received();
        let attempts = &received[before..];
        assert_eq!(attempts.len(), 3, "three attempts");
        let first = sorted(attempts[0].headers.clone());
        for attempt in attempts {
            assert_eq!(attempt.uri, "/same?q=1");
            assert_eq!(sorted(attempt.headers.clone()), first);
        }
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let upstream = b.addr.to_string();
        let mut expected = vec![
            pair("host", &upstream),
            pair("x-forwarded-for", "127.0.0.1"),
            pair("x-forwarded-host", "client.example:8443"),
            pair("x-forwarded-port", "8443"),
            pair("x-forwarded-proto", "http"),
            pair("x-kept", "a"),
            pair("x-kept", "b"),
            pair("x-long", long),
        ];
        expected.sort();
        assert_eq!(first, expected, "long head: {}", !long.is_empty());
    }
}

#[tokio::test]
async fn a_post_is_not_retried_by_default() {
    let (b, gw) = retry_route("        retries: 3").await;
    b.set(Mode::Status(503));
    let resp = Req::new(Method::POST, gw.addr, "/orders")
        .body("one order")
        .send()
        .await;
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(b.requests(), 1, "the upstream saw the POST exactly once");
    // Nor when the connection closes before an answer.
    b.cycle(vec![Mode::Close]);
    let resp = Req::new(Method::POST, gw.addr, "/orders")
        .body("one order")
        .send()
        .await;
    assert_error_body(&resp, 502, "/orders", Some("retried"));
    assert_eq!(b.requests(), 2, "the upstream saw the POST exactly once");
    let received = b.received();
    assert!(received
        .iter()
        .all(|r| r.method == Method::POST && r.bytes == 9));
}

#[tokio::test]
async fn a_post_is_retried_when_listed_with_its_body_each_time() {
    let (b, gw) = retry_route("        retries: 3\n        methods: GET, POST").await;
    b.cycle(vec![Mode::Status(500), Mode::Close, Mode::Ok]);
    let body = "{\"order\": 42}";
    let resp = Req::new(Method::POST, gw.addr, "/orders")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["bytes"], body.len());
    let received = b.received();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(r.method, Method::POST);
        assert_eq!((r.bytes, r.fnv), (body.len(), fnv(body.as_bytes())));
    }
}

#[tokio::test]
async fn a_body_larger_than_max_replay_body_is_streamed_once() {
    let (b, gw) =
        retry_route("        retries: 3\n        methods: POST\n        max-replay-body: 1KiB")
            .await;
    b.set(Mode::Status(500));
    // Its length is known: it is never read into memory.
    let body: Vec<u8> = (0..100 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let resp = Req::new(Method::POST, gw.addr, "/upload")
        .body(body.clone())
        .send()
        .await;
    assert_eq!(resp.status, 500, "{}", resp.text());
    let received = b.received();
    assert_eq!(received.len(), 1, "not retried");
    assert_eq!(
        (received[0].bytes, received[0].fnv),
        (body.len(), fnv(&body))
    );

    // Chunked, of unknown length: read up to the cap, then streamed on with what was read.
    let chunk: String = (0..1000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut raw = String::from(
        "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..3 {
        raw.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    raw.push_str("0\r\n\r\n");
    let resp = raw_request(gw.addr, &raw).await;
    assert_eq!(resp.status, 500, "{}", resp.text());
    let received = b.received();
    assert_eq!(received.len(), 2, "not retried");
    let whole = chunk.repeat(3);
    assert_eq!(
        (received[1].bytes, received[1].fnv),
        (whole.len(), fnv(whole.as_bytes()))
    );
}

/// `a` and `b` behind `lb://backend` with random picks (so that only a deliberate choice
/// keeps a retry off the instance that failed), passive health that never ejects, and a
/// route with `retry` as its Retry arguments.
async fn balanced_retry(retry: &str) -> (Backend, Backend, Gw) {
    let (a, b) = (backend("a").await, backend("b").await);
    let yaml = format!(
        r#"
services:
  backend:
    instances:
    - http://${{A}}
    - http://${{B}}
    health:
      passive:
        consecutive-failures: 1000000
gateway:
  routes:
  - id: lb
    uri: lb://backend
    filters:
    - LoadBalancer=random
    - name: Retry
      args:
{retry}
"#
    );
    let (sa, sb) = (a.addr.to_string(), b.addr.to_string());
    let gw = gateway(&yaml, None, &[("A", &sa), ("B", &sb)]).await;
    (a, b, gw)
}

#[tokio::test]
async fn a_retry_behind_lb_goes_to_another_instance() {
    let (a, b, gw) = balanced_retry("        retries: 1").await;
    let client = client();
    // One retry only: the request succeeds every time only if the retry avoids `a`.
    for failing in [Mode::Status(503), Mode::Close] {
        a.set(failing.clone());
        let (a0, b0) = (a.connections() + a.requests(), b.requests());
        for i in 0..100 {
            let resp = Req::get(gw.addr, "/x").send_with(&client).await;
            assert_eq!(
                resp.status,
                200,
                "{failing:?}, request {i}: {}",
                resp.text()
            );
            assert_eq!(served_by(&resp).as_deref(), Some("b"));
        }
        assert_eq!(b.requests() - b0, 100);
        assert!(
            a.connections() + a.requests() > a0,
            "{failing:?}: a was never tried, the test proves nothing"
        );
    }
}

#[tokio::test]
async fn a_retry_after_an_attempt_timeout_behind_lb_goes_to_another_instance() {
    let (a, b, gw) = balanced_retry("        retries: 1\n        timeout: 200ms").await;
    a.set(Mode::Delay(Duration::from_secs(30)));
    let client = client();
    for i in 0..20 {
        let resp = Req::get(gw.addr, "/x").send_with(&client).await;
        assert_eq!(resp.status, 200, "request {i}: {}", resp.text());
        assert_eq!(served_by(&resp).as_deref(), Some("b"));
    }
    assert_eq!(b.requests(), 20);
    assert!(
        a.requests() > 0,
        "a was never tried, the test proves nothing"
    );
    eventually("every attempt a got was cancelled", || {
        a.cancelled() == a.requests()
    })
    .await;
}
