//! TLS on the main listener (`server.ssl`): HTTP/1.1 and HTTP/2 chosen by ALPN, requests with
//! and without bodies, `X-Forwarded-Proto: https`, plain HTTP on the TLS port, a certificate
//! renewed by a reload, and config errors that name the file and say what to write.
//!
//! The certificates under `certs/` are for these tests only: a CA and two certificates for
//! `localhost`, 127.0.0.1 and ::1 that it signed, valid until 2126.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::support::*;

/// A file under `certs/`.
fn cert_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/certs")
        .join(name)
}

/// `server.listen` on a port of the system's choosing, for a gateway started from a file.
const LOCAL: &str = "  listen: 127.0.0.1:0\n";
/// The admin listener likewise.
const ADMIN: &str = "admin:\n  listen: 127.0.0.1:0\n";

/// The certificate and key of test pair `n` (1 or 2).
pub fn pair(n: u8) -> (PathBuf, PathBuf) {
    (
        cert_path(&format!("localhost-{n}.crt")),
        cert_path(&format!("localhost-{n}.key")),
    )
}

/// Writes test pair `n` over `cert` and `key`, as a renewal would.
fn write_pair(n: u8, cert: &Path, key: &Path) {
    let (from_cert, from_key) = pair(n);
    std::fs::copy(from_cert, cert).expect("copy the certificate");
    std::fs::copy(from_key, key).expect("copy the key");
}

/// A config with TLS from `cert` and `key`, the `server:` settings in `server` (each line
/// indented two spaces), other top-level sections in `rest`, and one route, `all`, to `uri`.
pub fn tls_config(server: &str, (cert, key): (&Path, &Path), rest: &str, uri: &str) -> String {
    format!(
        "server:\n{server}  ssl:\n    certificate: {}\n    certificate-private-key: {}\n{rest}gateway:\n  routes:\n  - id: all\n    uri: {uri}\n",
        cert.display(),
        key.display()
    )
}

/// A gateway with TLS from `cert` and `key` on the main listener, `server` settings, and one
/// route to the origin.
async fn tls_gateway(origin: &Origin, server: &str, (cert, key): (&Path, &Path)) -> Gw {
    let yaml = tls_config(server, (cert, key), "", "http://${ORIGIN}");
    gateway(&yaml, Some(origin), &[]).await
}

/// [`tls_gateway`] with the first test pair and no other settings.
async fn tls_gateway_1(origin: &Origin) -> Gw {
    let (cert, key) = pair(1);
    tls_gateway(origin, "", (&cert, &key)).await
}

/// A TLS connection to `addr` that trusts only the test CA and offers `alpn`.
pub async fn connect(addr: std::net::SocketAddr, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(cert_path("ca.crt")).expect("test CA");
    roots.add(ca).expect("test CA is a CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio::time::timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").expect("name"), tcp),
    )
    .await
    .expect("handshake within the bound")
    .expect("handshake")
}

/// The subject of the certificate the server presented, as DER bytes to search.
fn peer_certificate(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .expect("a certificate")[0]
        .to_vec()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sends `requests` in turn on one HTTP/1.1 connection over `stream`.
async fn http1_exchange(
    stream: TlsStream<TcpStream>,
    requests: Vec<Request<Full<Bytes>>>,
) -> Vec<Resp> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1 handshake");
    tokio::spawn(connection);
    let mut responses = Vec::new();
    for request in requests {
        responses.push(read(sender.send_request(request).await.expect("response")).await);
    }
    responses
}

async fn read(response: http::Response<hyper::body::Incoming>) -> Resp {
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(WAIT, body.collect())
        .await
        .expect("body within the bound")
        .expect("body")
        .to_bytes();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

fn request(method: &str, uri: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("request")
}

#[tokio::test]
async fn https_http1_serves_requests_with_and_without_bodies() {
    let origin = origin().await;
    let gw = tls_gateway_1(&origin).await;
    let stream = connect(gw.addr, &[b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(contains(
        &peer_certificate(&stream),
        b"weir test localhost 1"
    ));
    // Bodiless requests are served by weir's own server, the POST by hyper after the
    // hand-over, and the GET after it on hyper again: one connection throughout.
    let responses = http1_exchange(
        stream,
        vec![
            request("GET", "/one", ""),
            request("GET", "/two", ""),
            request("POST", "/three", "a body"),
            request("GET", "/four", ""),
        ],
    )
    .await;
    let paths: Vec<String> = responses.iter().map(|r| r.echoed_uri()).collect();
    assert_eq!(paths, ["/one", "/two", "/three", "/four"]);
    for response in &responses {
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.echoed("x-forwarded-proto"), ["https"]);
    }
    assert_eq!(responses[2].json()["body"], "a body");
}

#[tokio::test]
async fn https_http2_is_chosen_by_alpn() {
    let origin = origin().await;
    let gw = tls_gateway_1(&origin).await;
    let stream = connect(gw.addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    for (method, path, body) in [("GET", "/a", ""), ("POST", "/b", "payload")] {
        let request = Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("request");
        let response = read(sender.send_request(request).await.expect("response")).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.echoed_uri(), path);
        assert_eq!(response.echoed("x-forwarded-proto"), ["https"]);
        assert_eq!(response.json()["body"], body);
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let origin = origin().await;
    let gw = tls_gateway_1(&origin).await;
    let resp = raw_request(
        gw.addr,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert!(resp.text().contains("https://"), "{}", resp.text());
    assert_eq!(origin.requests(), 0);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_closed_at_the_read_timeout() {
    let origin = origin().await;
    let (cert, key) = pair(1);
    let gw = tls_gateway(&origin, "  read-timeout: 300ms\n", (&cert, &key)).await;
    let mut stream = TcpStream::connect(gw.addr).await.expect("connect");
    // The first bytes of a TLS record header, and nothing more.
    stream.write_all(&[0x16, 0x03]).await.expect("write");
    let mut buf = [0u8; 64];
    // Well within the 10 s a listener without a read timeout would allow.
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("closed at the read timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn an_idle_http2_connection_is_sent_away_at_the_read_timeout() {
    let origin = origin().await;
    let (cert, key) = pair(1);
    let gw = tls_gateway(&origin, "  read-timeout: 1s\n", (&cert, &key)).await;
    let stream = connect(gw.addr, &[b"h2"]).await;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let request = Request::builder()
        .uri("https://localhost/a")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = read(sender.send_request(request).await.expect("response")).await;
    assert_eq!(response.status, StatusCode::OK);
    // Nothing more is asked: the server says GOAWAY and the connection ends (a limit of 1 s
    // leaves a slow machine room for the handshake and the first request).
    tokio::time::timeout(std::time::Duration::from_secs(8), connection)
        .await
        .expect("the connection ends at the read timeout")
        .expect("the connection task")
        .expect("a clean end (GOAWAY), not an error");
}

#[tokio::test]
async fn a_tls_client_that_never_reads_is_let_go_at_the_write_timeout() {
    let (addr, failed) = crate::server::endless_upstream().await;
    let (cert, key) = pair(1);
    let yaml = tls_config(
        "  write-timeout: 1s\n",
        (&cert, &key),
        "",
        &format!("http://{addr}"),
    );
    let gw = gateway(&yaml, None, &[]).await;
    let mut client = connect(gw.addr, &[b"http/1.1"]).await;
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    client.flush().await.expect("flush");
    tokio::time::timeout(WAIT, failed)
        .await
        .expect("the upstream's connection is dropped at the write deadline")
        .expect("told");
    // The connection is given up at once, not closed politely with records the client will
    // never read: shutdown finds nothing to wait for (its drain would take 30 s).
    tokio::time::timeout(std::time::Duration::from_secs(10), gw.running.shutdown())
        .await
        .expect("no connection left to drain");
    drop(client);
}

#[tokio::test]
async fn a_reload_renews_the_certificate_for_new_connections() {
    let origin = origin().await;
    let (cert, key) = (scratch_file("tls.crt"), scratch_file("tls.key"));
    write_pair(1, &cert, &key);
    let gw = tls_gateway(&origin, "", (&cert, &key)).await;
    let before = connect(gw.addr, &[b"http/1.1"]).await;
    assert!(contains(
        &peer_certificate(&before),
        b"weir test localhost 1"
    ));

    // A renewed pair, written in place (as certbot or a Kubernetes secret would), then a
    // reload: new handshakes present it, and the connection opened before keeps working.
    write_pair(2, &cert, &key);
    let reloaded = Req::new(http::Method::POST, gw.admin, "/actuator/gateway/refresh")
        .send()
        .await;
    assert_eq!(reloaded.status, StatusCode::OK, "{}", reloaded.text());
    let after = connect(gw.addr, &[b"http/1.1"]).await;
    assert!(contains(
        &peer_certificate(&after),
        b"weir test localhost 2"
    ));
    let responses = http1_exchange(before, vec![request("GET", "/old", "")]).await;
    assert_eq!(responses[0].status, StatusCode::OK);

    // A certificate file that no longer parses is refused; the renewed one keeps serving.
    std::fs::write(&cert, "not a certificate").expect("write");
    let refused = Req::new(http::Method::POST, gw.admin, "/actuator/gateway/refresh")
        .send()
        .await;
    assert_ne!(refused.status, StatusCode::OK);
    assert!(
        refused.text().contains("server.ssl.certificate"),
        "{}",
        refused.text()
    );
    let still = connect(gw.addr, &[b"http/1.1"]).await;
    assert!(contains(
        &peer_certificate(&still),
        b"weir test localhost 2"
    ));
}

#[tokio::test]
async fn a_reload_that_removes_tls_keeps_the_current_certificate_until_a_restart() {
    let origin = origin().await;
    let uri = format!("http://{}", origin.addr);
    let with_cert = |n: u8| {
        let (cert, key) = pair(n);
        tls_config(LOCAL, (&cert, &key), ADMIN, &uri)
    };
    let file = write_config("tls-reload.yaml", &with_cert(1));
    let running = weir::Gateway::builder()
        .config_file(&file)
        .start()
        .await
        .expect("start");
    let (addr, admin) = (running.listen_addr(), running.admin_addr());
    let refresh = || async {
        Req::new(http::Method::POST, admin, "/actuator/gateway/refresh")
            .send()
            .await
    };
    std::fs::write(&file, with_cert(2)).expect("write");
    assert_eq!(refresh().await.status, StatusCode::OK);
    let without =
        format!("server:\n{LOCAL}{ADMIN}gateway:\n  routes:\n  - id: all\n    uri: {uri}\n");
    std::fs::write(&file, without).expect("write");
    let status = refresh().await;
    assert_eq!(status.status, StatusCode::OK);
    let needed = status.json()["restart_needed"].to_string();
    assert!(needed.contains("server.ssl: removed"), "{needed}");
    // Still TLS, with the renewed certificate, not the one it started with.
    let stream = connect(addr, &[b"http/1.1"]).await;
    assert!(contains(
        &peer_certificate(&stream),
        b"weir test localhost 2"
    ));
    running.shutdown().await;
}

#[tokio::test]
async fn a_certificate_renewed_in_place_is_picked_up_without_being_asked() {
    let origin = origin().await;
    let (cert, key) = (scratch_file("watched.crt"), scratch_file("watched.key"));
    write_pair(1, &cert, &key);
    let yaml = tls_config(
        LOCAL,
        (&cert, &key),
        &format!("{ADMIN}reload:\n  debounce: 50ms\n"),
        &format!("http://{}", origin.addr),
    );
    let file = write_config("tls-watched.yaml", &yaml);
    let running = weir::Gateway::builder()
        .config_file(&file)
        .start()
        .await
        .expect("start");
    let addr = running.listen_addr();
    let first = connect(addr, &[b"http/1.1"]).await;
    assert!(contains(
        &peer_certificate(&first),
        b"weir test localhost 1"
    ));
    // What certbot does: the new pair written over the old; no signal, no admin call.
    write_pair(2, &cert, &key);
    let renewed = tokio::time::timeout(WAIT, async {
        loop {
            let stream = connect(addr, &[b"http/1.1"]).await;
            if contains(&peer_certificate(&stream), b"weir test localhost 2") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(renewed.is_ok(), "the renewed certificate was not taken up");
    running.shutdown().await;
}

#[tokio::test]
async fn unusable_certificates_are_config_errors_that_say_what_to_write() {
    let origin = origin().await;
    let cases = [
        (
            cert_path("missing.crt"),
            cert_path("localhost-1.key"),
            "`server.ssl.certificate`: cannot read",
        ),
        (
            cert_path("localhost-1.key"),
            cert_path("localhost-1.key"),
            "BEGIN CERTIFICATE",
        ),
        (
            cert_path("localhost-1.crt"),
            cert_path("localhost-2.key"),
            "cannot be used together",
        ),
    ];
    for (cert, key, expected) in cases {
        let yaml = tls_config("", (&cert, &key), "", "no://op");
        let e = match try_gateway(&yaml, Some(&origin), &[]).await {
            Ok(_) => panic!("started with {}", cert.display()),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(expected), "{e}");
        assert!(e.contains("routes.yaml:"), "{e}");
    }
    let e = match try_gateway(
        "server:\n  ssl:\n    key-store: classpath:keystore.p12\n",
        Some(&origin),
        &[],
    )
    .await
    {
        Ok(_) => panic!("started with a keystore"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("certificate-private-key:"), "{e}");
    assert!(e.contains("openssl pkcs12"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_config_serves_tls_when_told_by_the_environment() {
    let (cert, key) = pair(1);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let weir = spawn_weir(
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        &[
            ("WEIR_METRICS_LISTEN", "127.0.0.1:0"),
            ("WEIR_TLS", "true"),
            ("WEIR_TLS_CERT", &cert),
            ("WEIR_TLS_KEY", &key),
        ],
    );
    let stream = connect(weir.addr, &[b"http/1.1"]).await;
    assert!(contains(
        &peer_certificate(&stream),
        b"weir test localhost 1"
    ));
    let responses = http1_exchange(stream, vec![request("GET", "/nope", "")]).await;
    assert_eq!(responses[0].status, StatusCode::NOT_FOUND);
}
