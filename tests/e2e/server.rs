//! weir's own HTTP/1 server, which answers requests without a body, and its hand-over to
//! hyper for the rest of a connection: pipelined requests in order, a body mid-connection, a
//! client that goes away while its request is upstream, and one that never reads its response.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::*;
use crate::hostile::send_raw;
use crate::support::*;

/// One route, everything to backend `b`.
async fn route_to_backend() -> (Backend, Gw) {
    let b = backend("b").await;
    let yaml = "
gateway:
  routes:
  - id: all
    uri: http://${B}
";
    let sb = b.addr.to_string();
    let gw = gateway(yaml, None, &[("B", &sb)]).await;
    (b, gw)
}

#[tokio::test]
async fn pipelined_requests_and_a_body_mid_connection_are_answered_in_order() {
    let (b, gw) = route_to_backend().await;
    // Two bodiless requests (weir's server), a POST with a body (hyper's, from here on), a
    // HEAD and a GET that closes; all in one write.
    let wire = "GET /one HTTP/1.1\r\nHost: gw\r\n\r\n\
                GET /two?x=1 HTTP/1.1\r\nHost: gw\r\n\r\n\
                POST /three HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello\
                HEAD /four HTTP/1.1\r\nHost: gw\r\n\r\n\
                GET /five HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    // Read until the connection closes, after the last request.
    let answers = send_raw(gw.addr, wire.as_bytes()).await.text;
    assert_eq!(
        answers.matches("HTTP/1.1 200 OK\r\n").count(),
        5,
        "{answers}"
    );
    let order: Vec<usize> = ["\"/one\"", "\"/two?x=1\"", "\"/three\"", "\"/five\""]
        .iter()
        .map(|uri| {
            answers
                .find(uri)
                .unwrap_or_else(|| panic!("{uri} in {answers}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{answers}");
    let received: Vec<(String, usize)> = b
        .received()
        .into_iter()
        .map(|r| (format!("{} {}", r.method, r.uri), r.bytes))
        .collect();
    let expected = [
        ("GET /one", 0),
        ("GET /two?x=1", 0),
        ("POST /three", 5),
        ("HEAD /four", 0),
        ("GET /five", 0),
    ]
    .map(|(r, n)| (r.to_string(), n));
    assert_eq!(received, expected);
}

#[tokio::test]
async fn answers_say_their_length_and_close_when_asked() {
    let (_b, gw) = route_to_backend().await;
    let answer = send_raw(
        gw.addr,
        b"GET /a HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await
    .text;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole head");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nconnection: close"), "{head}");
    assert!(lower.contains("\r\ndate: "), "{head}");
    let length: usize = lower
        .split("\r\n")
        .find_map(|line| line.strip_prefix("content-length: "))
        .expect("a content-length")
        .parse()
        .unwrap();
    assert_eq!(body.len(), length, "{answer}");
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_request_upstream() {
    let (b, gw) = route_to_backend().await;
    b.set(Mode::Hold);
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"GET /held HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    eventually("the request reaches the upstream", || b.requests() == 1).await;
    drop(stream);
    eventually("the upstream sees its request go away", || {
        b.cancelled() == 1
    })
    .await;
    b.release();
}

/// An upstream that answers its first request with a body of 1 GiB, streamed until its
/// connection fails; the receiver hears when it does.
pub async fn endless_upstream() -> (String, tokio::sync::oneshot::Receiver<()>) {
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap().to_string();
    let (failed_tx, failed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut conn, _) = upstream.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            conn.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
            .await
            .unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(1 << 14) {
            if conn.write_all(&chunk).await.is_err() {
                let _ = failed_tx.send(());
                return;
            }
        }
    });
    (addr, failed)
}

#[tokio::test]
async fn write_timeout_frees_a_response_its_client_never_reads() {
    let (addr, failed) = endless_upstream().await;
    let yaml = "
server:
  write-timeout: 1s
gateway:
  routes:
  - id: all
    uri: http://${U}
";
    let gw = gateway(yaml, None, &[("U", &addr)]).await;
    let mut client = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    client
        .write_all(b"GET /big HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing: weir's writes back up, and so does the upstream. At the write
    // deadline weir gives the response up, and the upstream's connection with it.
    tokio::time::timeout(Duration::from_secs(20), failed)
        .await
        .expect("the upstream's connection is dropped at the write deadline")
        .unwrap();
    drop(client);
}
