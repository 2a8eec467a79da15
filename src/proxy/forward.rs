//! The innermost services of a chain: the forwarder (one pooled client for all routes),
//! `forward:` dispatch, and `no://op`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use http::uri::PathAndQuery;
use http::{header, HeaderName, HeaderValue, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use ipnet::IpNet;
use tower::Service;
use weir_filters::{Body, BoxFuture, CutOff, Exchange, HttpService, UpstreamFailure};

use super::balance::{Endpoint, InFlight, Instance, Service as BalancedService};
use super::client::{Client, HostPool, HttpClient, Prepared};
use super::headers::{remove_hop_by_hop, EditValue, HeaderEdits, ShortValue};
use super::{dispatch, error_chain, upgrade, Conn};
use crate::compile::RouteTable;
use crate::config::PoolLimits;

/// The forwarding clients, one per distinct connect timeout and pool limits (almost always
/// one). They are kept across reloads, and with them their pooled connections.
#[derive(Default)]
pub struct Upstream {
    clients: Mutex<HashMap<(Duration, PoolLimits), HttpClient>>,
}

impl Upstream {
    /// The client that connects with `connect_timeout` and pools by `limits`.
    pub fn client(&self, connect_timeout: Duration, limits: PoolLimits) -> HttpClient {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry((connect_timeout, limits))
            .or_insert_with(|| Arc::new(Client::new(connect_timeout, limits)))
            .clone()
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
static HOST: HeaderName = header::HOST;
static FORWARDED: HeaderName = header::FORWARDED;

/// Where a forwarder sends requests.
pub enum Target {
    /// Always the same upstream (`http://host:port`).
    Fixed(Arc<Endpoint>),
    /// An instance of a service, picked per request (`lb://NAME`).
    Balanced(Arc<BalancedService>),
}

/// Sends the exchange to one upstream and streams its response back.
pub struct Forwarder {
    client: HttpClient,
    target: Target,
    response_timeout: Option<Duration>,
    trusted_proxies: Vec<IpNet>,
}

impl Forwarder {
    /// A forwarder to `target`.
    pub fn new(
        client: HttpClient,
        target: Target,
        response_timeout: Option<Duration>,
        trusted_proxies: Vec<IpNet>,
    ) -> Self {
        Self {
            client,
            target,
            response_timeout,
            trusted_proxies,
        }
    }

    /// The forwarder as the innermost service of a chain: one allocation per request (the
    /// boxed future).
    pub fn into_service(self) -> HttpService {
        let this = Arc::new(self);
        let lent = this.clone();
        HttpService::from_fns(
            move |exchange| this.forward(exchange),
            move |exchange| lent.forward_borrowed(exchange),
        )
    }
}

fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        source = e.source();
    }
    false
}

impl Forwarder {
    /// The changes the exchange's request headers need on the way to `endpoint` (hop-by-hop
    /// headers dropped, `X-Forwarded-*` and `Host` set), which the client makes as it sends it.
    fn edits(&self, exchange: &Exchange, endpoint: &Endpoint) -> HeaderEdits {
        let Exchange {
            request,
            client,
            tls,
            preserve_host,
            stripped_prefix,
            ..
        } = exchange;
        let (client, tls, preserve_host) = (*client, *tls, *preserve_host);
        let headers = request.headers();
        let mut edits = HeaderEdits::dropping_hop_by_hop(headers);
        if !preserve_host {
            // First, where a client writes it.
            edits.set(&HOST, EditValue::Header(endpoint.host.clone()));
        }

        let peer = client.ip();
        let trusted = weir_predicates::remote_addr::contains(&self.trusted_proxies, peer);
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        // A peer's own X-Forwarded-* values count only when it is trusted: only then are
        // they looked up. A header the request's `Connection` names is not its own.
        let earlier = |name: &HeaderName| {
            if trusted && !edits.drops_hop_by_hop(name) {
                headers.get(name)
            } else {
                None
            }
        };
        let existing = earlier(&X_FORWARDED_FOR)
            .and_then(|value| value.to_str().ok())
            .filter(|v| !v.trim().is_empty());
        let xff = match existing {
            Some(existing) => HeaderValue::from_str(&format!("{existing}, {peer}"))
                .ok()
                .map(EditValue::Header),
            // The address alone, written on the stack.
            None => Some(EditValue::Short(ShortValue::ip(peer))),
        };
        let keep_proto = earlier(&X_FORWARDED_PROTO).is_some();
        let original_host = headers.get(header::HOST);
        let keep_host = earlier(&X_FORWARDED_HOST).is_some();
        let keep_port = earlier(&X_FORWARDED_PORT).is_some();
        // Like the others: a prefix claimed by a peer that is not trusted is dropped; a trusted
        // proxy's prefix is kept, with the one StripPrefix removed here after it.
        let earlier_prefix = earlier(&X_FORWARDED_PREFIX).and_then(|v| Some((v, v.to_str().ok()?)));
        let prefix = match (earlier_prefix, stripped_prefix) {
            (Some((_, earlier)), Some(ours)) => {
                HeaderValue::from_str(&format!("{}{ours}", earlier.trim_end_matches('/'))).ok()
            }
            (Some((earlier, _)), None) => Some(earlier.clone()),
            (None, Some(ours)) => HeaderValue::from_str(ours).ok(),
            (None, None) => None,
        };

        if let Some(xff) = xff {
            edits.set(&X_FORWARDED_FOR, xff);
        }
        if !keep_proto {
            let proto = if tls { "https" } else { "http" };
            edits.set(
                &X_FORWARDED_PROTO,
                EditValue::Header(HeaderValue::from_static(proto)),
            );
        }
        // Without a Host to report (HTTP/1.0), what the peer claims goes no further either.
        if !keep_host {
            match original_host {
                Some(host) => edits.set(&X_FORWARDED_HOST, EditValue::Header(host.clone())),
                None => edits.remove(&X_FORWARDED_HOST),
            }
        }
        if !keep_port {
            match original_host.map(HeaderValue::as_bytes) {
                Some(host) => {
                    let port = memchr::memrchr(b':', host)
                        .and_then(|i| ShortValue::port(&host[i + 1..]))
                        .map_or_else(
                            || {
                                EditValue::Header(HeaderValue::from_static(if tls {
                                    "443"
                                } else {
                                    "80"
                                }))
                            },
                            EditValue::Short,
                        );
                    edits.set(&X_FORWARDED_PORT, port);
                }
                None => edits.remove(&X_FORWARDED_PORT),
            }
        }
        match prefix {
            Some(prefix) => edits.set(&X_FORWARDED_PREFIX, EditValue::Header(prefix)),
            None => edits.remove(&X_FORWARDED_PREFIX),
        }
        // RFC 7239 `Forwarded` is not produced by weir; one from a peer that is not trusted
        // is a forgery waiting to be believed.
        if !trusted {
            edits.remove(&FORWARDED);
        }

        edits
    }
}

/// `request` as it goes upstream: its uri in origin form (the client sends the uri as it is),
/// HTTP/1.1.
fn origin_form(mut request: http::Request<Body>) -> http::Request<Body> {
    if request.uri().scheme().is_some() || request.uri().path_and_query().is_none() {
        let pq = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(pq);
    }
    *request.version_mut() = Version::HTTP_11;
    request
}

/// An attempt's upstream, picked before its request goes out, and what its outcome is
/// reported with.
struct Picked {
    endpoint: Arc<Endpoint>,
    /// The instance of an `lb://` service, counted in flight while the attempt lasts.
    instance: Option<(Arc<Instance>, InFlight)>,
    /// Raised when a time limit around the forwarder cuts the attempt off.
    cut_off: Option<Arc<CutOff>>,
    failing: Failing,
}

/// What an error response of the forwarder names: the request's path, route and id.
struct Failing {
    route: Arc<str>,
    request_id: u64,
    /// A cheap reference-counted copy of the request's path and query.
    pq: Option<PathAndQuery>,
}

impl Failing {
    fn of(exchange: &Exchange) -> Self {
        Self {
            route: exchange.route_id.clone(),
            request_id: exchange.request_id,
            pq: exchange.request.uri().path_and_query().cloned(),
        }
    }

    fn response(
        &self,
        status: StatusCode,
        message: &str,
        failure: UpstreamFailure,
    ) -> Response<Body> {
        let path = self.pq.as_ref().map_or("/", |pq| pq.path());
        let mut response =
            weir_filters::error_response(status, message, path, Some(&self.route), self.request_id);
        response.extensions_mut().insert(failure);
        response
    }
}

impl Forwarder {
    /// Sends the exchange, taken. The exchange is used up before the returned future starts:
    /// only what it sends is kept in it (the future is boxed, so every byte of it is copied
    /// once per request).
    fn forward(self: &Arc<Self>, mut exchange: Exchange) -> BoxFuture {
        let upgrade = upgrade::take(&mut exchange.request);
        let picked = match self.pick(&exchange) {
            Ok(picked) => picked,
            Err(response) => return Box::pin(std::future::ready(response)),
        };
        let pool = self.client.pool(&picked.endpoint);
        let edits = self.edits(&exchange, &picked.endpoint);
        // The request goes straight into what is prepared: a local between them would be one
        // more move of it.
        let prepared = match upgrade {
            None => self.client.prepare(
                &pool,
                &picked.endpoint,
                origin_form(exchange.request),
                edits,
            ),
            Some(upgrade) => Prepared::for_upgrade(origin_form(exchange.request), edits, upgrade),
        };
        Box::pin(self.clone().complete(picked, pool, prepared))
    }

    /// Sends a lent exchange without a body, when weir's own HTTP/1 client can (its head is
    /// written here, and the future needs nothing more of the exchange); otherwise a copy of
    /// its head goes through hyper's client. `None` for a request with a body, or one that may
    /// switch protocols ([`Exchange::may_switch_protocols`]): the caller sends it with
    /// [`Forwarder::forward`].
    fn forward_borrowed(self: &Arc<Self>, exchange: &Exchange) -> Option<BoxFuture> {
        if !exchange.request.body().is_end_stream() || exchange.may_switch_protocols() {
            return None;
        }
        let picked = match self.pick(exchange) {
            Ok(picked) => picked,
            Err(response) => return Some(Box::pin(std::future::ready(response))),
        };
        let pool = self.client.pool(&picked.endpoint);
        let edits = self.edits(exchange, &picked.endpoint);
        let prepared =
            match self
                .client
                .prepare_plain(&pool, &picked.endpoint, &exchange.request, &edits)
            {
                Some(plain) => Prepared::Plain(plain),
                // Not a request weir's client sends (an https instance, a long head, ...): the
                // head is copied for hyper's.
                None => {
                    let copy = exchange.replay(bytes::Bytes::new()).request;
                    Prepared::for_hyper(origin_form(copy), edits)
                }
            };
        Some(Box::pin(self.clone().complete(picked, pool, prepared)))
    }

    /// The upstream for the exchange: a fixed one, or an instance of its service, recorded in
    /// the exchange's tried instances at once (so a retry avoids it even if this attempt is cut
    /// short before it answers). `Err`: the answer when no instance is available.
    fn pick(&self, exchange: &Exchange) -> Result<Picked, Response<Body>> {
        let failing = Failing::of(exchange);
        let (endpoint, instance) = match &self.target {
            Target::Fixed(endpoint) => (endpoint.clone(), None),
            Target::Balanced(service) => {
                let tried = exchange.tried_instances.as_ref();
                let picked = service.pick(exchange.balance.strategy, tried);
                if let (Some(tried), Some((instance, _))) = (tried, &picked) {
                    tried.record(&instance.endpoint.key);
                }
                match picked {
                    Some((instance, in_flight)) => {
                        (instance.endpoint.clone(), Some((instance, in_flight)))
                    }
                    None => {
                        let (status, message) = if exchange.balance.use404 {
                            (
                                StatusCode::NOT_FOUND,
                                format!("no instance of service `{}` is available", service.name()),
                            )
                        } else {
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!(
                                    "no healthy instance of service `{}` is available",
                                    service.name()
                                ),
                            )
                        };
                        tracing::warn!(route = %failing.route, service = %service.name(), status = status.as_u16(), "no healthy instance");
                        return Err(failing.response(status, &message, UpstreamFailure::Connect));
                    }
                }
            }
        };
        Ok(Picked {
            endpoint,
            instance,
            cut_off: exchange.cut_off.clone(),
            failing,
        })
    }

    /// Sends what was prepared for the picked upstream, maps a failure to its answer, and
    /// reports the outcome to the balancer.
    async fn complete(
        self: Arc<Self>,
        picked: Picked,
        pool: Arc<HostPool>,
        prepared: Prepared,
    ) -> Response<Body> {
        let Picked {
            endpoint,
            instance,
            cut_off,
            failing,
        } = picked;
        let (instance, in_flight) = match instance {
            Some((instance, in_flight)) => (Some(instance), Some(in_flight)),
            None => (None, None),
        };
        let balanced = match (&self.target, &instance) {
            (Target::Balanced(service), Some(instance)) => Some((&**service, &**instance)),
            _ => None,
        };
        // An attempt that a time limit cuts off never reaches the report below: this counts it.
        let mut cut_off_report = match (balanced, cut_off) {
            (Some((service, instance)), Some(cut_off)) => Some(CutOffReport {
                service,
                instance,
                cut_off: Some(cut_off),
            }),
            _ => None,
        };
        let (route, request_id) = (&failing.route, failing.request_id);
        // weir's own client leaves a response's hop-by-hop headers out as it parses the head;
        // hyper's keeps them for the forwarder to remove.
        let hop_by_hop_left = !matches!(prepared, Prepared::Plain(_));
        // The send future is made in each arm, not held in a local first: this future (boxed
        // for every request) would otherwise keep room for it twice.
        let result = match self.response_timeout {
            Some(limit) => {
                tokio::time::timeout(limit, self.client.send_prepared(&pool, &endpoint, prepared))
                    .await
                    .map_err(|_| limit)
            }
            None => Ok(self.client.send_prepared(&pool, &endpoint, prepared).await),
        };
        let response = match result {
            Ok(Ok(response)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                if upgrade::is_agreed(&response) {
                    let mut response = response;
                    remove_hop_by_hop(response.headers_mut());
                    upgrade::ask(response.headers_mut());
                    // A WebSocket is a request in flight to its instance for as long as it
                    // lasts (least-requests balancing counts it).
                    if let Some(in_flight) = in_flight {
                        upgrade::hold(&mut response, in_flight);
                    }
                    response
                } else {
                    // A switch nobody asked for: the connection it came on is dropped with it.
                    tracing::warn!(route = %route, upstream = %endpoint.key, request_id = format_args!("{request_id:016x}"), status = 502, "the upstream switched protocols unasked");
                    failing.response(
                        StatusCode::BAD_GATEWAY,
                        "the upstream's response was malformed",
                        UpstreamFailure::Closed,
                    )
                }
            }
            Ok(Ok(mut response)) => {
                if hop_by_hop_left {
                    remove_hop_by_hop(response.headers_mut());
                }
                response
            }
            Ok(Err(err)) if client_body_failed(&err) => {
                // The client's body broke off or was malformed (an invalid chunk size, say)
                // after the head went upstream: the upstream got an incomplete request, and
                // the fault is the client's, not the upstream's.
                tracing::info!(route = %route, request_id = format_args!("{request_id:016x}"), error = %error_chain(&err), status = 400, "the client's request body failed while being forwarded");
                let path = failing.pq.as_ref().map_or("/", |pq| pq.path());
                let mut response = weir_filters::error_response(
                    StatusCode::BAD_REQUEST,
                    "the request body was malformed or ended early",
                    path,
                    Some(route),
                    request_id,
                );
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                response
            }
            Ok(Err(err)) => {
                let (status, message, failure) = if err.is_connect() && is_timeout(&err) {
                    (
                        StatusCode::GATEWAY_TIMEOUT,
                        "connecting to the upstream timed out",
                        UpstreamFailure::Timeout,
                    )
                } else if err.is_connect() {
                    (
                        StatusCode::BAD_GATEWAY,
                        "the upstream could not be reached",
                        UpstreamFailure::Connect,
                    )
                } else if err.is_malformed() {
                    (
                        StatusCode::BAD_GATEWAY,
                        "the upstream's response was malformed",
                        UpstreamFailure::Closed,
                    )
                } else {
                    (
                        StatusCode::BAD_GATEWAY,
                        "the upstream closed the connection before responding",
                        UpstreamFailure::Closed,
                    )
                };
                tracing::warn!(route = %route, upstream = %endpoint.key, request_id = format_args!("{request_id:016x}"), error = %error_chain(&err), status = status.as_u16(), "upstream request failed");
                failing.response(status, message, failure)
            }
            Err(limit) => {
                tracing::warn!(route = %route, upstream = %endpoint.key, request_id = format_args!("{request_id:016x}"), timeout_ms = limit.as_millis() as u64, status = 504, "upstream response timed out");
                let message = format!(
                    "the upstream did not respond within {} ms",
                    limit.as_millis()
                );
                failing.response(
                    StatusCode::GATEWAY_TIMEOUT,
                    &message,
                    UpstreamFailure::Timeout,
                )
            }
        };
        // The outcome is known: reported below, not on drop.
        if let Some(report) = &mut cut_off_report {
            report.cut_off = None;
        }
        if let Some((service, instance)) = balanced {
            let failed = response.extensions().get::<UpstreamFailure>().is_some()
                || response.status().is_server_error();
            service.report(instance, failed);
        }
        response
    }
}

/// Counts an attempt to a balanced instance as the instance's failure when a time limit around
/// the forwarder cuts it off (and drops it) before it could report its outcome.
struct CutOffReport<'a> {
    service: &'a BalancedService,
    instance: &'a Instance,
    /// `None` once the attempt has an outcome of its own.
    cut_off: Option<Arc<CutOff>>,
}

impl Drop for CutOffReport<'_> {
    fn drop(&mut self) {
        if self.cut_off.as_ref().is_some_and(|c| c.is_raised()) {
            self.service.report(self.instance, true);
        }
    }
}

/// Whether the upstream call failed because the request body it was sending failed: the
/// body is the client's (weir's own bodies do not fail), so the client sent a malformed or
/// truncated body.
fn client_body_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// `forward:/path`: dispatches the request again, with the path replaced, through the route
/// table it was compiled in.
#[derive(Clone)]
pub struct ForwardTo {
    path: Arc<str>,
    table: Arc<OnceLock<Weak<RouteTable>>>,
}

/// How many `forward:` hops one request may take before it is answered 508.
const MAX_FORWARDS: u8 = 8;

impl ForwardTo {
    /// Forwards to `path` in the table that `table` will hold.
    pub fn new(path: &str, table: Arc<OnceLock<Weak<RouteTable>>>) -> Self {
        Self {
            path: Arc::from(path),
            table,
        }
    }
}

impl Service<Exchange> for ForwardTo {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut exchange: Exchange) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            if exchange.forwards >= MAX_FORWARDS {
                return Ok(exchange.error(
                    StatusCode::LOOP_DETECTED,
                    "the request was forwarded too many times",
                ));
            }
            let Some(table) = this.table.get().and_then(Weak::upgrade) else {
                return Ok(exchange.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the route table is being replaced",
                ));
            };
            if let Err(response) = exchange.set_path(&this.path) {
                return Ok(response);
            }
            let conn = Conn {
                peer: exchange.client,
                tls: exchange.tls,
                // The request's own deadline still bounds it, from the outside.
                deadline: None,
                framing: None,
            };
            let (response, _) = dispatch(
                &table,
                exchange.request,
                conn,
                exchange.request_id,
                exchange.forwards + 1,
            )
            .await;
            Ok(response)
        })
    }
}

/// `no://op`: the route's filters answer; if none does, an empty 200.
#[derive(Clone, Copy)]
pub struct NoOp;

impl Service<Exchange> for NoOp {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Exchange) -> Self::Future {
        std::future::ready(Ok(Response::new(Body::Empty)))
    }
}
