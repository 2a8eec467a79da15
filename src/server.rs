//! Accepting connections and serving HTTP/1.1 and HTTP/2 (prior knowledge) on them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project::pin_project;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use weir_filters::{Body, BoxError};

use crate::proxy::raw_framing::{FramingLog, Watched};
use crate::proxy::Conn;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(30);

/// A listener's time limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// An HTTP/1 connection whose request head does not arrive whole within this is closed
    /// (`server.read-timeout`, OpenFaaS's `read_timeout`).
    pub read: Option<Duration>,
    /// A request must be answered, its response written to the end, within this of its head
    /// arriving (`server.write-timeout`, OpenFaaS's `write_timeout`): a response head not ready
    /// by then is a 504, and a body still being written is cut off.
    pub write: Option<Duration>,
}

/// Serves `listener` with `handler` until `shutdown` turns true; then waits (bounded) for
/// open connections to finish their requests.
pub async fn serve<H, F>(listener: TcpListener, handler: H, shutdown: watch::Receiver<bool>)
where
    H: Fn(Request<Incoming>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, handler, shutdown, Timeouts::default()).await
}

/// As [`serve`], with time limits. `handler` gets the request's deadline in [`Conn`] and
/// answers a response head on time; the body is cut off here.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    timeouts: Timeouts,
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
        let conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            let conn = Conn {
                peer,
                tls: false,
                deadline: None,
                framing: None,
            };
            let framing = Arc::new(FramingLog::default());
            let io = Watched::new(stream, framing.clone());
            let service = service_fn(move |request| {
                let deadline = timeouts.write.map(|limit| Instant::now() + limit);
                let conn = Conn {
                    deadline,
                    framing: framing.next_request(),
                    ..conn
                };
                let response = handler(request, conn);
                async move {
                    let response = response.await;
                    Ok::<_, Infallible>(response.map(|body| TimedBody::new(body, deadline)))
                }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if let Some(limit) = timeouts.read {
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limit);
            }
            let connection = builder.serve_connection_with_upgrades(io, service);
            tokio::pin!(connection);
            // Runs the connection until it ends or shutdown starts. The shutdown signal is
            // polled once to register, then only when it has changed: not on every wake-up of
            // the connection.
            let probe = conn_shutdown.clone();
            let mut signal = conn_shutdown;
            let mut stop = std::pin::pin!(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            });
            let mut registered = false;
            let ended = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                if !registered || probe.has_changed().unwrap_or(true) {
                    registered = true;
                    if stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                }
                Poll::Pending
            })
            .await;
            let result = match ended {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// A response body cut off at its request's write deadline.
#[pin_project]
struct TimedBody {
    #[pin]
    body: Body,
    #[pin]
    deadline: Option<Sleep>,
}

impl TimedBody {
    /// A body held in memory is written at once and needs no deadline (weir's own 504 for a
    /// late head among them); a streamed one gets it.
    fn new(body: Body, deadline: Option<Instant>) -> Self {
        let streamed = matches!(body, Body::Incoming(_) | Body::Upstream(_) | Body::Boxed(_));
        Self {
            deadline: deadline.filter(|_| streamed).map(tokio::time::sleep_until),
            body,
        }
    }
}

/// The error that cuts a response body off at its write deadline.
#[derive(Debug, thiserror::Error)]
#[error("the response was not written within server.write-timeout")]
struct WriteTimeout;

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(deadline) = this.deadline.as_pin_mut() {
            if deadline.poll(cx).is_ready() {
                return Poll::Ready(Some(Err(WriteTimeout.into())));
            }
        }
        this.body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
