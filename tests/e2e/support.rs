//! What every end-to-end test needs: an origin server that echoes what it received, an
//! in-process gateway started from YAML text, an HTTP client, a raw-socket client, an address
//! that refuses connections, and the real `weir` binary as a child process.
//!
//! Everything listens on 127.0.0.1 with port 0; nothing talks to any other address.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use weir::{Gateway, GatewayBuilder, RunningGateway};

/// The bound on every wait in the suite: one request, one start-up, one child's log line.
pub const WAIT: Duration = Duration::from_secs(20);

/// One route, `all`, that sends everything to the origin.
pub const ONE_ROUTE: &str = r#"
gateway:
  routes:
  - id: all
    uri: http://${ORIGIN}
"#;

/// 64 KiB: the chunk size of streamed bodies.
pub const CHUNK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Origin server
// ---------------------------------------------------------------------------------------------

type OriginBody = BoxBody<Bytes, Infallible>;

/// An upstream for the gateway to forward to, on 127.0.0.1:0, served on the test's runtime.
///
/// Every path answers 200 with `{"method", "uri", "headers": {name: [values]}, "body"}` except:
/// - `/status/{code}`: that status (still the echo body);
/// - `/delay/{ms}`: waits, then echoes;
/// - `/bytes/{n}`: streams `n` bytes in 64 KiB chunks, never holding more than one chunk;
/// - `/count`: reads the request body as a stream and answers `{"bytes": n}`;
/// - `/hop`: echoes with hop-by-hop response headers (`Connection: X-Hop-Secret`,
///   `X-Hop-Secret: 1`, `Keep-Alive`, `Proxy-Authenticate`) and `X-Kept: 1`.
pub struct Origin {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl Origin {
    /// How many requests have arrived so far (counted when their head is read).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Starts an origin server.
pub async fn origin() -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
    let addr = listener.local_addr().expect("origin address");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    origin_handle(request)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Origin { addr, requests }
}

async fn origin_handle(request: Request<Incoming>) -> Result<Response<OriginBody>, Infallible> {
    let path = request.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let n: u64 = n.parse().unwrap_or(0);
        return Ok(Response::new(BoxBody::new(Payload::new(n))));
    }
    if path == "/count" {
        let mut body = request.into_body();
        let mut bytes: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Ok(respond(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "body failed"}),
                ));
            };
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
            }
        }
        return Ok(respond(StatusCode::OK, json!({ "bytes": bytes })));
    }
    let mut status = StatusCode::OK;
    if let Some(code) = path.strip_prefix("/status/") {
        status = code
            .parse::<u16>()
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::OK);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        let ms: u64 = ms.parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_string(), Value::Array(values));
    }
    let uri = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let echo = json!({
        "method": parts.method.as_str(),
        "uri": uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = respond(status, echo);
    if path == "/hop" {
        let h = response.headers_mut();
        h.insert("connection", HeaderValue::from_static("X-Hop-Secret"));
        h.insert("x-hop-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-authenticate", HeaderValue::from_static("Basic"));
        h.insert("x-kept", HeaderValue::from_static("1"));
    }
    Ok(response)
}

fn respond(status: StatusCode, value: Value) -> Response<OriginBody> {
    let mut response = Response::new(BoxBody::new(Full::new(Bytes::from(value.to_string()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A body of `remaining` bytes, produced 64 KiB at a time from one shared buffer, so neither
/// side ever holds more than a chunk of it.
pub struct Payload {
    remaining: u64,
    chunk: Bytes,
}

impl Payload {
    /// A payload of `len` bytes.
    pub fn new(len: u64) -> Self {
        let chunk: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
        Self {
            remaining: len,
            chunk: Bytes::from(chunk),
        }
    }
}

impl http_body::Body for Payload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/// An address on 127.0.0.1 that refuses connections: a socket bound to it that never listens.
/// The port stays taken for as long as the value lives, so no other test's listener can get
/// it (as could happen if it were bound, read and released).
pub struct Refused {
    _socket: tokio::net::TcpSocket,
    /// The address.
    pub addr: SocketAddr,
}

/// A new refusing address.
pub fn refused() -> Refused {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(([127, 0, 0, 1], 0).into())
        .expect("bind a refusing address");
    let addr = socket.local_addr().expect("address");
    Refused {
        _socket: socket,
        addr,
    }
}

// ---------------------------------------------------------------------------------------------
// In-process gateway
// ---------------------------------------------------------------------------------------------

/// A gateway started in this process, on 127.0.0.1:0 for both listeners.
pub struct Gw {
    /// The running gateway.
    pub running: RunningGateway,
    /// The main listener.
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin: SocketAddr,
    /// What `${REFUSED}` points at.
    pub refused: Refused,
}

/// Starts a gateway from `yaml`. Placeholders read `vars`, plus `ORIGIN` (the origin's
/// address, when one is given) and `REFUSED` (an address that refuses connections).
pub async fn gateway(yaml: &str, origin: Option<&Origin>, vars: &[(&str, &str)]) -> Gw {
    try_gateway(yaml, origin, vars)
        .await
        .unwrap_or_else(|e| panic!("the gateway did not start: {e}"))
}

/// As [`gateway`], returning the start error instead of panicking.
pub async fn try_gateway(
    yaml: &str,
    origin: Option<&Origin>,
    vars: &[(&str, &str)],
) -> Result<Gw, weir::StartError> {
    try_gateway_with(yaml, origin, vars, |builder| builder).await
}

/// As [`gateway`], with `customize` applied to the builder before it starts (to give it a
/// resolver, say).
pub async fn gateway_with(
    yaml: &str,
    vars: &[(&str, &str)],
    customize: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> Gw {
    try_gateway_with(yaml, None, vars, customize)
        .await
        .unwrap_or_else(|e| panic!("the gateway did not start: {e}"))
}

async fn try_gateway_with(
    yaml: &str,
    origin: Option<&Origin>,
    vars: &[(&str, &str)],
    customize: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> Result<Gw, weir::StartError> {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Some(origin) = origin {
        env.insert("ORIGIN".into(), origin.addr.to_string());
    }
    let refused = refused();
    env.insert("REFUSED".into(), refused.addr.to_string());
    let running = customize(Gateway::builder())
        .config_text("routes.yaml", yaml)
        .listen(([127, 0, 0, 1], 0).into())
        .admin_listen(([127, 0, 0, 1], 0).into())
        .env(move |name| env.get(name).cloned())
        .start()
        .await?;
    Ok(Gw {
        addr: running.listen_addr(),
        admin: running.admin_addr(),
        running,
        refused,
    })
}

/// Starts an origin and a gateway in front of it.
pub async fn origin_and_gateway(yaml: &str) -> (Origin, Gw) {
    let origin = origin().await;
    let gw = gateway(yaml, Some(&origin), &[]).await;
    (origin, gw)
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Resp {
    /// The body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Every value of a response header, as text.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The one value of a response header, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// The values of a request header as the origin echoed them (`[]` when absent).
    pub fn echoed(&self, name: &str) -> Vec<String> {
        match &self.json()["headers"][name.to_ascii_lowercase()] {
            Value::Array(values) => values
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The path and query as the origin received them.
    pub fn echoed_uri(&self) -> String {
        self.json()["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("not an echo: {}", self.text()))
            .to_string()
    }
}

/// A pooled HTTP/1 client.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A request being built.
pub struct Req {
    builder: http::request::Builder,
    body: Bytes,
}

impl Req {
    /// A request with `method` to `path` (path and query, sent as written) at `addr`.
    pub fn new(method: Method, addr: SocketAddr, path: &str) -> Self {
        Self {
            builder: Request::builder()
                .method(method)
                .uri(format!("http://{addr}{path}")),
            body: Bytes::new(),
        }
    }

    /// A GET.
    pub fn get(addr: SocketAddr, path: &str) -> Self {
        Self::new(Method::GET, addr, path)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends it on a new client and reads the whole response.
    pub async fn send(self) -> Resp {
        self.send_with(&client()).await
    }

    /// Sends it on `client` and reads the whole response.
    pub async fn send_with(self, client: &HttpClient) -> Resp {
        let request = self
            .builder
            .body(Full::new(self.body))
            .expect("valid request");
        let what = format!("{} {}", request.method(), request.uri());
        let response = tokio::time::timeout(WAIT, async {
            let response = client
                .request(request)
                .await
                .unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{what}: body failed: {e:?}"))
                .to_bytes();
            Resp {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        })
        .await;
        response.unwrap_or_else(|_| panic!("{what}: no response within {WAIT:?}"))
    }
}

/// GET `path` at `addr`.
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    Req::get(addr, path).send().await
}

/// Sends `raw` (a whole HTTP/1.1 request, which should say `Connection: close`) on a new TCP
/// connection and parses the response: for requests a client library would rewrite.
pub async fn raw_request(addr: SocketAddr, raw: &str) -> Resp {
    tokio::time::timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(raw.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.expect("read");
        parse_raw_response(&buf)
    })
    .await
    .expect("raw request timed out")
}

fn parse_raw_response(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let code: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).expect("header name"),
            HeaderValue::from_str(value.trim()).expect("header value"),
        );
    }
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk");
            let size = usize::from_str_radix(
                std::str::from_utf8(&rest[..line_end])
                    .expect("size")
                    .split(';')
                    .next()
                    .unwrap()
                    .trim(),
                16,
            )
            .expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Resp {
        status: StatusCode::from_u16(code).expect("status"),
        headers,
        body: Bytes::from(body),
    }
}

/// The admin API's answer to GET `path`.
pub async fn admin_get(gw: &Gw, path: &str) -> Resp {
    get(gw.admin, path).await
}

/// The instances of service `name` as `GET /actuator/gateway/services` shows them.
pub async fn service_instances(admin: SocketAddr, name: &str) -> Vec<Value> {
    let resp = get(admin, "/actuator/gateway/services").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let services = resp.json();
    let service = services
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service `{name}` in {services}"))
        .clone();
    service["instances"].as_array().cloned().unwrap_or_default()
}

/// The instance of service `name` at `http://addr`, as the admin API shows it.
pub async fn service_instance(admin: SocketAddr, name: &str, addr: SocketAddr) -> Value {
    let uri = format!("http://{addr}");
    let instances = service_instances(admin, name).await;
    instances
        .iter()
        .find(|i| i["uri"] == uri.as_str())
        .unwrap_or_else(|| panic!("no instance {uri} in service `{name}`: {instances:?}"))
        .clone()
}

/// Circuit breaker `name` as `GET /actuator/gateway/circuitbreakers` shows it.
pub async fn breaker(admin: SocketAddr, name: &str) -> Value {
    let resp = get(admin, "/actuator/gateway/circuitbreakers").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let all = resp.json();
    let found: Vec<&Value> = all
        .as_array()
        .map(|all| all.iter().filter(|b| b["name"] == name).collect())
        .unwrap_or_default();
    assert_eq!(found.len(), 1, "one breaker `{name}` expected in {all}");
    found[0].clone()
}

/// The value of the sample `series` (`name{labels}`, exactly as exposed) on `/metrics`.
pub async fn metric(admin: SocketAddr, series: &str) -> Option<f64> {
    let text = get(admin, "/metrics").await.text();
    text.lines()
        .filter_map(|line| line.strip_prefix(series))
        .find_map(|rest| rest.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

/// Checks that `resp` is weir's JSON error body for `status`, `path` and `route`.
pub fn assert_error_body(resp: &Resp, status: u16, path: &str, route: Option<&str>) {
    assert_eq!(resp.status.as_u16(), status, "body: {}", resp.text());
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = resp.json();
    assert_eq!(body["status"], json!(status), "{body}");
    assert_eq!(
        body["error"],
        json!(StatusCode::from_u16(status)
            .unwrap()
            .canonical_reason()
            .unwrap()),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["path"], json!(path), "{body}");
    let id = body["requestId"].as_str().unwrap_or_default();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "requestId should be 16 hex digits: {body}"
    );
    match route {
        Some(route) => assert_eq!(body["route"], json!(route), "{body}"),
        None => assert!(body.get("route").is_none(), "no route expected: {body}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------------

/// The `weir` binary built for this test run.
pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

/// A file path under the test scratch directory, unique in this run.
pub fn scratch_file(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{}-{n}-{name}", std::process::id()))
}

/// Writes `text` to a new scratch file and returns its path.
pub fn write_config(name: &str, text: &str) -> PathBuf {
    let path = scratch_file(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// Removes the variables the embedded default config and logging read, so that the machine's
/// environment cannot change what a test sees.
fn clean_env(command: &mut Command) {
    for name in [
        "RUST_LOG",
        "NO_COLOR",
        "functions_provider_url",
        "upstream_timeout",
        "WEIR_LISTEN",
        "WEIR_ADMIN_LISTEN",
        "WEIR_METRICS_LISTEN",
        "WEIR_TLS",
        "WEIR_TLS_CERT",
        "WEIR_TLS_KEY",
        "function_namespace",
        "basic_auth",
        "secret_mount_path",
        "scale_from_zero",
        "read_timeout",
    ] {
        command.env_remove(name);
    }
}

/// What a finished run of the binary printed.
#[derive(Debug)]
pub struct Output {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `weir ARGS` to completion with extra environment variables.
pub fn run_weir(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(weir_bin());
    command.args(args).stdin(Stdio::null());
    clean_env(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run weir");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running `weir` child process; killed when dropped.
pub struct WeirProcess {
    child: Child,
    /// The main listener, from the "listening (gateway)" log line.
    pub addr: SocketAddr,
    /// The admin listener, from the "listening (admin)" log line.
    pub admin: SocketAddr,
    /// The metrics listener, from the "listening (metrics)" log line (logged before the admin
    /// line), when there is one.
    pub metrics: Option<SocketAddr>,
    /// Every stderr line read up to the listening lines.
    pub log: Vec<String>,
}

impl WeirProcess {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmHWM`, `VmRSS`).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }
}

impl WeirProcess {
    /// Sends the process `signal` (a name `kill` knows: `TERM`, `HUP`, ...).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits, polling for at most [`WAIT`], for the process to exit; its exit status.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for weir") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "weir did not exit within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn address_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let at = line.find(marker)? + marker.len();
    line[at..].split_whitespace().next()?.parse().ok()
}

/// Starts `weir --config CONFIG` on ephemeral 127.0.0.1 ports (see [`spawn_weir`]).
pub fn spawn_weir_on(config: &std::path::Path) -> WeirProcess {
    let config = config.to_str().expect("a UTF-8 path");
    spawn_weir(
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    )
}

/// Starts `weir ARGS` and waits (bounded) until it logs both listening lines.
pub fn spawn_weir(args: &[&str], env: &[(&str, &str)]) -> WeirProcess {
    let mut command = Command::new(weir_bin());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    clean_env(&mut command);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn weir");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading until the child exits, so that its stderr never fills up.
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody is listening any more: drain quietly.
                continue;
            }
        }
    });
    let deadline = std::time::Instant::now() + WAIT;
    let mut log = Vec::new();
    let (mut addr, mut admin, mut metrics) = (None, None, None);
    while addr.is_none() || admin.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                addr = addr.or_else(|| address_after(&line, "listening (gateway) address="));
                admin = admin.or_else(|| address_after(&line, "listening (admin) address="));
                metrics = metrics.or_else(|| address_after(&line, "listening (metrics) address="));
                log.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "weir {args:?} did not log both listening lines within {WAIT:?}; stderr so far:\n{}",
                    log.join("\n")
                );
            }
        }
    }
    WeirProcess {
        child,
        addr: addr.unwrap(),
        admin: admin.unwrap(),
        metrics,
        log,
    }
}
