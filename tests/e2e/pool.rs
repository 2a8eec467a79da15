//! The upstream connection pool: connections are reused, one the upstream closed is never
//! used, and `httpclient.pool` caps and ages what is kept.

use http::StatusCode;

use crate::backend::*;
use crate::support::*;

/// A gateway with one route to `b` and `httpclient.pool` set to `pool`.
async fn gateway_to(b: &Backend, pool: &str) -> Gw {
    let config = format!(
        r#"
gateway:
  httpclient:
    pool: {pool}
  routes:
  - id: b
    uri: http://${{B}}
"#
    );
    gateway(&config, None, &[("B", &b.addr.to_string())]).await
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let b = backend("b").await;
    let gw = gateway_to(&b, "{}").await;
    for _ in 0..20 {
        assert_eq!(get(gw.addr, "/x").await.status, StatusCode::OK);
    }
    assert_eq!(b.requests(), 20);
    assert_eq!(
        b.connections(),
        1,
        "every request after the first reuses the connection"
    );
}

#[tokio::test]
async fn a_connection_the_upstream_closed_is_not_used_again() {
    let b = backend("b").await;
    let gw = gateway_to(&b, "{}").await;
    for round in 1..=5 {
        assert_eq!(
            get(gw.addr, "/x").await.status,
            StatusCode::OK,
            "round {round}"
        );
        eventually("the backend holds one connection", || {
            b.open_connections() == 1
        })
        .await;
        // As an upstream whose keep-alive timeout ran out: it closes the idle connection.
        b.close_connections();
        eventually("the backend closed it", || b.open_connections() == 0).await;
    }
    assert_eq!(b.requests(), 5);
    assert_eq!(b.connections(), 5, "each round opened a new connection");
}

#[tokio::test]
async fn max_idle_per_host_caps_the_connections_kept() {
    let b = backend("b").await;
    let gw = gateway_to(&b, "{ max-idle-per-host: 1 }").await;
    // Three requests at once need three connections.
    b.set(Mode::Hold);
    let held: Vec<_> = (0..3)
        .map(|_| tokio::spawn(async move { get(gw.addr, "/held").await.status }))
        .collect();
    eventually("three requests held", || b.requests() == 3).await;
    b.set(Mode::Ok);
    b.release();
    for h in held {
        assert_eq!(h.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(b.connections(), 3);
    // Only one of them is kept; the backend sees the other two closed.
    eventually("two connections closed", || b.open_connections() == 1).await;
    assert_eq!(get(gw.addr, "/again").await.status, StatusCode::OK);
    assert_eq!(
        b.connections(),
        3,
        "the kept connection served the next request"
    );
}

#[tokio::test]
async fn requests_with_and_without_bodies_share_the_per_host_limit() {
    // A request with a body goes over hyper's client, one without over weir's own: the two
    // kinds of connection share `max-idle-per-host`, and a full pool makes room for the kind
    // just used by closing the other kind's oldest.
    let b = backend("b").await;
    let gw = gateway_to(&b, "{ max-idle-per-host: 1 }").await;
    let post = Req::new(http::Method::POST, gw.addr, "/with-body")
        .body("payload")
        .send()
        .await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(get(gw.addr, "/without").await.status, StatusCode::OK);
    eventually("the body request's connection closed", || {
        b.open_connections() == 1
    })
    .await;
    assert_eq!(get(gw.addr, "/without-again").await.status, StatusCode::OK);
    assert_eq!(
        b.connections(),
        2,
        "the second bodiless request reused the first one's connection"
    );
}

#[tokio::test]
async fn max_idle_zero_keeps_no_connection() {
    let b = backend("b").await;
    let gw = gateway_to(&b, "{ max-idle: 0 }").await;
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/x").await.status, StatusCode::OK);
    }
    assert_eq!(b.connections(), 3);
    eventually("no connection kept", || b.open_connections() == 0).await;
}

#[tokio::test]
async fn connections_idle_past_max_idle_time_are_closed() {
    let b = backend("b").await;
    let gw = gateway_to(&b, "{ max-idle-time: 300ms }").await;
    assert_eq!(get(gw.addr, "/x").await.status, StatusCode::OK);
    eventually("the idle connection closed by weir", || {
        b.open_connections() == 0
    })
    .await;
    assert_eq!(get(gw.addr, "/y").await.status, StatusCode::OK);
    assert_eq!(b.connections(), 2);
}

#[tokio::test]
async fn a_head_answer_leaves_the_connection_reusable() {
    let b = backend("b").await;
    let gw = gateway_to(&b, "{}").await;
    let head = Req::new(http::Method::HEAD, gw.addr, "/x").send().await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(get(gw.addr, "/x").await.status, StatusCode::OK);
    assert_eq!(b.connections(), 1);
}

#[tokio::test]
async fn a_response_dropped_before_its_end_does_not_leak_into_the_next() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    for _ in 0..3 {
        // A client that reads the start of a large answer and goes away.
        let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        stream
            .write_all(b"GET /bytes/50000000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut start = [0u8; 4096];
        let n = stream.read(&mut start).await.unwrap();
        assert!(start[..n].starts_with(b"HTTP/1.1 200"));
        drop(stream);
        // The rest of that answer must not be read as the next request's.
        let resp = get(gw.addr, "/bytes/10").await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.body.len(), 10);
    }
}
