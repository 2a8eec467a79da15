//! Upstreams that fail on command, for the resilience tests: a [`Backend`] is an HTTP server
//! on 127.0.0.1:0 whose behaviour the test switches at run time, and which counts what it
//! received.
//!
//! Every request except `GET /healthz` is handled by the current [`Mode`] (or by the cycle set
//! with [`Backend::cycle`]) after its body has been read whole; `GET /healthz` answers 200 or
//! 503 as set by [`Backend::set_health`], and is counted apart, so that active health checks
//! never disturb the request counts. An answer is JSON naming the instance:
//! `{"instance", "method", "uri", "bytes", "fnv", "headers"}`, with an `X-Instance` header.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::support::{Resp, WAIT};

/// What a backend does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// 200, naming the instance.
    Ok,
    /// This status, naming the instance.
    Status(u16),
    /// Waits this long, then 200.
    Delay(Duration),
    /// Waits until [`Backend::release`], then 200.
    Hold,
    /// Closes the connection without answering (after reading the request), and closes every
    /// new connection as soon as it is accepted.
    Close,
}

/// The health check path.
pub const HEALTH: &str = "/healthz";

/// What one request brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its method.
    pub method: Method,
    /// Its path and query.
    pub uri: String,
    /// Its body's length.
    pub bytes: usize,
    /// FNV-1a of its body.
    pub fnv: u64,
    /// Its headers, in the order received, names lower-case.
    pub headers: Vec<(String, String)>,
}

struct State {
    name: String,
    mode: Mutex<Mode>,
    cycle: Mutex<Vec<Mode>>,
    healthy: Mutex<bool>,
    released: watch::Sender<u64>,
    connections: AtomicUsize,
    open: AtomicUsize,
    close_all: watch::Sender<u64>,
    requests: AtomicUsize,
    health_checks: AtomicUsize,
    failed_checks: AtomicUsize,
    passed_checks: AtomicUsize,
    finished: AtomicUsize,
    cancelled: AtomicUsize,
    received: Mutex<Vec<Received>>,
}

/// A controllable upstream. It serves until the test's runtime ends.
#[derive(Clone)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
}

/// FNV-1a, 64 bits: enough to tell a body arrived intact.
pub fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Starts a backend called `name` that answers 200.
pub async fn backend(name: &str) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind backend");
    let addr = listener.local_addr().expect("backend address");
    let state = Arc::new(State {
        name: name.to_string(),
        mode: Mutex::new(Mode::Ok),
        cycle: Mutex::new(Vec::new()),
        healthy: Mutex::new(true),
        released: watch::channel(0).0,
        connections: AtomicUsize::new(0),
        open: AtomicUsize::new(0),
        close_all: watch::channel(0).0,
        requests: AtomicUsize::new(0),
        health_checks: AtomicUsize::new(0),
        failed_checks: AtomicUsize::new(0),
        passed_checks: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        cancelled: AtomicUsize::new(0),
        received: Mutex::new(Vec::new()),
    });
    let shared = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            if *shared.mode.lock().unwrap() == Mode::Close
                && shared.cycle.lock().unwrap().is_empty()
            {
                drop(stream);
                continue;
            }
            let state = shared.clone();
            let mut close_all = shared.close_all.subscribe();
            shared.open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let counts = state.clone();
                let service = service_fn(move |request| {
                    let state = state.clone();
                    async move { state.handle(request).await }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(connection);
                tokio::select! {
                    _ = connection.as_mut() => {}
                    _ = close_all.changed() => {
                        connection.as_mut().graceful_shutdown();
                        let _ = connection.await;
                    }
                }
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    Backend { addr, state }
}

/// Counts a request as cancelled if its handler is dropped before it answers.
struct Unfinished<'a>(&'a State, bool);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        let counter = if self.1 {
            &self.0.finished
        } else {
            &self.0.cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// The error a handler returns to make hyper close the connection without an answer.
#[derive(Debug)]
struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closing the connection on command")
    }
}

impl std::error::Error for CloseConnection {}

impl State {
    async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, CloseConnection> {
        if request.method() == Method::GET && request.uri().path() == HEALTH {
            self.health_checks.fetch_add(1, Ordering::SeqCst);
            let healthy = *self.healthy.lock().unwrap();
            let counter = if healthy {
                &self.passed_checks
            } else {
                &self.failed_checks
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let status = if healthy { 200 } else { 503 };
            return Ok(self.answer(status, &Method::GET, HEALTH, &[], &Default::default()));
        }
        let seq = self.requests.fetch_add(1, Ordering::SeqCst);
        let mode = {
            let cycle = self.cycle.lock().unwrap();
            if cycle.is_empty() {
                self.mode.lock().unwrap().clone()
            } else {
                cycle[seq % cycle.len()].clone()
            }
        };
        let mut guard = Unfinished(self, false);
        let (parts, body) = request.into_parts();
        let uri = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_default();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return Err(CloseConnection),
        };
        self.received.lock().unwrap().push(Received {
            method: parts.method.clone(),
            uri: uri.clone(),
            bytes: body.len(),
            fnv: fnv(&body),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    (n.as_str().to_string(), value)
                })
                .collect(),
        });
        let status = match mode {
            Mode::Ok => 200,
            Mode::Status(code) => code,
            Mode::Delay(d) => {
                tokio::time::sleep(d).await;
                200
            }
            Mode::Hold => {
                let mut released = self.released.subscribe();
                let _ = released.changed().await;
                200
            }
            Mode::Close => {
                guard.1 = true;
                return Err(CloseConnection);
            }
        };
        guard.1 = true;
        Ok(self.answer(status, &parts.method, &uri, &body, &parts.headers))
    }

    fn answer(
        &self,
        status: u16,
        method: &Method,
        uri: &str,
        body: &[u8],
        headers: &http::HeaderMap,
    ) -> Response<Full<Bytes>> {
        let mut echoed: HashMap<String, String> = HashMap::new();
        for (name, value) in headers {
            echoed.insert(
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            );
        }
        let value = json!({
            "instance": self.name,
            "method": method.as_str(),
            "uri": uri,
            "bytes": body.len(),
            "fnv": fnv(body),
            "headers": echoed,
        });
        let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
        *response.status_mut() = StatusCode::from_u16(status).expect("a valid status");
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-instance",
            HeaderValue::from_str(&self.name).expect("a header-safe name"),
        );
        response
    }
}

impl Backend {
    /// Its name, as its answers give it.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// `http://ADDR`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches what it does with every request from now on (and clears a cycle).
    pub fn set(&self, mode: Mode) {
        self.state.cycle.lock().unwrap().clear();
        *self.state.mode.lock().unwrap() = mode;
    }

    /// From the next request on, requests are handled by `modes` in turn, round and round,
    /// until [`Backend::set`].
    pub fn cycle(&self, modes: Vec<Mode>) {
        assert!(!modes.is_empty());
        let start = self.requests();
        // Requests pick `cycle[seq % n]` by their sequence number: rotate so that the next
        // one gets modes[0].
        let n = modes.len();
        let rotated: Vec<Mode> = (0..n)
            .map(|i| modes[(i + n - start % n) % n].clone())
            .collect();
        *self.state.cycle.lock().unwrap() = rotated;
    }

    /// Makes `GET /healthz` answer 200 (`true`) or 503.
    pub fn set_health(&self, healthy: bool) {
        *self.state.healthy.lock().unwrap() = healthy;
    }

    /// Lets every held request answer, and answers 200 from now on.
    pub fn release(&self) {
        self.set(Mode::Ok);
        self.state.released.send_modify(|n| *n += 1);
    }

    /// Connections accepted (including those closed at once in [`Mode::Close`]).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Closes every open connection once its request in progress, if any, is answered (an idle
    /// keep-alive connection closes at once).
    pub fn close_connections(&self) {
        self.state.close_all.send_modify(|n| *n += 1);
    }

    /// Requests received (health checks apart), counted when their head is read.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Health checks received.
    pub fn health_checks(&self) -> usize {
        self.state.health_checks.load(Ordering::SeqCst)
    }

    /// Health checks answered 503.
    pub fn failed_checks(&self) -> usize {
        self.state.failed_checks.load(Ordering::SeqCst)
    }

    /// Health checks answered 200.
    pub fn passed_checks(&self) -> usize {
        self.state.passed_checks.load(Ordering::SeqCst)
    }

    /// Requests whose handler ran to its answer (or to its deliberate close).
    pub fn finished(&self) -> usize {
        self.state.finished.load(Ordering::SeqCst)
    }

    /// Requests abandoned before the answer because the connection went away.
    pub fn cancelled(&self) -> usize {
        self.state.cancelled.load(Ordering::SeqCst)
    }

    /// Every request that arrived with its whole body, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

/// The instance that answered `resp` (from its `X-Instance` header), if a backend did.
pub fn served_by(resp: &Resp) -> Option<String> {
    resp.header("x-instance")
}

/// Polls `check` every 10 ms until it holds; panics with `what` after [`WAIT`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The parsed JSON body of a backend's answer.
pub fn answer_of(resp: &Resp) -> Value {
    resp.json()
}

/// Sends `n` GETs of `path` to `addr` from `workers` concurrent keep-alive clients and counts
/// the answers by the instance that served them. Every answer must be a 200 from a backend.
pub async fn spread(
    addr: SocketAddr,
    path: &str,
    n: usize,
    workers: usize,
) -> HashMap<String, usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let next = next.clone();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let client = crate::support::client();
            let mut counts: HashMap<String, usize> = HashMap::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let resp = crate::support::Req::get(addr, &path)
                    .send_with(&client)
                    .await;
                assert_eq!(resp.status, 200, "{}", resp.text());
                let by = served_by(&resp)
                    .unwrap_or_else(|| panic!("not from a backend: {}", resp.text()));
                *counts.entry(by).or_default() += 1;
            }
            counts
        }));
    }
    let mut total: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for (k, v) in task.await.expect("a client task") {
            *total.entry(k).or_default() += v;
        }
    }
    total
}
