//! Async invocations: `queue:` routes, the embedded queue and NATS JetStream, the worker's
//! retries and callbacks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::backend::{backend, eventually, Backend, Mode};
use crate::support::*;

/// One callback as it arrived.
#[derive(Debug, Clone)]
struct Callback {
    headers: HashMap<String, String>,
    body: Bytes,
}

/// A server that records every callback it receives.
#[derive(Clone)]
struct Collector {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Callback>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls: Arc<Mutex<Vec<Callback>>> = Arc::default();
        let sink = calls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let sink = sink.clone();
                        async move {
                            let headers = request
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            sink.lock().unwrap().push(Callback { headers, body });
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, calls }
    }

    fn calls(&self) -> Vec<Callback> {
        self.calls.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        format!("http://{}/done", self.addr)
    }
}

/// A config with the OpenFaaS async route in front of `provider`, using `queue_settings`
/// (YAML lines under `async:`).
fn config(provider: SocketAddr, queue_settings: &str) -> String {
    format!(
        r#"
async:
  provider: http://{provider}/
{queue_settings}
gateway:
  routes:
    - id: async-function
      uri: "queue:"
      predicates:
        - Path=/async-function/{{name}},/async-function/{{name}}/**
        - Method=POST
"#
    )
}

const FAST_WORKER: &str =
    "  worker: { max-inflight: 8, initial-backoff: 5ms, max-backoff: 20ms, callback-retries: 2 }";

async fn wait_for_queue(gw: &Gw) {
    // The queue opens in the background. A probe with an invalid callback URL is refused with
    // 400 once the queue is open (503 before), and queues nothing.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = Req::new(Method::POST, gw.addr, "/async-function/probe")
            .header("X-Callback-Url", "not-a-url")
            .send()
            .await;
        if resp.status == 400 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue never opened: {}",
            resp.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn send_many(gw: &Gw, collector: &Collector, n: usize) -> Vec<String> {
    let client = client();
    let mut ids = Vec::new();
    for i in 0..n {
        let resp = Req::new(
            Method::POST,
            gw.addr,
            &format!("/async-function/echo/p{i}?q={i}"),
        )
        .header("X-Callback-Url", &collector.url())
        .body(format!("body-{i}"))
        .send_with(&client)
        .await;
        assert_eq!(resp.status, 202, "{}", resp.text());
        ids.push(resp.header("x-call-id").expect("a call id"));
    }
    ids
}

fn assert_each_called_back(collector: &Collector, ids: &[String], exactly_once: bool) {
    let calls = collector.calls();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for call in &calls {
        *seen
            .entry(call.headers.get("x-call-id").map_or("", String::as_str))
            .or_default() += 1;
    }
    for id in ids {
        let n = seen.get(id.as_str()).copied().unwrap_or(0);
        assert!(n >= 1, "no callback for {id}");
        if exactly_once {
            assert_eq!(n, 1, "{id} was called back {n} times");
        }
    }
}

#[tokio::test]
async fn a_thousand_async_requests_all_run_and_call_back_once_embedded() {
    let provider = backend("fn").await;
    let collector = Collector::start().await;
    let gw = gateway(&config(provider.addr, FAST_WORKER), None, &[]).await;
    wait_for_queue(&gw).await;
    let ids = send_many(&gw, &collector, 1000).await;
    eventually("1000 callbacks", || collector.calls().len() >= 1000).await;
    assert_each_called_back(&collector, &ids, true);
    // The function received the path after its name, the query and the body.
    let call = collector
        .calls()
        .into_iter()
        .find(|c| c.headers.get("x-call-id") == Some(&ids[7]))
        .unwrap();
    assert_eq!(
        call.headers.get("x-function-status").map(String::as_str),
        Some("200")
    );
    assert_eq!(
        call.headers.get("x-function-name").map(String::as_str),
        Some("echo")
    );
    assert!(call.headers.contains_key("x-duration-seconds"));
    let answer: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(answer["uri"], "/function/echo/p7?q=7");
    assert_eq!(answer["method"], "POST");
    assert_eq!(answer["bytes"], 6);
}

#[tokio::test]
async fn a_function_that_fails_twice_is_retried_and_succeeds() {
    let provider = backend("fn").await;
    provider.cycle(vec![Mode::Status(503), Mode::Status(502), Mode::Ok]);
    let collector = Collector::start().await;
    let gw = gateway(
        &config(
            provider.addr,
            "  worker: { max-inflight: 1, initial-backoff: 5ms, max-backoff: 20ms }",
        ),
        None,
        &[],
    )
    .await;
    wait_for_queue(&gw).await;
    let before = provider.requests();
    let ids = send_many(&gw, &collector, 1).await;
    eventually("the callback", || {
        collector
            .calls()
            .iter()
            .any(|c| c.headers.get("x-call-id") == Some(&ids[0]))
    })
    .await;
    let call = collector
        .calls()
        .into_iter()
        .find(|c| c.headers.get("x-call-id") == Some(&ids[0]))
        .unwrap();
    assert_eq!(
        call.headers.get("x-function-status").map(String::as_str),
        Some("200")
    );
    assert_eq!(
        provider.requests() - before,
        3,
        "two failures, then the success"
    );
}

#[tokio::test]
async fn a_function_that_never_succeeds_gets_one_final_callback() {
    let provider = backend("fn").await;
    provider.set(Mode::Status(503));
    let collector = Collector::start().await;
    let settings = "  worker: { max-retry-attempts: 3, initial-backoff: 5ms, max-backoff: 10ms }";
    let gw = gateway(&config(provider.addr, settings), None, &[]).await;
    wait_for_queue(&gw).await;
    let before = provider.requests();
    let ids = send_many(&gw, &collector, 1).await;
    eventually("the callback", || {
        collector
            .calls()
            .iter()
            .any(|c| c.headers.get("x-call-id") == Some(&ids[0]))
    })
    .await;
    let calls: Vec<_> = collector
        .calls()
        .into_iter()
        .filter(|c| c.headers.get("x-call-id") == Some(&ids[0]))
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0]
            .headers
            .get("x-function-status")
            .map(String::as_str),
        Some("503")
    );
    assert_eq!(
        provider.requests() - before,
        3,
        "max-retry-attempts attempts"
    );
    let metrics = Req::get(gw.admin, "/metrics").send().await.text();
    assert!(metrics.contains("weir_async_retried_total "), "{metrics}");
}

#[tokio::test]
async fn a_full_embedded_queue_answers_429() {
    let provider = backend("fn").await;
    let gw = gateway(
        &config(provider.addr, "  capacity: 2\n  worker: { enabled: false }"),
        None,
        &[],
    )
    .await;
    wait_for_queue(&gw).await;
    for _ in 0..2 {
        let accepted = Req::new(Method::POST, gw.addr, "/async-function/echo")
            .send()
            .await;
        assert_eq!(accepted.status, 202);
    }
    let full = Req::new(Method::POST, gw.addr, "/async-function/echo")
        .send()
        .await;
    assert_eq!(full.status, 429, "{}", full.text());
    assert_eq!(full.header("retry-after").as_deref(), Some("1"));
    assert_eq!(full.json()["status"], 429);
}

#[tokio::test]
async fn bad_callback_urls_and_oversize_bodies_are_refused() {
    let provider = backend("fn").await;
    let gw = gateway(
        &config(
            provider.addr,
            "  max-body: 1KiB\n  worker: { enabled: false }",
        ),
        None,
        &[],
    )
    .await;
    wait_for_queue(&gw).await;
    for bad in ["not a url", "/relative/path", "ftp://x/y", "http://"] {
        let resp = Req::new(Method::POST, gw.addr, "/async-function/echo")
            .header("X-Callback-Url", bad)
            .send()
            .await;
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text());
    }
    let resp = Req::new(Method::POST, gw.addr, "/async-function/echo")
        .body(vec![b'x'; 2048])
        .send()
        .await;
    assert_eq!(resp.status, 413, "{}", resp.text());
    let resp = Req::new(Method::POST, gw.addr, "/async-function/echo")
        .body(vec![b'x'; 1024])
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
}

#[tokio::test]
async fn a_queue_route_without_a_name_variable_is_a_config_error() {
    let err = try_gateway("gateway:\n  routes:\n    - id: q\n      uri: \"queue:\"\n      predicates: [Path=/async/**]\n", None, &[])
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("needs a `{name}` path variable"),
        "{err}"
    );
}

/// A nats-server with JetStream on a free loopback port, stopped when dropped.
struct Nats {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Nats {
    /// Starts nats-server, or returns `None` (with a loud message) when it is not installed
    /// outside CI. In CI (`CI=true`) a missing nats-server is a failure.
    fn start() -> Option<Self> {
        let found = Command::new("nats-server")
            .arg("--version")
            .output()
            .is_ok();
        if !found {
            assert!(
                std::env::var("CI").is_err(),
                "nats-server is required in CI (.ci/run installs it)"
            );
            eprintln!("\n!!! SKIPPED: nats-server is not installed; NATS JetStream tests did not run !!!\n");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = scratch_file("jetstream");
        let mut nats = Self {
            child: None,
            port,
            dir,
        };
        nats.spawn();
        Some(nats)
    }

    fn spawn(&mut self) {
        self.spawn_with(true);
    }

    /// Starts the server on its port, with or without JetStream.
    fn spawn_with(&mut self, jetstream: bool) {
        let mut command = Command::new("nats-server");
        if jetstream {
            command.arg("-js").arg("-sd").arg(&self.dir);
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        // Bounded wait until it accepts connections.
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nats_settings(nats: &Nats, extra: &str) -> String {
    format!(
        "  queue: nats\n  nats: {{ url: \"{}\", ack-wait: 5s, max-deliver: 20 }}\n{extra}",
        nats.url()
    )
}

/// A function backend, a callback collector, and a gateway queueing to `nats` with a fast
/// worker.
async fn nats_gateway(nats: &Nats) -> (Backend, Collector, Gw) {
    let provider = backend("fn").await;
    let collector = Collector::start().await;
    let gw = gateway(
        &config(provider.addr, &nats_settings(nats, FAST_WORKER)),
        None,
        &[],
    )
    .await;
    (provider, collector, gw)
}

#[tokio::test]
async fn a_queue_that_cannot_open_its_stream_yet_tries_again() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    // The same port, served by a nats-server without JetStream: the gateway connects, and its
    // requests to open the stream get no answer from JetStream, as while a server starts.
    nats.stop();
    nats.spawn_with(false);
    let (_provider, collector, gw) = nats_gateway(&nats).await;
    // Long enough for the first attempts to fail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe = Req::new(Method::POST, gw.addr, "/async-function/probe")
        .header("X-Callback-Url", "not-a-url")
        .send()
        .await;
    assert_eq!(probe.status, 503, "{}", probe.text());
    // JetStream arrives: the queue opens without a restart and serves.
    nats.stop();
    nats.spawn_with(true);
    wait_for_queue(&gw).await;
    let ids = send_many(&gw, &collector, 3).await;
    eventually("3 callbacks", || collector.calls().len() >= 3).await;
    assert_each_called_back(&collector, &ids, true);
}

#[tokio::test]
async fn a_thousand_async_requests_all_run_and_call_back_once_nats() {
    let Some(nats) = Nats::start() else { return };
    let (_provider, collector, gw) = nats_gateway(&nats).await;
    wait_for_queue(&gw).await;
    let ids = send_many(&gw, &collector, 1000).await;
    eventually("1000 callbacks", || collector.calls().len() >= 1000).await;
    assert_each_called_back(&collector, &ids, true);
}

#[tokio::test]
async fn restarting_nats_mid_run_loses_no_accepted_message() {
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let (_provider, collector, gw) = nats_gateway(&nats).await;
    wait_for_queue(&gw).await;
    let mut accepted = send_many(&gw, &collector, 200).await;
    // Kill the server with work possibly still queued; requests while it is down are refused
    // (503), never accepted and lost.
    nats.stop();
    let client = client();
    let mut refused = 0;
    for i in 0..20 {
        let resp = Req::new(
            Method::POST,
            gw.addr,
            &format!("/async-function/echo/down{i}"),
        )
        .header("X-Callback-Url", &collector.url())
        .send_with(&client)
        .await;
        match resp.status.as_u16() {
            202 => accepted.push(resp.header("x-call-id").unwrap()),
            503 => refused += 1,
            other => panic!("unexpected {other}: {}", resp.text()),
        }
    }
    assert!(refused > 0, "with NATS down, requests are refused");
    nats.spawn();
    // Once NATS is back, new work is accepted again, and everything accepted is run.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = Req::new(Method::POST, gw.addr, "/async-function/echo/after")
            .header("X-Callback-Url", &collector.url())
            .send_with(&client)
            .await;
        if resp.status == 202 {
            accepted.push(resp.header("x-call-id").unwrap());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "NATS never came back: {}",
            resp.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ids = accepted.clone();
    eventually("every accepted message called back", || {
        let calls = collector.calls();
        ids.iter()
            .all(|id| calls.iter().any(|c| c.headers.get("x-call-id") == Some(id)))
    })
    .await;
    assert_each_called_back(&collector, &accepted, false);
}

#[tokio::test]
async fn a_slow_function_is_not_run_twice_past_the_ack_wait() {
    let Some(nats) = Nats::start() else { return };
    let provider = backend("fn").await;
    provider.set(Mode::Delay(Duration::from_millis(3500)));
    let collector = Collector::start().await;
    // ack-wait is 1 s: without progress heartbeats JetStream would deliver the message again
    // while the function is still running.
    let settings = format!(
        "  queue: nats\n  nats: {{ url: \"{}\", ack-wait: 1s, max-deliver: 5 }}\n  worker: {{ max-inflight: 4 }}",
        nats.url()
    );
    let gw = gateway(&config(provider.addr, &settings), None, &[]).await;
    wait_for_queue(&gw).await;
    let before = provider.requests();
    let ids = send_many(&gw, &collector, 2).await;
    eventually("both callbacks", || collector.calls().len() >= 2).await;
    assert_each_called_back(&collector, &ids, true);
    assert_eq!(provider.requests() - before, 2, "each slow call ran once");
}

#[tokio::test]
async fn two_weirs_share_one_stream_and_each_message_runs_once() {
    let Some(nats) = Nats::start() else { return };
    let provider = backend("fn").await;
    let collector = Collector::start().await;
    let yaml = config(provider.addr, &nats_settings(&nats, FAST_WORKER));
    let one = gateway(&yaml, None, &[]).await;
    let two = gateway(&yaml, None, &[]).await;
    wait_for_queue(&one).await;
    wait_for_queue(&two).await;
    let mut ids = send_many(&one, &collector, 150).await;
    ids.extend(send_many(&two, &collector, 150).await);
    eventually("300 callbacks", || collector.calls().len() >= 300).await;
    assert_each_called_back(&collector, &ids, true);
    let runs = |gw: &Gw| {
        let gw = gw.admin;
        async move {
            let text = Req::get(gw, "/metrics").send().await.text();
            text.lines()
                .find_map(|l| l.strip_prefix("weir_async_started_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        }
    };
    let (a, b) = (runs(&one).await, runs(&two).await);
    assert_eq!(
        a + b,
        300.0,
        "each message ran on exactly one of the two: {a} + {b}"
    );
}

#[tokio::test]
async fn the_default_config_serves_async_functions() {
    let provider = backend("fn").await;
    let collector = Collector::start().await;
    let provider_url = format!("http://{}/", provider.addr);
    let running = weir::Gateway::builder()
        .listen(([127, 0, 0, 1], 0).into())
        .admin_listen(([127, 0, 0, 1], 0).into())
        .env(move |name| match name {
            "functions_provider_url" => Some(provider_url.clone()),
            "WEIR_METRICS_LISTEN" => Some("127.0.0.1:0".into()),
            "scale_from_zero" => Some("false".into()),
            _ => None,
        })
        .start()
        .await
        .expect("the embedded default starts");
    let addr = running.listen_addr();
    let deadline = tokio::time::Instant::now() + WAIT;
    let resp = loop {
        let resp = Req::new(Method::POST, addr, "/async-function/echo/sub?x=1")
            .header("X-Callback-Url", &collector.url())
            .body("hi")
            .send()
            .await;
        if resp.status != 503 || tokio::time::Instant::now() > deadline {
            break resp;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.header("x-call-id").expect("a call id");
    assert_eq!(resp.header_all("x-call-id").len(), 1, "one X-Call-Id");
    eventually("the callback", || !collector.calls().is_empty()).await;
    let call = &collector.calls()[0];
    assert_eq!(call.headers.get("x-call-id"), Some(&id));
    let answer: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(answer["uri"], "/function/echo/sub?x=1");
    // The invocation is counted in the OpenFaaS function metrics, as a synchronous one is.
    let metrics = Req::get(running.admin_addr(), "/metrics")
        .send()
        .await
        .text();
    assert!(
        metrics
            .contains("gateway_function_invocation_total{code=\"200\",function_name=\"echo\"} 1"),
        "{metrics}"
    );
}
