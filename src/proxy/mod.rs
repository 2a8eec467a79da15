//! The request path: normalise, find the route in the snapshot, run its chain.

mod forward;
pub mod headers;
pub mod normalize;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, Request, Response, StatusCode};
use weir_filters::{error_response, Body, Exchange};
use weir_predicates::{Captures, RequestView};

pub use forward::{ForwardTo, Forwarder, NoOp, Upstream};

use crate::compile::RouteTable;

/// What the gateway knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        h.finish() | 1
    });
}

/// A fast random number (xorshift64*, seeded per thread), for per-request draws.
pub fn random_u64() -> u64 {
    RNG.with(|rng| {
        let mut x = rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
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
pub async fn dispatch(
    table: &RouteTable,
    mut request: Request<Body>,
    conn: Conn,
    request_id: u64,
    forwards: u8,
) -> (Response<Body>, Option<Arc<str>>) {
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
            seed: random_u64(),
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
        return (response, None);
    };
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
    };
    (route.service.handle(exchange).await, Some(route.id.clone()))
}
