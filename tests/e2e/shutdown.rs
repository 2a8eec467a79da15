//! Graceful shutdown of the real binary: on SIGTERM it stops accepting, lets the requests in
//! flight finish, closes connections that are only waiting for a head, and exits.

use std::time::Duration;

use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend::eventually;
use crate::support::*;

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_closes_waiting_connections() {
    let origin = origin().await;
    let path = write_config(
        "shutdown.yaml",
        &format!(
            "server:\n  read-timeout: 300ms\ngateway:\n  routes:\n  - id: all\n    uri: http://{}\n",
            origin.addr
        ),
    );
    let mut weir = spawn_weir_on(&path);
    let addr = weir.addr;
    // A client that never finishes its head, and a request the origin takes 800 ms to answer.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let in_flight = tokio::spawn(async move { get(addr, "/delay/800").await });
    eventually("the request reaches the origin", || origin.requests() == 1).await;

    weir.signal("TERM");
    let resp = in_flight.await.unwrap();
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "the request in flight finishes"
    );
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(WAIT, slow.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the connection waiting for a head is closed"
    );
    // Shutdown does not wait for that connection until its 30 s drain limit: the read timeout
    // still applies to it.
    let status = weir.exited().await;
    assert!(status.success(), "weir exits cleanly: {status}");
    assert!(
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr))
            .await
            .is_ok_and(|c| c.is_err()),
        "nothing listens any more"
    );
}
