//! weir's own HTTP/1 client (bodiless requests to `http://` upstreams) against an upstream
//! that answers with scripted bytes: every framing of a response body, interim responses,
//! connections reused only when the response ended cleanly, a request sent again when a
//! pooled connection turns out closed, malformed or ambiguous responses refused with 502, and
//! the requests it leaves to hyper's client (a body, a head over 16 KiB).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// What the upstream does with the request it reads.
#[derive(Clone, Copy)]
enum Reply {
    /// Writes these bytes and waits for the next request on the connection.
    Send(&'static str),
    /// Waits until the upstream has read this many requests in all (on any connection), then
    /// writes these bytes: holds requests so that several connections are open at once.
    SendOnceSeen(usize, &'static str),
    /// Writes these bytes and closes the connection.
    SendAndClose(&'static str),
    /// Closes the connection without answering.
    Close,
}

/// An upstream on 127.0.0.1:0 whose n-th connection (in the order accepted) answers the
/// requests it reads with `scripts[n]`, one reply each, and closes when its script runs out.
struct Scripted {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// The request heads read, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

/// What every connection of a [`Scripted`] upstream shares.
#[derive(Clone)]
struct Seen {
    requests: Arc<Mutex<Vec<String>>>,
    more: Arc<Notify>,
}

async fn scripted(scripts: &[&[Reply]]) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut scripts: VecDeque<Vec<Reply>> = scripts.iter().map(|s| s.to_vec()).collect();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Seen {
        requests: Arc::new(Mutex::new(Vec::new())),
        more: Arc::new(Notify::new()),
    };
    let (count, shared) = (connections.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            let script = scripts.pop_front().unwrap_or_default();
            tokio::spawn(serve(stream, script, shared.clone()));
        }
    });
    Scripted {
        addr,
        connections,
        requests: seen.requests,
    }
}

async fn serve(mut stream: TcpStream, script: Vec<Reply>, seen: Seen) {
    let mut buf = Vec::new();
    for reply in script {
        // One request head (the client sends no bodies here).
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head: Vec<u8> = buf.drain(..end).collect();
        seen.requests
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        seen.more.notify_waiters();
        let bytes = match reply {
            Reply::Send(bytes) => bytes,
            Reply::SendOnceSeen(n, bytes) => {
                let waited = tokio::time::timeout(WAIT, async {
                    loop {
                        let more = seen.more.notified();
                        if seen.requests.lock().unwrap().len() >= n {
                            return;
                        }
                        more.await;
                    }
                });
                waited.await.expect("the requests to hold arrive");
                bytes
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(bytes.as_bytes()).await;
                return;
            }
            Reply::Close => return,
        };
        if stream.write_all(bytes.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn gateway_to(upstream: &Scripted) -> Gw {
    let yaml = r#"
gateway:
  routes:
  - id: up
    uri: http://${UP}
"#;
    gateway(yaml, None, &[("UP", &upstream.addr.to_string())]).await
}

#[tokio::test]
async fn a_chunked_response_is_read_whole_and_the_connection_reused() {
    let up = scripted(&[&[
        Reply::Send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Up: 1\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 7\r\n\r\n"),
        Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"),
    ]])
    .await;
    let gw = gateway_to(&up).await;
    let first = get(gw.addr, "/a").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text(), "hello world");
    assert_eq!(first.header("x-up").as_deref(), Some("1"));
    let second = get(gw.addr, "/b").await;
    assert_eq!(second.text(), "next");
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
    let requests = up.requests.lock().unwrap().clone();
    assert!(
        requests[0].starts_with("GET /a HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[1].starts_with("GET /b HTTP/1.1\r\n"),
        "{}",
        requests[1]
    );
}

#[tokio::test]
async fn a_response_delimited_by_the_close_is_read_to_the_end() {
    let up = scripted(&[
        &[Reply::SendAndClose(
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        )],
        &[Reply::Send(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        )],
    ])
    .await;
    let gw = gateway_to(&up).await;
    assert_eq!(get(gw.addr, "/").await.text(), "until the end");
    assert_eq!(get(gw.addr, "/").await.text(), "ok");
    assert_eq!(
        up.connections.load(Ordering::SeqCst),
        2,
        "a connection whose response ended with its close is not reused"
    );
}

#[tokio::test]
async fn interim_responses_are_skipped() {
    let up = scripted(&[&[Reply::Send(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\nmade",
    )]])
    .await;
    let gw = gateway_to(&up).await;
    let resp = get(gw.addr, "/").await;
    assert_eq!(resp.status, StatusCode::CREATED);
    assert_eq!(resp.text(), "made");
}

#[tokio::test]
async fn bytes_after_the_body_keep_the_connection_out_of_the_pool() {
    let up = scripted(&[
        // Five bytes announced, more sent: what follows is not a response weir asked for.
        &[Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged")],
        &[Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")],
    ])
    .await;
    let gw = gateway_to(&up).await;
    assert_eq!(get(gw.addr, "/").await.text(), "hello");
    assert_eq!(get(gw.addr, "/").await.text(), "real");
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn ambiguous_and_malformed_responses_are_a_502() {
    for reply in [
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        "SMTP ready\r\n\r\n",
    ] {
        let up = scripted(&[&[Reply::Send(reply)]]).await;
        let gw = gateway_to(&up).await;
        let resp = get(gw.addr, "/x").await;
        assert_error_body(&resp, 502, "/x", Some("up"));
        assert!(
            resp.text().contains("malformed"),
            "{reply:?}: {}",
            resp.text()
        );
    }
}

#[tokio::test]
async fn malformed_responses_to_requests_with_bodies_are_a_502_too() {
    // Requests with a body go over hyper's client: the same answer, the same message. hyper's
    // client hands a 101 over as a response; weir asked for no switch, so it is one too.
    for reply in [
        "HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "SMTP ready\r\n\r\n",
    ] {
        let up = scripted(&[&[Reply::Send(reply)]]).await;
        let gw = gateway_to(&up).await;
        let resp = Req::new(Method::POST, gw.addr, "/x").body("x").send().await;
        assert_error_body(&resp, 502, "/x", Some("up"));
        assert!(
            resp.text().contains("malformed"),
            "{reply:?}: {}",
            resp.text()
        );
    }
}

#[tokio::test]
async fn a_head_too_long_for_weirs_client_goes_through_hypers() {
    // A request head over 16 KiB is sent by hyper's client, which reads while it writes; the
    // pooled connection the bodiless client checked out for it goes back unused.
    let up = scripted(&[
        &[
            Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"),
            Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthird"),
        ],
        &[Reply::Send(
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlong",
        )],
    ])
    .await;
    let gw = gateway_to(&up).await;
    assert_eq!(get(gw.addr, "/1").await.text(), "first");
    let long = "a".repeat(20 * 1024);
    let resp = Req::get(gw.addr, "/2").header("x-long", &long).send().await;
    assert_eq!(resp.text(), "long");
    assert_eq!(get(gw.addr, "/3").await.text(), "third");
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    let requests = up.requests.lock().unwrap().clone();
    assert!(
        requests[1].contains(&long),
        "the long header went upstream whole"
    );
}

#[tokio::test]
async fn a_body_cut_short_is_not_passed_off_as_complete() {
    // A chunked body whose last chunk never comes: weir re-chunks it for the client, and must
    // not end it with a last chunk of its own.
    let up = scripted(&[&[Reply::SendAndClose(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )]])
    .await;
    let gw = gateway_to(&up).await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut received))
        .await
        .expect("the connection closes")
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(
        !text.contains("\r\n0\r\n\r\n"),
        "a complete chunked body: {text:?}"
    );
}

/// The first connection answers "one", then is closed by the upstream as the next request
/// arrives, unanswered; a second connection answers "two".
const ANSWER_THEN_CLOSE: [&[Reply]; 2] = [
    &[
        Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"),
        Reply::Close,
    ],
    &[Reply::Send(
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo",
    )],
];

#[tokio::test]
async fn an_idempotent_request_is_sent_again_when_a_pooled_connection_was_closed() {
    let up = scripted(&ANSWER_THEN_CLOSE).await;
    let gw = gateway_to(&up).await;
    assert_eq!(get(gw.addr, "/").await.text(), "one");
    assert_eq!(get(gw.addr, "/again").await.text(), "two");
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    assert_eq!(up.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_request_is_sent_again_once_and_on_a_new_connection() {
    // Two pooled connections, both closed by the upstream when the next request comes.
    const HELD: &str = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nheld";
    let up = scripted(&[
        &[Reply::SendOnceSeen(2, HELD), Reply::Close],
        &[Reply::SendOnceSeen(2, HELD), Reply::Close],
        &[Reply::Send(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
        )],
    ])
    .await;
    let gw = gateway_to(&up).await;
    let (a, b) = tokio::join!(get(gw.addr, "/a"), get(gw.addr, "/b"));
    assert_eq!((a.text(), b.text()), ("held".into(), "held".into()));
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
    assert_eq!(get(gw.addr, "/c").await.text(), "fresh");
    // Sent on one pooled connection, then on a new one: not on the other pooled one.
    assert_eq!(up.requests.lock().unwrap().len(), 4);
    assert_eq!(up.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_that_is_not_idempotent_is_not_sent_twice() {
    let up = scripted(&ANSWER_THEN_CLOSE).await;
    let gw = gateway_to(&up).await;
    assert_eq!(get(gw.addr, "/").await.text(), "one");
    // A POST without a body: the upstream may have acted on it before closing.
    let resp = Req::new(Method::POST, gw.addr, "/act").send().await;
    assert_error_body(&resp, 502, "/act", Some("up"));
    assert_eq!(up.requests.lock().unwrap().len(), 2);
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_head_request_reads_no_body_even_with_a_length() {
    let up = scripted(&[&[
        Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        Reply::Send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]])
    .await;
    let gw = gateway_to(&up).await;
    let head = Req::new(Method::HEAD, gw.addr, "/").send().await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length").as_deref(), Some("1000"));
    assert!(head.body.is_empty());
    assert_eq!(get(gw.addr, "/").await.text(), "ok");
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}
