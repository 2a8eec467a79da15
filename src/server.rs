//! Accepting connections and serving HTTP/1.1 and HTTP/2 (prior knowledge) on them.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use weir_filters::Body;

use crate::proxy::Conn;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `listener` with `handler` until `shutdown` turns true; then waits (bounded) for
/// open connections to finish their requests.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: watch::Receiver<bool>)
where
    H: Fn(Request<Incoming>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, handler, shutdown, None).await
}

/// As [`serve`], closing an HTTP/1 connection whose request head does not arrive whole within
/// `read_timeout` (`server.read-timeout`, OpenFaaS's `read_timeout`).
pub async fn serve_with<H, F>(
    listener: TcpListener,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    read_timeout: Option<Duration>,
) where
    H: Fn(Request<Incoming>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            let conn = Conn { peer, tls: false };
            let service = service_fn(move |request| {
                let response = handler(request, conn);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if let Some(limit) = read_timeout {
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limit);
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                }
                _ = async { let _ = conn_shutdown.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
