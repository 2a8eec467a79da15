//! The upstream client: HTTP/1.1 connections kept in a pool per upstream, each driven by the
//! request that holds it.
//!
//! No connection has a task of its own. A request checks a connection out of its upstream's
//! pool (or opens one), drives it while waiting for the response head, and hands it to the
//! response body ([`weir_filters::UpstreamBody`]), which drives it while the body is read and
//! puts it back in the pool at the end. A request and its connection thus live in one task:
//! no channel between tasks, no wake-up of a second task per request.
//!
//! Bodiless requests to `http://` upstreams, the common case, go over connections of weir's
//! own HTTP/1 client ([`super::http1`]); the others over hyper's client connections. Each
//! upstream's pool keeps both kinds.
//!
//! Idle connections are not polled. Checking one out looks at it first (a closed connection
//! or one the upstream closed is dropped, and the next one is tried); a sweep every few
//! seconds drops those idle for longer than `max-idle-time`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http::uri::PathAndQuery;
use http::{header, Method, Request, Response, Uri};
use http_body::{Body as _, Frame, SizeHint};
use hyper::client::conn::http1 as hyper_http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower::Service;
use weir_filters::{Body, BoxError, Lease, UpstreamBody};

use super::balance::Endpoint;
use super::headers::HeaderEdits;
use super::http1;
use super::upgrade::Upgrade;
use crate::config::PoolLimits;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type Io = hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request was sent, or being sent, over weir's own HTTP/1 client, and no response
    /// head came back.
    #[error(transparent)]
    Http1(http1::Http1Error),
    /// No connection could be opened (refused, unreachable, timed out, TLS failed).
    #[error("connecting failed: {0}")]
    Connect(#[source] BoxError),
    /// The request was sent, or being sent, and no response head came back.
    #[error("{0}")]
    Send(#[source] hyper::Error),
    /// The request's uri names no host.
    #[error("the uri `{0}` names no host to connect to")]
    NoHost(Uri),
}

impl ClientError {
    /// Whether connecting failed (nothing was sent).
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect(_))
    }

    /// Whether a response came back that was not valid HTTP/1 (or was framed ambiguously).
    pub fn is_malformed(&self) -> bool {
        match self {
            ClientError::Http1(e) => e.is_malformed(),
            ClientError::Send(e) => e.is_parse(),
            _ => false,
        }
    }
}

/// The upstream client. One per connect timeout and pool limits; cloned as [`HttpClient`].
pub struct Client {
    connector: Connector,
    pools: Arc<Pools>,
}

/// The client, shared by every route that uses it.
pub type HttpClient = Arc<Client>;

/// Every upstream's pool, and the counts the limits need.
struct Pools {
    limits: PoolLimits,
    by_key: Mutex<HashMap<Arc<str>, Arc<HostPool>>>,
    /// Idle connections over all upstreams.
    idle: AtomicUsize,
    /// Sweeps done so far: the clock idle connections are aged by, so that neither checking
    /// out nor handing back reads the time.
    sweeps: AtomicU64,
    sweeper: std::sync::Once,
}

/// An endpoint's pool in one client: see [`Client::pool`].
#[derive(Default)]
pub struct PoolCache(OnceLock<(Weak<Pools>, Arc<HostPool>)>);

impl std::fmt::Debug for PoolCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolCache")
    }
}

/// One upstream's idle connections.
pub struct HostPool {
    idle: Mutex<Idle>,
    pools: Weak<Pools>,
}

/// Idle connections of both kinds, the most recently used last in each. Boxed once when
/// opened, a connection moves between the pool and response bodies (as a `Box<dyn Lease>`)
/// without another allocation.
#[derive(Default)]
#[allow(clippy::vec_box)]
struct Idle {
    hyper: Vec<Box<Connection>>,
    plain: Vec<Box<Plain>>,
}

impl Idle {
    fn len(&self) -> usize {
        self.hyper.len() + self.plain.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the pool needs of a connection.
trait Pooled: Sized {
    /// Whether this idle connection can take a request now.
    fn usable(&mut self) -> bool;
    /// Whether the connection may wait for another request at all.
    fn reusable(&self) -> bool;
    /// The sweep count when it became idle.
    fn idle_since(&mut self) -> &mut u64;
    /// The idle connections of its kind.
    #[allow(clippy::vec_box)]
    fn of(idle: &mut Idle) -> &mut Vec<Box<Self>>;
    /// Closes the oldest idle connection of the other kind; `false` if there is none.
    fn evict_other(idle: &mut Idle) -> bool;
}

/// A connection of weir's own HTTP/1 client, for bodiless requests to `http://` upstreams.
struct Plain {
    conn: http1::Connection,
    /// The request head being sent, kept to send it again on another connection.
    head: Vec<u8>,
    pool: Weak<HostPool>,
    idle_since: u64,
}

/// A connection and its driver.
struct Connection {
    sender: hyper_http1::SendRequest<Body>,
    /// `None` once the connection has ended.
    driver: Option<hyper_http1::Connection<Io, Body>>,
    /// The body of the response being read, while the connection is lent to it.
    body: Option<hyper::body::Incoming>,
    pool: Weak<HostPool>,
    /// The sweep count when it became idle.
    idle_since: u64,
}

/// A request readied to be sent ([`Client::prepare`]).
// Moved once, into the future that sends it; boxing the request would add an allocation to
// every request with a body.
#[allow(clippy::large_enum_variant)]
pub enum Prepared {
    /// Its head, written for weir's own HTTP/1 client.
    Plain(PlainHead),
    /// The request, its header edits applied, for hyper's client.
    Hyper(Request<Body>),
    /// A request to switch to WebSocket, its header edits applied, for a connection of its
    /// own; the client's side of the switch.
    Upgrade(Request<Body>, Upgrade),
}

impl Prepared {
    /// `request` for hyper's client, `edits` applied to its headers.
    pub fn for_hyper(mut request: Request<Body>, edits: HeaderEdits) -> Self {
        edits.apply(request.headers_mut());
        Prepared::Hyper(request)
    }

    /// `request`, which asks to switch to WebSocket, `edits` applied to its headers and the
    /// request to switch put back.
    pub fn for_upgrade(mut request: Request<Body>, edits: HeaderEdits, upgrade: Upgrade) -> Self {
        edits.apply(request.headers_mut());
        super::upgrade::ask(request.headers_mut());
        Prepared::Upgrade(request, upgrade)
    }
}

/// A request head written for weir's own HTTP/1 client, with the pooled connection whose
/// buffer holds it (or, without one, the head itself).
pub struct PlainHead {
    pooled: Option<Box<Plain>>,
    head: Vec<u8>,
    method: Method,
}

impl Drop for PlainHead {
    /// A head never sent (the future that would have sent it was dropped first) gives its
    /// pooled connection back as it found it.
    fn drop(&mut self) {
        if let Some(mut connection) = self.pooled.take() {
            connection.head.clear();
            connection.release();
        }
    }
}

impl Client {
    /// A client that gives up connecting after `connect_timeout`.
    pub fn new(connect_timeout: Duration, limits: PoolLimits) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Self {
            connector,
            pools: Arc::new(Pools {
                limits,
                by_key: Mutex::default(),
                idle: AtomicUsize::new(0),
                sweeps: AtomicU64::new(0),
                sweeper: std::sync::Once::new(),
            }),
        }
    }

    /// The pool of connections to `endpoint`, remembered by the endpoint so that a balanced
    /// route's instances do not look theirs up on every request.
    pub fn pool(&self, endpoint: &Endpoint) -> Arc<HostPool> {
        if let Some((owner, pool)) = endpoint.pool.0.get() {
            // The Weak keeps the client's allocation, so its address cannot be reused.
            if Weak::as_ptr(owner) == Arc::as_ptr(&self.pools) {
                return pool.clone();
            }
        }
        let pool = self.lookup(endpoint);
        let _ = endpoint
            .pool
            .0
            .set((Arc::downgrade(&self.pools), pool.clone()));
        pool
    }

    fn lookup(&self, endpoint: &Endpoint) -> Arc<HostPool> {
        let mut by_key = self.pools.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key
            .entry(endpoint.key.clone())
            .or_insert_with(|| {
                Arc::new(HostPool {
                    idle: Mutex::default(),
                    pools: Arc::downgrade(&self.pools),
                })
            })
            .clone()
    }

    /// Sends `request` (its uri absolute, `http://` or `https://`), with a `Host` header from
    /// the uri when it has none.
    pub async fn request(&self, mut request: Request<Body>) -> Result<Response<Body>, ClientError> {
        let uri = request.uri();
        let Some(authority) = uri.authority().cloned() else {
            return Err(ClientError::NoHost(uri.clone()));
        };
        let endpoint = Endpoint::new(uri.scheme() == Some(&http::uri::Scheme::HTTPS), authority);
        let origin_form = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(origin_form);
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, endpoint.host.clone());
        }
        let pool = self.pool(&endpoint);
        let prepared = self.prepare(&pool, &endpoint, request, HeaderEdits::default());
        self.send_prepared(&pool, &endpoint, prepared).await
    }

    /// Readies `request` (uri in origin form) with `edits` for `endpoint`, a `pool` that must be
    /// `self.pool(endpoint)`: its head written for weir's own HTTP/1 client when that client
    /// sends it, else for hyper's ([`Prepared::for_hyper`]).
    pub fn prepare(
        &self,
        pool: &Arc<HostPool>,
        endpoint: &Endpoint,
        request: Request<Body>,
        edits: HeaderEdits,
    ) -> Prepared {
        match self.prepare_plain(pool, endpoint, &request, &edits) {
            Some(plain) => Prepared::Plain(plain),
            None => Prepared::for_hyper(request, edits),
        }
    }

    /// Sends what [`Client::prepare`] or [`Client::prepare_plain`] readied for `endpoint`. A
    /// future dropped before it is polled sends nothing and gives the pooled connection it
    /// took, if any, back to the pool.
    pub fn send_prepared<'a>(
        &'a self,
        pool: &'a Arc<HostPool>,
        endpoint: &'a Endpoint,
        prepared: Prepared,
    ) -> impl Future<Output = Result<Response<Body>, ClientError>> + Send + 'a {
        match prepared {
            Prepared::Plain(plain) => Either::Left(self.send_plain(pool, endpoint, plain)),
            Prepared::Hyper(request) => {
                Either::Right(Either::Left(self.send_hyper(pool, endpoint, request)))
            }
            // Boxed: rare, and its connect future would otherwise size every request's.
            Prepared::Upgrade(request, upgrade) => Either::Right(Either::Right(Box::pin(
                self.send_upgrade(endpoint, request, upgrade),
            ))),
        }
    }

    /// Sends a request that asks to switch to WebSocket over a new connection, never pooled
    /// (after a 101 it is no longer HTTP), driven by a task of its own until the switch hands
    /// its socket over or the response ends; a 101 carries what joins it to the client's.
    async fn send_upgrade(
        &self,
        endpoint: &Endpoint,
        request: Request<Body>,
        upgrade: Upgrade,
    ) -> Result<Response<Body>, ClientError> {
        let io = self.open(endpoint).await?;
        let (mut sender, driver) = hyper_http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| ClientError::Connect(e.into()))?;
        tokio::spawn(async move {
            if let Err(e) = driver.with_upgrades().await {
                tracing::debug!(error = %e, "upstream WebSocket connection ended with an error");
            }
        });
        let mut response = sender
            .send_request(request)
            .await
            .map_err(ClientError::Send)?;
        upgrade.agreed(&mut response);
        Ok(response.map(Body::Incoming))
    }

    /// Sends `request` over a connection of hyper's HTTP/1 client.
    async fn send_hyper(
        &self,
        pool: &Arc<HostPool>,
        endpoint: &Endpoint,
        mut request: Request<Body>,
    ) -> Result<Response<Body>, ClientError> {
        loop {
            let (mut connection, reused) = match pool.checkout::<Connection>() {
                Some(connection) => (connection, true),
                // Boxed: a connector's future is large, and most requests find a connection.
                None => (Box::pin(self.connect(pool, endpoint)).await?, false),
            };
            match connection.send(request).await {
                Ok(response) => {
                    self.start_sweeper();
                    let (head, body) = response.into_parts();
                    connection.body = Some(body);
                    return Ok(Response::from_parts(
                        head,
                        Body::Upstream(UpstreamBody::new(connection)),
                    ));
                }
                Err(mut failed) => match failed.take_message() {
                    // A pooled connection closed before the request went out: the next one
                    // (or a new one) gets it.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(ClientError::Send(failed.into_error())),
                },
            }
        }
    }

    /// The head of `request` with `edits`, written for weir's own HTTP/1 client (into a
    /// pooled connection's buffer when there is one): `None` when that client does not send the
    /// request (it has a body, `endpoint` is `https://`, ...; see [`http1::head::write_request`]).
    /// `request` is only read: its head is all the client needs.
    pub fn prepare_plain(
        &self,
        pool: &Arc<HostPool>,
        endpoint: &Endpoint,
        request: &Request<Body>,
        edits: &HeaderEdits,
    ) -> Option<PlainHead> {
        if endpoint.scheme != http::uri::Scheme::HTTP || !request.body().is_end_stream() {
            return None;
        }
        let mut pooled = pool.checkout::<Plain>();
        // The head goes into a pooled connection's buffer; only a new connection needs one.
        let mut head = Vec::new();
        let written = match &mut pooled {
            Some(connection) => http1::head::write_request(request, edits, &mut connection.head),
            None => http1::head::write_request(request, edits, &mut head),
        };
        if !written {
            if let Some(mut connection) = pooled {
                connection.head.clear();
                connection.release();
            }
            return None;
        }
        Some(PlainHead {
            pooled,
            head,
            method: request.method().clone(),
        })
    }

    /// Sends a head [`Client::prepare_plain`] wrote, over a connection of weir's own HTTP/1
    /// client.
    async fn send_plain(
        &self,
        pool: &Arc<HostPool>,
        endpoint: &Endpoint,
        plain: PlainHead,
    ) -> Result<Response<Body>, ClientError> {
        let mut plain = plain;
        let mut pooled = plain.pooled.take();
        let mut head = std::mem::take(&mut plain.head);
        let method = std::mem::replace(&mut plain.method, Method::GET);
        loop {
            let (mut connection, reused) = match pooled.take() {
                Some(connection) => (connection, true),
                // Boxed: a connector's future is large, and most requests find a connection.
                None => (Box::pin(self.connect_plain(pool, endpoint)).await?, false),
            };
            if !head.is_empty() {
                connection.head = std::mem::take(&mut head);
            }
            match connection.conn.send(&connection.head, &method).await {
                Ok(head) => {
                    // Emptied: an idle connection holds no request head (which may carry
                    // credentials) as data; its bytes stay in the buffer's allocation until
                    // the next request's overwrite them.
                    connection.head.clear();
                    self.start_sweeper();
                    let (parts, ()) = head.response.into_parts();
                    return Ok(Response::from_parts(
                        parts,
                        Body::Upstream(UpstreamBody::new(connection)),
                    ));
                }
                // A pooled connection the upstream closed as the request went out: a new
                // connection gets it, once (one that fails is not tried again).
                Err(failed) if reused && failed.retry_safe => {
                    tracing::debug!(error = %super::error_chain(&failed.error), "pooled upstream connection failed; sending again on a new one");
                    head = std::mem::take(&mut connection.head);
                }
                Err(failed) => return Err(ClientError::Http1(failed.error)),
            }
        }
    }

    async fn connect_plain(
        &self,
        pool: &Arc<HostPool>,
        endpoint: &Endpoint,
    ) -> Result<Box<Plain>, ClientError> {
        match self.open(endpoint).await? {
            hyper_rustls::MaybeHttpsStream::Http(io) => Ok(Box::new(Plain {
                conn: http1::Connection::new(io.into_inner()),
                head: Vec::new(),
                pool: Arc::downgrade(pool),
                idle_since: 0,
            })),
            hyper_rustls::MaybeHttpsStream::Https(_) => Err(ClientError::Connect(
                "a plain http connection came back as https".into(),
            )),
        }
    }

    /// Opens a connection to `endpoint`: TCP, and TLS for `https://`.
    async fn open(&self, endpoint: &Endpoint) -> Result<Io, ClientError> {
        let uri = Uri::builder()
            .scheme(endpoint.scheme.clone())
            .authority(endpoint.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| ClientError::Connect(e.into()))?;
        self.connector
            .clone()
            .call(uri)
            .await
            .map_err(ClientError::Connect)
    }

    async fn connect(
        &self,
        pool: &Arc<HostPool>,
        endpoint: &Endpoint,
    ) -> Result<Box<Connection>, ClientError> {
        let io = self.open(endpoint).await?;
        let (sender, driver) = hyper_http1::Builder::new()
            .writev(false)
            .handshake(io)
            .await
            .map_err(|e| ClientError::Connect(e.into()))?;
        Ok(Box::new(Connection {
            sender,
            driver: Some(driver),
            body: None,
            pool: Arc::downgrade(pool),
            idle_since: 0,
        }))
    }

    /// Starts, once and where a runtime runs, the task that closes connections idle too long.
    fn start_sweeper(&self) {
        self.pools.sweeper.call_once(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            let pools = Arc::downgrade(&self.pools);
            let every = (self.pools.limits.max_idle_time / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(15));
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(pools) = pools.upgrade() else { return };
                    pools.sweep(every);
                }
            });
        });
    }
}

impl Pools {
    /// Ages idle connections by one sweep; closes those idle for `max_idle_time` and those
    /// their upstream closed; forgets upstreams with nothing left.
    fn sweep(&self, every: Duration) {
        let now = self.sweeps.fetch_add(1, Ordering::Relaxed) + 1;
        let max_age = self.limits.max_idle_time.as_nanos() / every.as_nanos().max(1);
        let max_age = u64::try_from(max_age).unwrap_or(u64::MAX).max(1);
        let mut by_key = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        by_key.retain(|_, pool| {
            let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            let before = idle.len();
            idle.hyper
                .retain_mut(|c| now.saturating_sub(c.idle_since) < max_age && c.usable());
            idle.plain
                .retain_mut(|c| now.saturating_sub(c.idle_since) < max_age && c.usable());
            self.idle.fetch_sub(before - idle.len(), Ordering::Relaxed);
            // A pool only the map holds, with nothing idle, is of no use to anyone.
            !idle.is_empty() || Arc::strong_count(pool) > 1
        });
    }
}

impl HostPool {
    /// The most recently used idle connection of its kind that can take a request.
    fn checkout<C: Pooled>(&self) -> Option<Box<C>> {
        loop {
            let connection =
                C::of(&mut self.idle.lock().unwrap_or_else(|e| e.into_inner())).pop()?;
            if let Some(pools) = self.pools.upgrade() {
                pools.idle.fetch_sub(1, Ordering::Relaxed);
            }
            let mut connection = connection;
            if connection.usable() {
                return Some(connection);
            }
        }
    }

    /// Keeps `connection` for another request, unless the limits say otherwise.
    fn put<C: Pooled>(&self, mut connection: Box<C>) {
        let Some(pools) = self.pools.upgrade() else {
            return;
        };
        if !connection.reusable() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= pools.limits.max_idle_per_host {
            // Full: room is made by closing the oldest idle connection of the other kind, so
            // that one kind cannot keep the other out of the pool. This one takes its place
            // in the count of all idle connections.
            if !C::evict_other(&mut idle) {
                return;
            }
        } else if pools.idle.fetch_add(1, Ordering::Relaxed) >= pools.limits.max_idle {
            pools.idle.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        *connection.idle_since() = pools.sweeps.load(Ordering::Relaxed);
        C::of(&mut idle).push(connection);
    }
}

impl Pooled for Connection {
    /// Polls the connection once, without a waker, which notices an upstream's close and
    /// lets the connection ask for the next request.
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        if self.poll_connection(&mut cx).is_ready() {
            return false;
        }
        self.sender.is_ready()
    }

    fn reusable(&self) -> bool {
        self.driver.is_some()
    }

    fn idle_since(&mut self) -> &mut u64 {
        &mut self.idle_since
    }

    fn of(idle: &mut Idle) -> &mut Vec<Box<Self>> {
        &mut idle.hyper
    }

    fn evict_other(idle: &mut Idle) -> bool {
        !idle.plain.is_empty() && {
            idle.plain.remove(0);
            true
        }
    }
}

impl Pooled for Plain {
    fn usable(&mut self) -> bool {
        self.conn.usable()
    }

    fn reusable(&self) -> bool {
        self.conn.reusable()
    }

    fn idle_since(&mut self) -> &mut u64 {
        &mut self.idle_since
    }

    fn of(idle: &mut Idle) -> &mut Vec<Box<Self>> {
        &mut idle.plain
    }

    fn evict_other(idle: &mut Idle) -> bool {
        !idle.hyper.is_empty() && {
            idle.hyper.remove(0);
            true
        }
    }
}

impl Lease for Plain {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn.poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.conn.size_hint()
    }

    fn release(mut self: Box<Self>) {
        if let Some(pool) = self.pool.upgrade() {
            self.conn.rest();
            pool.put(self);
        }
    }
}

impl Connection {
    /// Drives the connection: writes the request and reads the response into its body. Ready
    /// once the connection has ended.
    fn poll_connection(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(driver) = &mut self.driver else {
            return Poll::Ready(());
        };
        match Pin::new(driver).poll(cx) {
            Poll::Ready(result) => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                // Dropping the driver answers whatever still waits on it with an error.
                self.driver = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Sends `request` and drives the connection until the response head arrives.
    async fn send(
        &mut self,
        request: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, hyper::client::conn::TrySendError<Request<Body>>>
    {
        let mut sent = std::pin::pin!(self.sender.try_send_request(request));
        std::future::poll_fn(|cx| {
            // Driving first writes the request, then reads the response into `sent`.
            let _ = self.poll_connection(cx);
            sent.as_mut().poll(cx)
        })
        .await
    }
}

impl Lease for Connection {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Driving the connection reads the socket into the body; once the connection has
        // ended, the body still yields what was read.
        let _ = self.poll_connection(cx);
        match &mut self.body {
            Some(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |body| body.size_hint())
    }

    fn release(mut self: Box<Self>) {
        self.body = None;
        if let Some(pool) = self.pool.upgrade() {
            pool.put(self);
        }
    }
}
