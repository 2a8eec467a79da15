//! WebSocket through weir: the switch to WebSocket forwarded with its headers, the two
//! connections joined after the upstream's 101 (plain and over TLS), an upstream that refuses
//! the switch, and upgrades other than WebSocket not tunnelled.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// An upstream that agrees to switch to WebSocket on `/ws/...` (then sends back in capitals
/// every byte it gets, until the client closes), refuses it with 403 on `/refuse`, and answers
/// anything else 200. It keeps the headers of every request.
struct WsOrigin {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
    /// Told each time a switched connection ends (its client closed it, or it was dropped).
    ended: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl WsOrigin {
    fn seen(&self) -> Vec<(String, HeaderMap)> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (bounded) until a switched connection has ended.
    async fn a_tunnel_ended(&mut self) {
        tokio::time::timeout(WAIT, self.ended.recv())
            .await
            .expect("a switched connection ends within the bound")
            .expect("the origin is running");
    }
}

async fn ws_origin() -> WsOrigin {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let (ended_tx, ended) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = kept.clone();
            let ended_tx = ended_tx.clone();
            let service = service_fn(move |mut request: Request<Incoming>| {
                let ended_tx = ended_tx.clone();
                let path = request.uri().path().to_string();
                seen.lock()
                    .unwrap()
                    .push((path.clone(), request.headers().clone()));
                async move {
                    let response = if path.starts_with("/ws/") {
                        let switched = hyper::upgrade::on(&mut request);
                        tokio::spawn(async move {
                            let _ended = Ended(ended_tx);
                            let Ok(upgraded) = switched.await else { return };
                            let mut io = TokioIo::new(upgraded);
                            let mut buf = [0u8; 1024];
                            loop {
                                match io.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => {
                                        buf[..n].make_ascii_uppercase();
                                        if io.write_all(&buf[..n]).await.is_err() {
                                            return;
                                        }
                                    }
                                }
                            }
                        });
                        Response::builder()
                            .status(StatusCode::SWITCHING_PROTOCOLS)
                            .header("upgrade", "websocket")
                            .header("connection", "Upgrade")
                            .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                            .body(Full::new(Bytes::new()))
                    } else if path == "/refuse" {
                        Response::builder()
                            .status(StatusCode::FORBIDDEN)
                            .body(Full::new(Bytes::from_static(b"no switching here")))
                    } else {
                        Response::builder().body(Full::new(Bytes::from_static(b"plain")))
                    };
                    Ok::<_, Infallible>(response.expect("response"))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades(),
            );
        }
    });
    WsOrigin { addr, seen, ended }
}

/// Tells the origin's test that a switched connection ended, when dropped.
struct Ended(tokio::sync::mpsc::UnboundedSender<()>);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// What RFC 6455's opening handshake sends, for `path`.
fn handshake(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Reads a response head (to its empty line) from `stream`, byte by byte so that nothing after
/// it is taken.
async fn read_head(stream: &mut (impl AsyncRead + Unpin)) -> String {
    let mut head = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = stream.read(&mut byte).await.expect("read head");
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
    })
    .await
    .expect("head within the bound");
    String::from_utf8(head)
        .expect("ASCII head")
        .to_ascii_lowercase()
}

/// Opens a connection to `addr` and sends RFC 6455's opening handshake for `path`: the
/// connection and the response head.
async fn ask_to_switch(addr: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(handshake(path).as_bytes())
        .await
        .expect("write");
    let head = read_head(&mut stream).await;
    (stream, head)
}

/// Sends `text` and reads back as many bytes.
async fn echo(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), text: &str) -> String {
    stream.write_all(text.as_bytes()).await.expect("write");
    let mut back = vec![0u8; text.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .expect("echo within the bound")
        .expect("echo");
    String::from_utf8(back).expect("text")
}

fn route(uri: &str) -> String {
    format!(
        "gateway:\n  routes:\n  - id: ws\n    uri: {uri}\n    predicates:\n    - Path=/chat/**\n    filters:\n    - RewritePath=/chat/(?<rest>.*), /ws/$\\{{rest}}\n"
    )
}

#[tokio::test]
async fn a_websocket_is_joined_to_the_upstream_after_its_101() {
    let origin = ws_origin().await;
    // SCG's ws:// scheme, and a filter that rewrites the path before the switch.
    let gw = gateway(&route(&format!("ws://{}", origin.addr)), None, &[]).await;
    let (mut stream, head) = ask_to_switch(gw.addr, "/chat/room1").await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(head.contains("\r\nconnection: upgrade\r\n"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );

    assert_eq!(echo(&mut stream, "hello").await, "HELLO");
    assert_eq!(echo(&mut stream, "and again").await, "AND AGAIN");

    let seen = origin.seen();
    assert_eq!(seen.len(), 1);
    let (path, headers) = &seen[0];
    assert_eq!(path, "/ws/room1");
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(header("upgrade").as_deref(), Some("websocket"));
    assert_eq!(header("connection").as_deref(), Some("upgrade"));
    assert_eq!(
        header("sec-websocket-key").as_deref(),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    assert_eq!(header("sec-websocket-version").as_deref(), Some("13"));
    assert_eq!(header("x-forwarded-for").as_deref(), Some("127.0.0.1"));

    // The client closing its side ends the upstream's, and so the tunnel.
    stream.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("closed within the bound");
    assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");
}

#[tokio::test]
async fn a_websocket_over_tls_is_joined_too() {
    let origin = ws_origin().await;
    let (cert, key) = crate::tls::pair(1);
    let yaml = format!(
        "server:\n  ssl:\n    certificate: {}\n    certificate-private-key: {}\n{}",
        cert.display(),
        key.display(),
        route(&format!("http://{}", origin.addr)),
    );
    let gw = gateway(&yaml, None, &[]).await;
    let mut stream = crate::tls::connect(gw.addr, &[b"http/1.1"]).await;
    stream
        .write_all(handshake("/chat/secure").as_bytes())
        .await
        .expect("write");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert_eq!(echo(&mut stream, "over tls").await, "OVER TLS");
    let (path, headers) = &origin.seen()[0];
    assert_eq!(path, "/ws/secure");
    assert_eq!(headers.get("x-forwarded-proto").unwrap(), "https");
}

#[tokio::test]
async fn an_upstream_that_refuses_the_switch_is_answered_as_usual() {
    let origin = ws_origin().await;
    let yaml = format!(
        "gateway:\n  routes:\n  - id: ws\n    uri: http://{}\n",
        origin.addr
    );
    let gw = gateway(&yaml, None, &[]).await;
    let (mut stream, head) = ask_to_switch(gw.addr, "/refuse").await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert!(!head.contains("upgrade"), "{head}");
    // The connection is still HTTP: the next request on it is answered.
    stream
        .write_all(b"GET /next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest))
        .await
        .expect("within the bound")
        .expect("read");
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("no switching here"), "{rest}");
    assert!(rest.contains("HTTP/1.1 200"), "{rest}");
    assert!(rest.ends_with("plain"), "{rest}");
}

#[tokio::test]
async fn other_upgrades_are_not_tunnelled() {
    let origin = ws_origin().await;
    let yaml = format!(
        "gateway:\n  routes:\n  - id: ws\n    uri: http://{}\n",
        origin.addr
    );
    let gw = gateway(&yaml, None, &[]).await;
    let resp = raw_request(
        gw.addr,
        "GET /h2c HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nConnection: Upgrade, HTTP2-Settings, close\r\n\r\n",
    )
    .await;
    // Forwarded as a plain request: the upstream sees no request to switch.
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.text(), "plain");
    let (path, headers) = &origin.seen()[0];
    assert_eq!(path, "/h2c");
    assert!(headers.get("upgrade").is_none(), "{headers:?}");
    assert!(headers.get("http2-settings").is_none(), "{headers:?}");
}

/// Opens a WebSocket at `path` through `gw` and checks it carries bytes.
async fn open_and_echo(gw: &Gw, path: &str) -> TcpStream {
    let (mut stream, head) = ask_to_switch(gw.addr, path).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert_eq!(echo(&mut stream, "through").await, "THROUGH");
    stream
}

#[tokio::test]
async fn a_websocket_passes_retry_and_a_circuit_breaker_with_a_fallback() {
    let origin = ws_origin().await;
    let yaml = format!(
        "gateway:\n  routes:\n  - id: retried\n    uri: http://{0}\n    predicates:\n    - Path=/ws/retried\n    filters:\n    - Retry=3\n  - id: guarded\n    uri: http://{0}\n    predicates:\n    - Path=/ws/guarded\n    filters:\n    - CircuitBreaker=ws, forward:/fallback\n  - id: fallback\n    uri: no://op\n    predicates:\n    - Path=/fallback\n",
        origin.addr
    );
    let gw = gateway(&yaml, None, &[]).await;
    // Both filters keep copies of requests to send again; the switch goes with the request
    // itself, once.
    open_and_echo(&gw, "/ws/retried").await;
    open_and_echo(&gw, "/ws/guarded").await;
    assert_eq!(origin.seen().len(), 2);
}

#[tokio::test]
async fn a_101_that_a_filter_replaces_opens_no_tunnel() {
    let mut origin = ws_origin().await;
    let yaml = format!(
        "gateway:\n  routes:\n  - id: ws\n    uri: http://{}\n    filters:\n    - SetStatus=200\n",
        origin.addr
    );
    let gw = gateway(&yaml, None, &[]).await;
    let (stream, head) = ask_to_switch(gw.addr, "/ws/replaced").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("upgrade"), "{head}");
    // The upstream agreed to switch; the switch it was told of is dropped with the 101, and
    // its connection closed, while the client still holds its own.
    origin.a_tunnel_ended().await;
    drop(stream);
}

#[tokio::test]
async fn closing_the_websocket_closes_the_upstream_side() {
    let mut origin = ws_origin().await;
    let yaml = format!(
        "gateway:\n  routes:\n  - id: ws\n    uri: http://{}\n",
        origin.addr
    );
    let gw = gateway(&yaml, None, &[]).await;
    let stream = open_and_echo(&gw, "/ws/closing").await;
    drop(stream);
    origin.a_tunnel_ended().await;
}

#[tokio::test]
async fn a_websocket_counts_as_in_flight_to_its_instance_until_it_closes() {
    let mut origin = ws_origin().await;
    let yaml = format!(
        "services:\n  chat:\n    instances:\n    - http://{}\ngateway:\n  routes:\n  - id: ws\n    uri: lb:ws://chat\n    filters:\n    - LoadBalancer=least-requests\n",
        origin.addr
    );
    let gw = gateway(&yaml, None, &[]).await;
    let in_flight = || async { service_instances(gw.admin, "chat").await[0]["in_flight"].clone() };
    let stream = open_and_echo(&gw, "/ws/counted").await;
    // least-requests sees the open WebSocket as a request under way on its instance.
    assert_eq!(in_flight().await, 1);
    drop(stream);
    origin.a_tunnel_ended().await;
    let released = tokio::time::timeout(WAIT, async {
        while in_flight().await != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        released.is_ok(),
        "the instance still counts the closed WebSocket"
    );
}
