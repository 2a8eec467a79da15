//! The request path: normalise, find the route in the snapshot, run its chain.

pub mod balance;
mod client;
mod forward;
pub mod guard;
pub mod headers;
pub mod http1;
pub mod normalize;
pub mod raw_framing;
pub(crate) mod upgrade;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::future::Either;

use http::{header, Request, Response, StatusCode};
use weir_filters::{error_response, Body, Exchange};
use weir_predicates::{Captures, RequestView};

pub use client::{Client, ClientError, HttpClient};
pub use forward::{ForwardTo, Forwarder, NoOp, Target, Upstream};

use crate::compile::RouteTable;

/// What the gateway knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// When the request's response head must be ready (`server.write-timeout`).
    pub deadline: Option<tokio::time::Instant>,
    /// How the request's head was framed on the wire, when that was ambiguous.
    pub framing: Option<raw_framing::Ambiguity>,
}

/// The host a request asked for: the `Host` header, or the URI authority (HTTP/2).
pub fn request_host<B>(request: &Request<B>) -> Option<&str> {
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
}

/// Finds the route for `request` in `table` and runs its chain. Returns the response and the
/// id of the route that took the request, if one did.
///
/// The route is found and its chain started before the returned future is: the future holds
/// only the chain's (boxed) future and what an error answer needs, not the request or the
/// table. The caller keeps the table alive until the future ends: `forward:` routes look it
/// up through a weak reference when their future runs.
pub fn dispatch(
    table: &RouteTable,
    mut request: Request<Body>,
    conn: Conn,
    request_id: u64,
    forwards: u8,
) -> impl Future<Output = (Response<Body>, Option<Arc<str>>)> + Send + 'static {
    if request.headers().get(header::HOST).is_none() {
        // HTTP/2 carries the host in the URI; give filters and upstreams a Host header.
        if let Some(value) = request
            .uri()
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
        {
            request.headers_mut().insert(header::HOST, value);
        }
    }
    let mut vars = Captures::default();
    let route = {
        let view = RequestView {
            method: request.method(),
            path: request.uri().path(),
            query: request.uri().query(),
            headers: request.headers(),
            host: request_host(&request),
            remote: conn.peer,
            seed: weir_filters::random_u64(),
        };
        table.find(&view, &mut vars).cloned()
    };
    let Some(route) = route else {
        let message = format!(
            "no route matches {} {}",
            request.method(),
            request.uri().path()
        );
        let response = error_response(
            StatusCode::NOT_FOUND,
            &message,
            request.uri().path(),
            None,
            request_id,
        );
        return Either::Left(std::future::ready((response, None)));
    };
    // Kept for a timeout's error body: a clone of the uri shares its bytes.
    let uri = conn.deadline.map(|_| request.uri().clone());
    let exchange = Exchange {
        request,
        vars,
        client: conn.peer,
        tls: conn.tls,
        route_id: route.id.clone(),
        preserve_host: false,
        stripped_prefix: None,
        request_id,
        forwards,
        balance: Default::default(),
        tried_instances: None,
        cut_off: None,
    };
    let handled = route.service.handle(exchange);
    let route_id = route.id.clone();
    let deadline = conn.deadline;
    Either::Right(async move {
        let response = match deadline {
            None => handled.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, handled).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(
                        route = %route_id,
                        request_id = format_args!("{request_id:016x}"),
                        status = 504,
                        "no response within server.write-timeout"
                    );
                    error_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        "no response within the gateway's write timeout",
                        uri.as_ref().map_or("/", |uri| uri.path()),
                        Some(&route_id),
                        request_id,
                    )
                }
            },
        };
        (response, Some(route_id))
    })
}

/// An error and its causes, as one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
