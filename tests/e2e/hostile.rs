//! Hostile requests, written byte for byte and sent over raw TCP (a client library would clean
//! them up): path confusion, request smuggling, odd request targets. Every row gets its
//! documented answer, nothing reaches an upstream it should not, and the gateway keeps serving
//! other clients throughout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// What a recording origin saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The request target as received.
    pub uri: String,
    /// The `Host` header.
    pub host: String,
    /// The body, or `None` when it ended in an error (an incomplete request).
    pub body: Option<Vec<u8>>,
}

/// An upstream that records every request it receives (when its head is read, and again with
/// its body once that is read) and answers 200 `origin NAME`.
pub struct Recorder {
    /// Where it listens.
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    /// Every request head received so far, as `METHOD TARGET`.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Every request whose body was read to its end or to an error.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.heads.lock().unwrap().clear();
        self.seen.lock().unwrap().clear();
    }
}

/// Starts a recording origin named `name`.
pub async fn recorder(name: &'static str) -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (h, s) = (heads.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (h, s) = (h.clone(), s.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let (h, s) = (h.clone(), s.clone());
                    async move {
                        let method = request.method().to_string();
                        let uri = request.uri().to_string();
                        let host = request
                            .headers()
                            .get_all(http::header::HOST)
                            .iter()
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                            .collect::<Vec<_>>()
                            .join(" | ");
                        h.lock().unwrap().push(format!("{method} {uri}"));
                        let body = request.into_body().collect().await.ok();
                        let body = body.map(|b| b.to_bytes().to_vec());
                        s.lock().unwrap().push(Seen {
                            method,
                            uri: uri.clone(),
                            host: host.clone(),
                            body,
                        });
                        let text = format!("origin {name} {uri} host={host}");
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Recorder { addr, heads, seen }
}

/// What came back on a raw connection: the status (`None` when the gateway closed the
/// connection without answering), the head and body as text.
#[derive(Debug)]
pub struct RawAnswer {
    /// The status code.
    pub status: Option<u16>,
    /// Everything received, as text.
    pub text: String,
}

/// Writes `bytes` on a new connection, half-closes nothing, and reads until the gateway closes
/// the connection (bounded by [`WAIT`]: a gateway that keeps a connection open it should close
/// fails the test).
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> RawAnswer {
    let what = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    tokio::time::timeout(WAIT, async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // The gateway may answer and close before reading everything: a failed write is fine.
        let _ = stream.write_all(bytes).await;
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| text.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        RawAnswer { status, text }
    })
    .await
    .unwrap_or_else(|_| panic!("{what:?}: the connection stayed open for {WAIT:?}"))
}

const ROUTES: &str = r#"
gateway:
  routes:
  - id: system
    uri: http://${SYSTEM}
    predicates:
    - Path=/system/**
    - Header=X-Admin-Key, let-me-in
  - id: public
    uri: http://${PUBLIC}
    predicates:
    - Path=/public/**
  - id: tenant
    uri: http://${PUBLIC}
    predicates:
    - Host=**.tenant.example
    filters:
    - PreserveHostHeader
  - id: other
    uri: http://${OTHER}
    predicates:
    - Path=/**
"#;

/// Who answers a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// hyper, while parsing: an empty body.
    Hyper,
    /// weir itself: a JSON error body and `Connection: close`.
    Weir,
    /// An upstream (through the gateway).
    Upstream,
}

/// One hostile request: what is sent, the status it gets, who answers it, and every request
/// that reaches each upstream whole (`METHOD TARGET`, with ` host=H` when the upstream was
/// told a host other than its own address).
struct Row {
    name: &'static str,
    raw: Vec<u8>,
    status: u16,
    by: By,
    public: &'static [&'static str],
    system: &'static [&'static str],
    other: &'static [&'static str],
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n").into_bytes()
}

fn get_admin(target: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: gw.example\r\nX-Admin-Key: let-me-in\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// A request written whole; `\n` stands for CRLF.
fn raw(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn row(
    name: &'static str,
    raw: Vec<u8>,
    status: u16,
    by: By,
    delivered: (
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    ),
) -> Row {
    Row {
        name,
        raw,
        status,
        by,
        public: delivered.0,
        system: delivered.1,
        other: delivered.2,
    }
}

const NONE: (&[&str], &[&str], &[&str]) = (&[], &[], &[]);

fn public(
    seen: &'static [&'static str],
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    (seen, &[], &[])
}

fn system(
    seen: &'static [&'static str],
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    (&[], seen, &[])
}

fn other(
    seen: &'static [&'static str],
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    (&[], &[], seen)
}

/// The smuggling payload: a request for the protected route hidden in a body.
const SMUGGLED: &str = "0\n\nGET /system/x HTTP/1.1\nHost: gw.example\nX-Admin-Key: let-me-in\n\n";

fn rows() -> Vec<Row> {
    use By::*;
    let smuggled_len = raw(SMUGGLED).len();
    vec![
        // Controls.
        row("plain public", get("/public/a"), 200, Upstream, public(&["GET /public/a"])),
        row("protected, with its key", get_admin("/system/x"), 200, Upstream, system(&["GET /system/x"])),
        row("protected, without its key", get("/system/x"), 200, Upstream, other(&["GET /system/x"])),
        // Dot segments are resolved before routing.
        row("../ out of /public", get("/public/../system/x"), 200, Upstream, other(&["GET /system/x"])),
        row("%2e%2e out of /public", get("/public/%2e%2e/system/x"), 200, Upstream, other(&["GET /system/x"])),
        row("mixed-case %2E%2e", get("/public/%2E%2e/system/x"), 200, Upstream, other(&["GET /system/x"])),
        row(".%2e", get("/public/.%2e/system/x"), 200, Upstream, other(&["GET /system/x"])),
        row("../ with the key reaches what it names", get_admin("/public/../system/y"), 200, Upstream, system(&["GET /system/y"])),
        row("/./", get("/public/./a"), 200, Upstream, public(&["GET /public/a"])),
        row("// inside", get("/public//a"), 200, Upstream, public(&["GET /public/a"])),
        row("// leading", get("//public/a"), 200, Upstream, public(&["GET /public/a"])),
        row("above the root", get("/%2e%2e/../system/x"), 200, Upstream, other(&["GET /system/x"])),
        row("query is not a path", get("/public/a?next=/../system"), 200, Upstream, public(&["GET /public/a?next=/../system"])),
        row("%7E decoded", get("/public/%7Euser"), 200, Upstream, public(&["GET /public/~user"])),
        row("encoded UTF-8 kept", get("/public/caf%C3%A9"), 200, Upstream, public(&["GET /public/caf%C3%A9"])),
        row("fragment dropped", get("/public/a#x/../../system"), 200, Upstream, public(&["GET /public/a"])),
        // Encoded separators are data, never separators.
        row("%2F is data", get("/public/a%2Fb"), 200, Upstream, public(&["GET /public/a%2Fb"])),
        row("%2f keeps its case", get("/public/a%2fb"), 200, Upstream, public(&["GET /public/a%2fb"])),
        row("%5C is data", get("/public/a%5Cb"), 200, Upstream, public(&["GET /public/a%5Cb"])),
        // ... and a dot segment behind one is rejected.
        row("..%2F", get("/public/..%2Fsystem/x"), 400, Weir, NONE),
        row("..%2f", get("/public/..%2fsystem/x"), 400, Weir, NONE),
        row("%2e%2e%2f", get("/public/%2e%2e%2fsystem/x"), 400, Weir, NONE),
        row("..%5C", get("/public/..%5Csystem/x"), 400, Weir, NONE),
        row("double-encoded dots", get("/public/%252e%252e/system/x"), 400, Weir, NONE),
        row("overlong UTF-8 dots", get("/public/%c0%ae%c0%ae/system/x"), 400, Weir, NONE),
        row("Tomcat ..;/", get("/public/..;/system/x"), 400, Weir, NONE),
        row("Tomcat ..;param/", get("/public/..;jsessionid=1/system/x"), 400, Weir, NONE),
        row("literal backslash", get("/public\\..\\system/x"), 400, Weir, NONE),
        row("backslash alone", get("/public/a\\b"), 400, Weir, NONE),
        // Bytes and escapes upstreams read differently.
        row("%00", get("/public/a%00.json"), 400, Weir, NONE),
        row("%0d%0a", get("/public/a%0d%0aX-Injected:%20yes"), 400, Weir, NONE),
        row("malformed escape %zz", get("/public/a%zz"), 400, Weir, NONE),
        row("truncated escape", get("/public/a%2"), 400, Weir, NONE),
        row("raw UTF-8", get("/public/caf\u{e9}"), 400, Weir, NONE),
        row("raw UTF-8 in the query", get("/public/a?q=caf\u{e9}"), 400, Weir, NONE),
        row("space", get("/public/a b"), 400, Hyper, NONE),
        row("tab", get("/public/a\tb"), 400, Hyper, NONE),
        row("quote", get("/public/\"a\""), 400, Weir, NONE),
        row("brackets", get("/public/a[0]"), 400, Weir, NONE),
        // Request targets.
        row("absolute-form: its authority is the host", raw("GET http://a.tenant.example/t HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 200, Upstream, public(&["GET /t host=a.tenant.example"])),
        row("absolute-form: Host does not override it", raw("GET http://gw.example/t HTTP/1.1\nHost: a.tenant.example\nConnection: close\n\n"), 200, Upstream, other(&["GET /t"])),
        row("absolute-form is normalised too", raw("GET http://gw.example/public/../system/x HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 200, Upstream, other(&["GET /system/x"])),
        row("absolute-form, not http", raw("GET ftp://gw.example/public/a HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 400, Weir, NONE),
        row("absolute-form with credentials", raw("GET http://u:p@gw.example/public/a HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 400, Weir, NONE),
        row("CONNECT", raw("CONNECT system.internal:443 HTTP/1.1\nHost: system.internal:443\n\n"), 405, Weir, NONE),
        row("OPTIONS *", raw("OPTIONS * HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 200, Weir, NONE),
        row("GET *", get("*"), 400, Weir, NONE),
        row("authority-form GET", get("system.internal:80"), 400, Weir, NONE),
        row("lower-case method", raw("get /public/a HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 400, Weir, NONE),
        row("target over 8 KiB", get(&format!("/public/{}", "a".repeat(9000))), 414, Weir, NONE),
        row("target over 64 KiB", get(&format!("/public/{}", "a".repeat(70_000))), 414, Hyper, NONE),
        row("head over 400 KiB", get(&format!("/public/{}", "a".repeat(500_000))), 431, Hyper, NONE),
        row("over 100 headers", raw(&format!("GET /public/a HTTP/1.1\nHost: gw.example\n{}\n", "X-A: a\n".repeat(101))), 431, Hyper, NONE),
        row("HTTP/1.2", raw("GET /public/a HTTP/1.2\nHost: gw.example\n\n"), 400, Hyper, NONE),
        // Host.
        row("no Host in HTTP/1.1", raw("GET /public/a HTTP/1.1\n\n"), 400, Weir, NONE),
        row("two Hosts", raw("GET /public/a HTTP/1.1\nHost: a.tenant.example\nHost: gw.example\n\n"), 400, Weir, NONE),
        row("Host with credentials", raw("GET /public/a HTTP/1.1\nHost: u@a.tenant.example\n\n"), 400, Weir, NONE),
        row("Host with a path", raw("GET /public/a HTTP/1.1\nHost: a.tenant.example/x\n\n"), 400, Weir, NONE),
        row("HTTP/1.0 without Host", raw("GET /public/a HTTP/1.0\n\n"), 200, Upstream, public(&["GET /public/a"])),
        // Framing: Content-Length.
        // hyper folds two equal lengths into one; weir reads the raw head and rejects them.
        row("two equal Content-Lengths", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: 3\nContent-Length: 3\nConnection: close\n\nabc"), 400, Weir, NONE),
        row("two different Content-Lengths", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: 3\nContent-Length: 4\n\nabcd"), 400, Hyper, NONE),
        row("Content-Length list", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: 3, 3\n\nabc"), 400, Hyper, NONE),
        row("Content-Length +3", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: +3\n\nabc"), 400, Hyper, NONE),
        row("Content-Length -1", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: -1\n\nabc"), 400, Hyper, NONE),
        row("Content-Length 0x3", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: 0x3\n\nabc"), 400, Hyper, NONE),
        row("Content-Length overflow", raw("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: 99999999999999999999999\n\nabc"), 400, Hyper, NONE),
        // Framing: Transfer-Encoding. With Content-Length too, hyper drops Content-Length
        // before weir sees the head; weir reads the raw head, answers 400 and closes the
        // connection: neither the request nor the one smuggled after it goes anywhere.
        row("CL.TE smuggling", raw(&format!("POST /public/a HTTP/1.1\nHost: gw.example\nContent-Length: {smuggled_len}\nTransfer-Encoding: chunked\n\n{SMUGGLED}")), 400, Weir, NONE),
        row("TE.CL smuggling", raw(&format!("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\nContent-Length: {smuggled_len}\n\n{SMUGGLED}")), 400, Weir, NONE),
        row("chunked, then pipelined", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\nGET /system/x HTTP/1.1\nHost: gw.example\nConnection: close\n\n"), 200, Upstream, (&["POST /public/a body=abc"], &[], &["GET /system/x"])),
        row("TE gzip, chunked", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: gzip, chunked\n\n3\nabc\n0\n\n"), 400, Weir, NONE),
        row("TE chunked, chunked", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked, chunked\n\n3\nabc\n0\n\n"), 400, Weir, NONE),
        row("TE twice", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"), 400, Weir, NONE),
        row("TE gzip", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: gzip\n\nabc"), 400, Hyper, NONE),
        row("TE xchunked", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: xchunked\n\n3\nabc\n0\n\n"), 400, Hyper, NONE),
        row("TE with a space before the colon", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding : chunked\n\n3\nabc\n0\n\n"), 400, Hyper, NONE),
        row("TE in HTTP/1.0", raw("POST /public/a HTTP/1.0\nHost: gw.example\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"), 400, Hyper, NONE),
        row("TE ChUnKeD (case-insensitive)", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: ChUnKeD\nConnection: close\n\n3\nabc\n0\n\n"), 200, Upstream, public(&["POST /public/a body=abc"])),
        // Framing: header syntax.
        row("obsolete line folding", raw("GET /public/a HTTP/1.1\nHost: gw.example\nX-A: a\n b\n\n"), 400, Hyper, NONE),
        row("space in a header name", raw("GET /public/a HTTP/1.1\nHost: gw.example\nX A: a\n\n"), 400, Hyper, NONE),
        row("( in a header name", raw("GET /public/a HTTP/1.1\nHost: gw.example\nX(A): a\n\n"), 400, Hyper, NONE),
        row("NUL in a header value", raw("GET /public/a HTTP/1.1\nHost: gw.example\nX-A: a\0b\n\n"), 400, Hyper, NONE),
        row("bare CR in a header value", b"GET /public/a HTTP/1.1\r\nHost: gw.example\r\nX-A: a\rb\r\n\r\n".to_vec(), 400, Hyper, NONE),
        // Framing: chunk sizes, found after the head went upstream. The upstream never gets a
        // whole request; the client gets 400.
        row("invalid chunk size", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\n\nzz\nabc\n0\n\n"), 400, Weir, NONE),
        row("invalid second chunk size", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\n\n3\nabc\n-1\nabc\n0\n\n"), 400, Weir, NONE),
        row("chunk size overflow", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\n\nFFFFFFFFFFFFFFFFFF\nabc\n0\n\n"), 400, Weir, NONE),
        row("chunk longer than its size", raw("POST /public/a HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\n\n2\nabc\n0\n\n"), 400, Weir, NONE),
    ]
}

/// What reached `origin` whole, as the rows write it.
fn delivered(origin: &Recorder, origin_addr: &str) -> Vec<String> {
    origin
        .seen()
        .into_iter()
        .filter_map(|s| {
            let body = s.body?;
            let mut line = format!("{} {}", s.method, s.uri);
            if s.host != origin_addr {
                line.push_str(&format!(" host={}", s.host));
            }
            if s.method == "POST" {
                line.push_str(&format!(" body={}", String::from_utf8_lossy(&body)));
            }
            Some(line)
        })
        .collect()
}

#[tokio::test]
async fn hostile_requests_get_their_documented_answers() {
    let (public_origin, system_origin, other_origin) = (
        recorder("public").await,
        recorder("system").await,
        recorder("other").await,
    );
    let (p, s, o) = (
        public_origin.addr.to_string(),
        system_origin.addr.to_string(),
        other_origin.addr.to_string(),
    );
    let gw = gateway(
        ROUTES,
        None,
        &[("PUBLIC", &p), ("SYSTEM", &s), ("OTHER", &o)],
    )
    .await;

    // A client that stays connected through the whole table, its request head half sent.
    let mut patient = TcpStream::connect(gw.addr).await.expect("connect");
    patient
        .write_all(b"GET /public/patient HTTP/1.1\r\nHost: gw.example\r\n")
        .await
        .expect("write");
    // And one on a kept-alive pooled connection, served between every two rows.
    let client = client();

    let mut failures = Vec::new();
    for row in rows() {
        public_origin.clear();
        system_origin.clear();
        other_origin.clear();
        let answer = send_raw(gw.addr, &row.raw).await;
        let head = answer
            .text
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = answer.text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let mut wrong = Vec::new();
        if answer.status != Some(row.status) {
            wrong.push(format!(
                "status {:?}, expected {}",
                answer.status, row.status
            ));
        }
        match row.by {
            By::Hyper if !(head.contains("content-length: 0") && body.is_empty()) => {
                wrong.push("expected hyper's empty answer".to_string())
            }
            By::Weir
                if row.status >= 400
                    && !(head.contains("content-type: application/json")
                        && head.contains("connection: close")
                        && body.contains("\"message\"")) =>
            {
                wrong.push("expected weir's JSON error with Connection: close".to_string())
            }
            By::Upstream if !body.starts_with("origin ") => {
                wrong.push("expected an upstream's answer".to_string())
            }
            _ => {}
        }
        for (name, origin, addr, expected) in [
            ("public", &public_origin, &p, row.public),
            ("system", &system_origin, &s, row.system),
            ("other", &other_origin, &o, row.other),
        ] {
            let got = delivered(origin, addr);
            if got != expected {
                wrong.push(format!(
                    "{name} upstream received {got:?}, expected {expected:?}"
                ));
            }
        }
        // Not even the head of a request it never got whole reaches the protected upstream.
        let heads = system_origin.heads();
        if heads.iter().any(|h| !row.system.contains(&h.as_str())) {
            wrong.push(format!("system upstream saw heads {heads:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n    answer: {}",
                row.name,
                wrong.join("; "),
                answer.text.chars().take(300).collect::<String>()
            ));
        }
        // The gateway still serves everyone else.
        let resp = Req::get(gw.addr, "/public/alive").send_with(&client).await;
        assert_eq!(resp.status, 200, "after {}: {}", row.name, resp.text());
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The protected upstream saw nothing but the requests that carried its key, not even a
    // request head it never got the rest of.
    system_origin.clear();
    let resp = Req::get(gw.addr, "/system/last")
        .header("X-Admin-Key", "let-me-in")
        .send_with(&client)
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(system_origin.heads(), ["GET /system/last"]);

    // The patient client is still being waited for, and is answered.
    patient
        .write_all(b"Connection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, patient.read_to_end(&mut buf))
        .await
        .expect("the patient client is answered")
        .expect("read");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("origin public /public/patient"), "{text}");
}

#[tokio::test]
async fn a_smuggling_head_pipelined_after_a_clean_one_is_found() {
    let (origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    let smuggled = raw(SMUGGLED);
    let mut wire = raw("GET /first HTTP/1.1\nHost: gw.example\n\nPOST /second HTTP/1.1\nHost: gw.example\nTransfer-Encoding: chunked\n");
    wire.extend(raw(&format!("Content-Length: {}\n\n", smuggled.len())));
    wire.extend(smuggled);
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stream.write_all(&wire).await.unwrap();
    let mut answers = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answers))
        .await
        .expect("the connection is closed after the 400")
        .unwrap();
    let answers = String::from_utf8_lossy(&answers);
    let statuses: Vec<&str> = answers
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answers[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "400"], "{answers}");
    assert!(
        answers.contains("Transfer-Encoding and Content-Length"),
        "{answers}"
    );
    assert_eq!(
        origin.requests(),
        1,
        "only the clean request reached the upstream"
    );
}
