//! Timeouts: connect and response timeouts (global and per route, fixed and `lb://`
//! upstreams) and Retry's per-attempt timeout answer 504, and the timed-out upstream request
//! is cancelled: the upstream sees the request go away before it could answer.

use std::net::SocketAddr;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};

use crate::backend::*;
use crate::support::*;

/// A listening address that never completes a TCP handshake: its accept queue is full and
/// nobody accepts, so the kernel drops further connection attempts and they hang.
struct Unaccepting {
    _listener: tokio::net::TcpListener,
    _fillers: Vec<TcpStream>,
    addr: SocketAddr,
}

async fn unaccepting() -> Unaccepting {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("address");
    // Fill the queue until a connection attempt hangs: that proves the next one will too.
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(e)) => panic!("connecting to fill the queue failed: {e}"),
            Err(_) => {
                return Unaccepting {
                    _listener: listener,
                    _fillers: fillers,
                    addr,
                }
            }
        }
    }
    panic!("the accept queue never filled");
}

#[tokio::test]
async fn route_response_timeout_is_a_504_and_cancels_the_upstream_request() {
    let b = backend("b").await;
    let sb = b.addr.to_string();
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: slow
    uri: http://${B}
    metadata:
      response-timeout: 200
"#,
        None,
        &[("B", &sb)],
    )
    .await;
    b.set(Mode::Hold);
    let resp = get(gw.addr, "/slow").await;
    assert_error_body(&resp, 504, "/slow", Some("slow"));
    assert!(resp.json()["message"].as_str().unwrap().contains("200 ms"));
    eventually("the upstream sees the request go away", || {
        b.cancelled() == 1
    })
    .await;
    assert_eq!(b.finished(), 0);
    // The held request can no longer answer anyone; new requests are served.
    b.release();
    assert_eq!(get(gw.addr, "/fast").await.status, 200);
    assert_eq!(b.cancelled(), 1);
}

#[tokio::test]
async fn global_response_timeout_applies_to_lb_routes_and_is_a_failure() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (sa, sb) = (a.addr.to_string(), b.addr.to_string());
    let gw = gateway(
        r#"
gateway:
  httpclient:
    response-timeout: 200ms
  routes:
  - id: lb
    uri: lb://backend
services:
  backend:
    instances: [ "http://${A}", "http://${B}" ]
    health:
      passive: { consecutive-failures: 1, base-ejection: 1h }
"#,
        None,
        &[("A", &sa), ("B", &sb)],
    )
    .await;
    a.set(Mode::Delay(Duration::from_secs(30)));
    let mut timed_out = 0;
    for _ in 0..4 {
        let resp = get(gw.addr, "/x").await;
        if resp.status == 504 {
            assert_error_body(&resp, 504, "/x", Some("lb"));
            timed_out += 1;
        } else {
            assert_eq!(served_by(&resp).as_deref(), Some("b"));
        }
    }
    // Round-robin sent one of the first two requests to a; its timeout ejected it.
    assert_eq!(timed_out, 1);
    assert_eq!(a.requests(), 1);
    let status = service_instance(gw.admin, "backend", a.addr).await;
    assert_eq!(status["healthy"], json!(false), "{status}");
    eventually("the upstream sees the request go away", || {
        a.cancelled() == 1
    })
    .await;
}

#[tokio::test]
async fn connect_timeouts_are_504() {
    let nowhere = unaccepting().await;
    let target = nowhere.addr.to_string();
    let gw = gateway(
        r#"
gateway:
  httpclient:
    connect-timeout: 200
  routes:
  - id: global
    uri: http://${TARGET}
    predicates:
    - Path=/global/**
  - id: own
    uri: http://${TARGET}
    predicates:
    - Path=/own/**
    metadata:
      connect-timeout: 150
  - id: balanced
    uri: lb://hanging
    predicates:
    - Path=/balanced/**
services:
  hanging:
    instances:
    - http://${TARGET}
"#,
        None,
        &[("TARGET", &target)],
    )
    .await;
    for (path, route) in [
        ("/global/x", "global"),
        ("/own/x", "own"),
        ("/balanced/x", "balanced"),
    ] {
        let resp = get(gw.addr, path).await;
        assert_error_body(&resp, 504, path, Some(route));
        let message = resp.json()["message"].as_str().unwrap().to_string();
        assert_eq!(message, "connecting to the upstream timed out");
    }
}

#[tokio::test]
async fn retry_timeout_cancels_each_attempt_and_retries_it() {
    let b = backend("b").await;
    let sb = b.addr.to_string();
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: retried
    uri: http://${B}
    predicates:
    - Path=/retried/**
    filters:
    - name: Retry
      args:
        retries: 2
        timeout: 200ms
  - id: connect-only
    uri: http://${B}
    predicates:
    - Path=/connect-only/**
    filters:
    - name: Retry
      args:
        retries: 2
        timeout: 200ms
        exceptions: connect
"#,
        None,
        &[("B", &sb)],
    )
    .await;
    b.set(Mode::Hold);
    let resp = get(gw.addr, "/retried/x").await;
    assert_error_body(&resp, 504, "/retried/x", Some("retried"));
    assert!(resp.json()["message"].as_str().unwrap().contains("200 ms"));
    assert_eq!(b.requests(), 3, "the attempt and two retries");
    eventually("the upstream sees every attempt go away", || {
        b.cancelled() == 3
    })
    .await;
    // A timeout is retried only when `timeout` is among the exceptions.
    let resp = get(gw.addr, "/connect-only/x").await;
    assert_error_body(&resp, 504, "/connect-only/x", Some("connect-only"));
    assert_eq!(b.requests(), 4);
    eventually("the upstream sees the attempt go away", || {
        b.cancelled() == 4
    })
    .await;
    // A retry that gets an answer in time succeeds.
    b.cycle(vec![Mode::Hold, Mode::Ok]);
    let resp = get(gw.addr, "/retried/y").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(b.requests(), 6);
    b.release();
}

/// One route to the origin, with `setting` under `server:`.
fn with_server_setting(setting: &str) -> String {
    format!("server:\n  {setting}\ngateway:\n  routes:\n  - id: all\n    uri: http://${{ORIGIN}}\n")
}

const WRITE_TIMEOUT: &str = "write-timeout: 400ms";

#[tokio::test]
async fn write_timeout_answers_504_when_the_response_head_is_late() {
    let (origin, gw) = origin_and_gateway(&with_server_setting(WRITE_TIMEOUT)).await;
    let resp = get(gw.addr, "/delay/3000").await;
    assert_error_body(&resp, 504, "/delay/3000", Some("all"));
    assert_eq!(origin.requests(), 1);
    // A quick answer is untouched.
    assert_eq!(get(gw.addr, "/fast").await.status, StatusCode::OK);
}

#[tokio::test]
async fn write_timeout_cuts_off_a_body_still_being_written() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_origin, gw) = origin_and_gateway(&with_server_setting(WRITE_TIMEOUT)).await;
    const TOTAL: usize = 200 * 1024 * 1024;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(format!("GET /bytes/{TOTAL} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // A client that stops reading: the body backs up until the deadline passes.
    let mut head = [0u8; 1024];
    let n = stream.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut received = n;
    let mut buf = vec![0u8; 1 << 20];
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection was closed");
    assert!(
        received < TOTAL,
        "the body was cut off: {received} of {TOTAL} bytes arrived"
    );
}

#[tokio::test]
async fn read_timeout_spares_a_request_in_progress_and_closes_the_idle_connection_after() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_origin, gw) = origin_and_gateway(&with_server_setting("read-timeout: 300ms")).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    // The upstream takes three read timeouts to answer: the connection is busy with a request
    // all that time, not waiting for a head.
    stream
        .write_all(b"GET /delay/900 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("the response arrives")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Then no next head comes: the connection is closed once the read timeout has passed
    // since the response ended, and not before.
    let idle = std::time::Instant::now();
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection is closed");
    assert!(
        idle.elapsed() >= Duration::from_millis(250),
        "closed {:?} after the response, before the read timeout",
        idle.elapsed()
    );
}

#[tokio::test]
async fn read_timeout_sends_an_idle_http2_connection_away_then_drops_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_origin, gw) = origin_and_gateway(&with_server_setting("read-timeout: 200ms")).await;
    let mut h2 = TcpStream::connect(gw.addr).await.unwrap();
    // The prior-knowledge preface and an empty SETTINGS frame: an HTTP/2 connection opened
    // ahead of a first request that never comes.
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    // Idle for the limit: GOAWAY (with a PING this client never answers); another limit
    // later, the connection is dropped.
    let mut frames = Vec::new();
    tokio::time::timeout(WAIT, h2.read_to_end(&mut frames))
        .await
        .expect("the idle HTTP/2 connection ends within the bound")
        .ok();
    let mut types = Vec::new();
    let mut at = 0;
    while at + 9 <= frames.len() {
        let length = u32::from_be_bytes([0, frames[at], frames[at + 1], frames[at + 2]]) as usize;
        types.push(frames[at + 3]);
        at += 9 + length;
    }
    const GOAWAY: u8 = 0x7;
    assert!(types.contains(&GOAWAY), "frame types {types:?}");
}
