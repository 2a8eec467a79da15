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
use ipnet::IpNet;
use tower::Service;
use weir_filters::{Body, CutOff, Exchange, HttpService, UpstreamFailure};

use super::balance::{Endpoint, Instance, Service as BalancedService};
use super::client::{Client, HttpClient};
use super::headers::{remove_hop_by_hop, EditValue, HeaderEdits, ShortValue};
use super::{dispatch, error_chain, Conn};
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
        HttpService::from_fn(move |exchange| {
            let this = this.clone();
            async move { this.forward(exchange).await }
        })
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
    /// Turns the exchange's request into the upstream request for `endpoint`, and the changes
    /// its headers need on the way (hop-by-hop headers dropped, `X-Forwarded-*` and `Host`
    /// set), which the client makes as it sends it.
    fn upstream_request(
        &self,
        exchange: Exchange,
        endpoint: &Endpoint,
    ) -> (http::Request<Body>, HeaderEdits) {
        let Exchange {
            mut request,
            client,
            tls,
            preserve_host,
            stripped_prefix,
            ..
        } = exchange;
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
            (None, Some(ours)) => HeaderValue::from_str(&ours).ok(),
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
        if let Some(host) = original_host {
            if !keep_host {
                edits.set(&X_FORWARDED_HOST, EditValue::Header(host.clone()));
            }
            if !keep_port {
                let host = host.as_bytes();
                let port =
                    memchr::memrchr(b':', host).and_then(|i| ShortValue::port(&host[i + 1..]));
                let port = match port {
                    Some(port) => EditValue::Short(port),
                    None => {
                        EditValue::Header(HeaderValue::from_static(if tls { "443" } else { "80" }))
                    }
                };
                edits.set(&X_FORWARDED_PORT, port);
            }
        } else {
            // No Host to report (HTTP/1.0): what the peer claims goes no further either.
            if !keep_host {
                edits.remove(&X_FORWARDED_HOST);
            }
            if !keep_port {
                edits.remove(&X_FORWARDED_PORT);
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

        // Origin form: the client sends the uri as it is.
        if request.uri().scheme().is_some() || request.uri().path_and_query().is_none() {
            let pq = request
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"));
            *request.uri_mut() = Uri::from(pq);
        }
        *request.version_mut() = Version::HTTP_11;
        (request, edits)
    }
}

impl Forwarder {
    async fn forward(&self, exchange: Exchange) -> Response<Body> {
        let route = exchange.route_id.clone();
        let request_id = exchange.request_id;
        // Kept for an error body; a cheap reference-counted copy.
        let pq = exchange.request.uri().path_and_query().cloned();
        let fail = |status: StatusCode, message: &str, failure: UpstreamFailure| {
            let path = pq.as_ref().map_or("/", |pq| pq.path());
            let mut response =
                weir_filters::error_response(status, message, path, Some(&route), request_id);
            response.extensions_mut().insert(failure);
            response
        };
        let (endpoint, balanced) = match &self.target {
            Target::Fixed(endpoint) => (endpoint.clone(), None),
            Target::Balanced(service) => {
                // Retries share the list of instances tried; the pick is recorded at once, so a
                // retry avoids it even if this attempt is cut short before it answers.
                let tried = exchange.tried_instances.as_ref();
                let picked = service.pick(exchange.balance.strategy, tried);
                if let (Some(tried), Some((instance, _))) = (tried, &picked) {
                    tried.record(&instance.endpoint.key);
                }
                match picked {
                    Some((instance, in_flight)) => (
                        instance.endpoint.clone(),
                        Some((service, instance, in_flight)),
                    ),
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
                        tracing::warn!(route = %route, service = %service.name(), status = status.as_u16(), "no healthy instance");
                        return fail(status, &message, UpstreamFailure::Connect);
                    }
                }
            }
        };
        // An attempt that a time limit cuts off never reaches the report below: this counts it.
        let mut cut_off_report = match (&balanced, &exchange.cut_off) {
            (Some((service, instance, _)), Some(cut_off)) => Some(CutOffReport {
                service,
                instance,
                cut_off: Some(cut_off.clone()),
            }),
            _ => None,
        };
        let pool = self.client.pool(&endpoint);
        // The send future is made in each arm, not held in a local first: this future (boxed
        // for every request) would otherwise keep room for it twice. The request and its
        // header changes are made inside the call, and go no further than the client.
        let send = |exchange| {
            let (request, edits) = self.upstream_request(exchange, &endpoint);
            self.client.send(&pool, &endpoint, request, edits)
        };
        let result = match self.response_timeout {
            Some(limit) => tokio::time::timeout(limit, send(exchange))
                .await
                .map_err(|_| limit),
            None => Ok(send(exchange).await),
        };
        let response = match result {
            Ok(Ok(mut response)) => {
                remove_hop_by_hop(response.headers_mut());
                response
            }
            Ok(Err(err)) if client_body_failed(&err) => {
                // The client's body broke off or was malformed (an invalid chunk size, say)
                // after the head went upstream: the upstream got an incomplete request, and
                // the fault is the client's, not the upstream's.
                tracing::info!(route = %route, request_id = format_args!("{request_id:016x}"), error = %error_chain(&err), status = 400, "the client's request body failed while being forwarded");
                let path = pq.as_ref().map_or("/", |pq| pq.path());
                let mut response = weir_filters::error_response(
                    StatusCode::BAD_REQUEST,
                    "the request body was malformed or ended early",
                    path,
                    Some(&route),
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
                fail(status, message, failure)
            }
            Err(limit) => {
                tracing::warn!(route = %route, upstream = %endpoint.key, request_id = format_args!("{request_id:016x}"), timeout_ms = limit.as_millis() as u64, status = 504, "upstream response timed out");
                let message = format!(
                    "the upstream did not respond within {} ms",
                    limit.as_millis()
                );
                fail(
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
        if let Some((service, instance, _in_flight)) = &balanced {
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
