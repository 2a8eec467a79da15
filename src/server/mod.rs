//! Accepting connections, plain or TLS, and serving HTTP/1.1 and HTTP/2 on them (HTTP/2 by
//! prior knowledge, or chosen by ALPN over TLS).

mod date;
pub mod http1;
mod replay;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use pin_project::pin_project;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use weir_filters::{Body, BoxError};

use crate::proxy::raw_framing::{FramingLog, Watched};
use crate::proxy::Conn;
use http1::{Ended, Serving};
use replay::Replayed;

/// How long open connections get to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(30);

/// A listener's time limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// An HTTP/1 connection whose next request head does not arrive whole within this of the
    /// connection opening or of the previous response ending is closed; an HTTP/2 connection
    /// with no request in progress for this long is sent GOAWAY
    /// (`server.read-timeout`, OpenFaaS's `read_timeout`; see [`HeadWait`]).
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
    H: Fn(Request<Body>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, handler, shutdown, Timeouts::default(), None).await
}

/// As [`serve`], with time limits and, with `tls`, TLS. `handler` gets the request's deadline
/// in [`Conn`] and answers a response head on time; the body is cut off here.
///
/// Each connection starts on weir's own HTTP/1 server ([`http1`]), which hands it to hyper
/// (HTTP/1 and HTTP/2) at the first request it does not serve itself; a TLS connection whose
/// client chose HTTP/2 by ALPN goes to hyper at once.
pub async fn serve_with<H, F>(
    listener: TcpListener,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    timeouts: Timeouts,
    tls: Option<tls::Current>,
) where
    H: Fn(Request<Body>, Conn) -> F + Clone + Send + Sync + 'static,
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
        let tls_config = tls.as_ref().map(|current| current());
        let serving = Serving {
            handler: handler.clone(),
            conn: Conn {
                peer,
                tls: tls_config.is_some(),
                deadline: None,
                framing: None,
            },
            timeouts,
            wait: timeouts.read.map(|limit| Arc::new(HeadWait::new(limit))),
        };
        let stop = Stop::new(shutdown.clone());
        // Spawned as they are, not inside another future: a plain connection's task polls
        // weir's server with nothing in between.
        match tls_config {
            None => connections.spawn(serve_connection(stream, serving, stop)),
            Some(config) => connections.spawn(serve_tls(config, stream, serving, stop)),
        };
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

/// Runs the TLS handshake on a connection, then serves it: HTTP/2 (chosen by ALPN) on hyper,
/// anything else as a plain connection is served.
async fn serve_tls<H, F>(
    config: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    serving: Serving<H>,
    mut stop: Stop,
) where
    H: Fn(Request<Body>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    // A handshake under way when shutdown starts is given up: no request came yet.
    let stopping = std::future::poll_fn(|cx| match stop.poll_stopping(cx) {
        true => Poll::Ready(None),
        false => Poll::Pending,
    });
    let accepted = tokio::select! {
        stream = tls::accept(config, stream, serving.timeouts.read) => stream,
        none = stopping => none,
    };
    let Some(stream) = accepted else {
        return;
    };
    if tls::is_h2(&stream) {
        let head_timer = HeadTimer::new(serving.wait.as_deref());
        let io = Replayed::new(BytesMut::new(), stream);
        serve_hyper(io, true, serving, stop, head_timer).await;
    } else {
        serve_connection(stream, serving, stop).await;
    }
}

/// Serves a connection: on weir's own HTTP/1 server, then on hyper from the first request it
/// does not serve.
async fn serve_connection<S, H, F>(stream: S, serving: Serving<H>, mut stop: Stop)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Body>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut head_timer = HeadTimer::new(serving.wait.as_deref());
    match http1::serve(stream, &serving, &mut stop, &mut head_timer).await {
        Ended::Closed => {}
        Ended::HandOver {
            stream,
            read,
            served,
        } => {
            let io = Replayed::new(read, stream);
            serve_hyper(io, !served, serving, stop, head_timer).await;
        }
    }
}

/// Serves the rest of a connection with hyper: HTTP/1, or also HTTP/2 (prior knowledge, or
/// chosen by ALPN) when `any_version` (no request was answered on it yet).
async fn serve_hyper<S, H, F>(
    io: Replayed<S>,
    any_version: bool,
    serving: Serving<H>,
    mut stop: Stop,
    mut head_timer: HeadTimer,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Body>, Conn) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let Serving {
        handler,
        conn,
        timeouts,
        wait,
    } = serving;
    let peer = conn.peer;
    let framing = Arc::new(FramingLog::default());
    let io = Watched::new(io, framing.clone());
    let service_wait = wait.clone();
    let service_framing = framing.clone();
    let service = service_fn(move |request: Request<Incoming>| {
        let deadline = timeouts.write.map(|limit| Instant::now() + limit);
        let busy = service_wait.as_ref().map(HeadWait::begin);
        let conn = Conn {
            deadline,
            framing: service_framing.next_request(),
            ..conn
        };
        // Called inside the future: hyper calls this closure on the connection's task (for
        // HTTP/2, every stream's), and may drop the future unpolled; the handler's synchronous
        // part (routing, the chain's first steps) belongs to the request's own task.
        let handler = handler.clone();
        async move {
            let mut response = handler(request.map(Body::Incoming), conn).await;
            // A WebSocket's 101: its tunnel opens once hyper has written it.
            crate::proxy::upgrade::open(&mut response);
            Ok::<_, Infallible>(response.map(|body| TimedBody::new(body, deadline, busy)))
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    if !any_version {
        builder = builder.http1_only();
    }
    builder.http1().writev(false);
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    // Runs the connection until it ends or its read timeout passes; when shutdown starts,
    // asks it to finish what is in progress and goes on.
    let mut stopping = false;
    // HTTP/2 idle for the read timeout is sent GOAWAY; if it has not ended another read
    // timeout later (a client that never answers GOAWAY's PING keeps it open), it is dropped.
    let mut going_away: Option<Pin<Box<Sleep>>> = None;
    let ended = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = connection.as_mut().poll(cx) {
            return Poll::Ready(Some(result));
        }
        if let Some(wait) = &wait {
            if going_away.is_none() && head_timer.poll_timed_out(cx, wait) {
                if !framing.is_http2() {
                    return Poll::Ready(None);
                }
                going_away = Some(Box::pin(tokio::time::sleep(wait.limit)));
                if !stopping {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
                // The connection may be done now, and the deadline needs a first poll.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        if let Some(deadline) = &mut going_away {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        if !stopping && stop.poll_stopping(cx) {
            stopping = true;
            connection.as_mut().graceful_shutdown();
            // The connection may be done now: look again at once.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await;
    let Some(result) = ended else {
        tracing::debug!(peer = %peer, "no request within server.read-timeout");
        return;
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// A connection's view of the shutdown signal, cheap enough to look at on every wake-up: the
/// signal's future (which takes a lock when polled) is polled once to register, then only
/// after the signal has changed.
pub(crate) struct Stop {
    probe: watch::Receiver<bool>,
    signal: Pin<Box<dyn Future<Output = ()> + Send>>,
    registered: bool,
    stopped: bool,
}

impl Stop {
    fn new(mut signal: watch::Receiver<bool>) -> Self {
        Self {
            probe: signal.clone(),
            signal: Box::pin(async move {
                let _ = signal.wait_for(|stop| *stop).await;
            }),
            registered: false,
            stopped: false,
        }
    }

    /// Whether shutdown has started; if not, `cx` is woken when it does.
    fn poll_stopping(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.stopped && (!self.registered || self.probe.has_changed().unwrap_or(true)) {
            self.registered = true;
            self.stopped = self.signal.as_mut().poll(cx).is_ready();
        }
        self.stopped
    }

    /// Whether shutdown has started.
    fn stopping(&self) -> bool {
        self.stopped
            || match self.probe.has_changed() {
                Ok(changed) => changed && *self.probe.borrow(),
                Err(_) => true,
            }
    }
}

/// A connection's one timer for `server.read-timeout`, looked at only once it has fired (see
/// [`HeadWait`]).
pub(crate) struct HeadTimer {
    timer: Option<Pin<Box<Sleep>>>,
    registered: bool,
}

impl HeadTimer {
    fn new(wait: Option<&HeadWait>) -> Self {
        Self {
            timer: wait
                .and_then(|wait| wait.opened.checked_add(wait.limit))
                .map(|at| Box::pin(tokio::time::sleep_until(at))),
            registered: false,
        }
    }

    /// Whether the connection has waited longer than the limit for a request head (HTTP/2: has
    /// had no request in progress for that long); if not, `cx` is woken when the timer next
    /// fires.
    fn poll_timed_out(&mut self, cx: &mut Context<'_>, wait: &HeadWait) -> bool {
        let Some(timer) = &mut self.timer else {
            return false;
        };
        if self.registered && !timer.is_elapsed() {
            return false;
        }
        self.registered = true;
        match wait.look(Instant::now()) {
            Look::TimedOut => true,
            Look::Never => {
                self.timer = None;
                false
            }
            Look::Later(at) => {
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                // Unconstrained: with the task's budget spent by the connection, a plain poll
                // would register no waker, and the timer would fire unheard.
                let _ = Pin::new(&mut tokio::task::unconstrained(timer.as_mut())).poll(cx);
                false
            }
        }
    }
}

/// What a connection's read timeout says when its timer fires.
enum Look {
    /// Idle for the whole limit: close the connection.
    TimedOut,
    /// Look again at this time.
    Later(Instant),
    /// A limit too large to reach: no timeout.
    Never,
}

/// One connection's `server.read-timeout`: the next request head must arrive whole within the
/// limit of the connection opening or of the previous response ending. On HTTP/2, where
/// requests overlap, it is an idle limit: a connection with no request in progress for that
/// long is told to go away.
///
/// hyper's own header timer allocates a timer and registers it for every request. This keeps
/// one timer per connection, and looks at it only when it fires: a request marks the
/// connection busy ([`Busy`]), the end of the last one notes the time, and the timer, when it
/// fires, closes the connection or sets itself for the time the limit will next be reached.
/// A request is done with when its response has ended: a client still sending the body of a
/// request answered early has the limit to finish it.
pub(crate) struct HeadWait {
    /// Requests in progress (HTTP/2 runs several at once).
    busy: AtomicU32,
    /// When the connection last became idle, in nanoseconds after `opened`.
    idle_since: AtomicU64,
    opened: Instant,
    /// `server.read-timeout`.
    limit: Duration,
}

impl HeadWait {
    fn new(limit: Duration) -> Self {
        Self {
            busy: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            opened: Instant::now(),
            limit,
        }
    }

    /// Marks the connection busy until the returned guard is dropped, with the response.
    fn begin(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// What to do when the timer fires at `now`.
    fn look(&self, now: Instant) -> Look {
        let limit = self.limit;
        if self.busy.load(Ordering::Acquire) > 0 {
            return now.checked_add(limit).map_or(Look::Never, Look::Later);
        }
        let idle_since =
            self.opened + Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        match idle_since.checked_add(limit) {
            Some(deadline) if deadline > now => Look::Later(deadline),
            Some(_) => Look::TimedOut,
            None => Look::Never,
        }
    }
}

/// A request in progress on a connection with a read timeout; see [`HeadWait`].
pub(crate) struct Busy(Arc<HeadWait>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            let idle_since = u64::try_from(self.0.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.0.idle_since.store(idle_since, Ordering::Release);
        }
    }
}

/// A response body cut off at its request's write deadline. It holds its request's
/// [`Busy`] mark: the connection waits for no head while it is written.
#[pin_project]
pub(crate) struct TimedBody {
    #[pin]
    body: Body,
    #[pin]
    deadline: Option<Sleep>,
    _busy: Option<Busy>,
}

impl TimedBody {
    /// A body held in memory is written at once and needs no deadline (weir's own 504 for a
    /// late head among them); a streamed one gets it.
    pub(crate) fn new(body: Body, deadline: Option<Instant>, busy: Option<Busy>) -> Self {
        let streamed = matches!(body, Body::Incoming(_) | Body::Upstream(_) | Body::Boxed(_));
        Self {
            deadline: deadline.filter(|_| streamed).map(tokio::time::sleep_until),
            body,
            _busy: busy,
        }
    }
}

impl TimedBody {
    /// Whether the body's write deadline has passed; if not, `cx` is woken when it does.
    pub(crate) fn poll_deadline(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        self.project()
            .deadline
            .as_pin_mut()
            .is_some_and(|deadline| deadline.poll(cx).is_ready())
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
