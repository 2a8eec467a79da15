use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};

use crate::{error_response, Balance, Body, Captures};

/// One request on its way through a route's chain, with what the gateway knows about it.
#[derive(Debug)]
pub struct Exchange {
    /// The request. Its URI holds the path and query that will be sent upstream; filters that
    /// rewrite them go through [`Exchange::set_path`] and [`Exchange::set_query`].
    pub request: Request<Body>,
    /// Variables captured by the route's predicates.
    pub vars: Captures,
    /// The TCP peer.
    pub client: SocketAddr,
    /// Whether the client connected over TLS.
    pub tls: bool,
    /// The id of the route that took the request.
    pub route_id: Arc<str>,
    /// Send the client's `Host` upstream instead of the upstream's authority.
    pub preserve_host: bool,
    /// The part of the path removed by `StripPrefix`, sent upstream as `X-Forwarded-Prefix`.
    pub stripped_prefix: Option<String>,
    /// A number identifying the request in logs and error bodies.
    pub request_id: u64,
    /// How many times the request was dispatched through `forward:` routes.
    pub forwards: u8,
    /// How a load-balanced route picks an instance (set by the `LoadBalancer` filter).
    pub balance: Balance,
    /// Instances already tried for this request, shared by the attempts of a retry (`None`
    /// outside one). The balancer avoids them while others are healthy, and adds each instance
    /// it picks as it picks it, so that an attempt cut short (by a per-attempt timeout) still
    /// counts as tried.
    pub tried_instances: Option<TriedInstances>,
    /// Raised by a time limit around this call ([`crate::HttpService::handle_within`]) when it
    /// cuts the call off, before the call is dropped: the forwarder then counts the attempt as
    /// a failure of the instance it was sent to. `None` outside any time limit.
    pub cut_off: Option<Arc<CutOff>>,
}

/// The flag of [`Exchange::cut_off`], linked to the flags of the time limits around it.
#[derive(Debug, Default)]
pub struct CutOff {
    raised: AtomicBool,
    outer: Option<Arc<CutOff>>,
}

impl CutOff {
    /// A flag for a time limit inside `outer`'s (if any).
    pub fn within(outer: Option<Arc<CutOff>>) -> Arc<Self> {
        Arc::new(Self {
            raised: AtomicBool::new(false),
            outer,
        })
    }

    /// The time limit cut the call off.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
    }

    /// Whether this time limit, or one around it, cut the call off.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire) || self.outer.as_ref().is_some_and(|o| o.is_raised())
    }
}

/// The instances picked for the attempts of one request, shared by the attempts (a clone
/// is the same list). Room for a fixed number of picks is made up front, in one allocation;
/// picks past it are not recorded.
#[derive(Debug, Clone)]
pub struct TriedInstances(Arc<[OnceLock<Arc<str>>]>);

/// The most picks a [`TriedInstances`] keeps, whatever the number of attempts: past it, an
/// attempt may go back to an instance tried before, as it must once all have been tried.
pub const MAX_TRIED: usize = 16;

impl TriedInstances {
    /// A list with room for `attempts` picks, [`MAX_TRIED`] at most.
    pub fn new(attempts: usize) -> Self {
        Self(
            (0..attempts.min(MAX_TRIED))
                .map(|_| OnceLock::new())
                .collect(),
        )
    }

    /// Records a pick: the instance's key.
    pub fn record(&self, key: &Arc<str>) {
        if let Some(slot) = self.0.iter().find(|slot| slot.get().is_none()) {
            let _ = slot.set(key.clone());
        }
    }

    /// Whether the instance with `key` was picked already.
    pub fn contains(&self, key: &str) -> bool {
        self.0.iter().map_while(OnceLock::get).any(|k| &**k == key)
    }

    /// Whether no pick is recorded yet.
    pub fn is_empty(&self) -> bool {
        self.0.first().and_then(OnceLock::get).is_none()
    }
}

impl Exchange {
    /// An exchange for a request that weir makes itself (a filter asking an upstream
    /// something), not one a client sent. It comes from 127.0.0.1.
    pub fn internal(request: Request<Body>, route_id: Arc<str>) -> Self {
        Self {
            request,
            vars: Captures::default(),
            client: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: false,
            route_id,
            preserve_host: false,
            stripped_prefix: None,
            request_id: crate::random_u64() >> 16,
            forwards: 0,
            balance: Balance::default(),
            tried_instances: None,
            cut_off: None,
        }
    }

    /// Whether the request may take over its connection: hyper gave it the means to switch
    /// protocols (a WebSocket handshake). Such a request is sent once, itself: a copy would
    /// not carry the means.
    pub fn may_switch_protocols(&self) -> bool {
        self.request
            .extensions()
            .get::<hyper::upgrade::OnUpgrade>()
            .is_some()
    }

    /// The path that will be sent upstream.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The raw query that will be sent upstream, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// Replaces the path, keeping the query. A path that is not valid in a URI is answered
    /// with 400.
    pub fn set_path(&mut self, path: &str) -> Result<(), Response<Body>> {
        let path = if path.is_empty() { "/" } else { path };
        let pq = match self.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        self.set_path_and_query(pq)
    }

    /// Replaces the query (`None` removes it), keeping the path.
    pub fn set_query(&mut self, query: Option<&str>) -> Result<(), Response<Body>> {
        let pq = match query {
            Some(q) if !q.is_empty() => format!("{}?{q}", self.path()),
            _ => self.path().to_string(),
        };
        self.set_path_and_query(pq)
    }

    fn set_path_and_query(&mut self, pq: String) -> Result<(), Response<Body>> {
        let pq = PathAndQuery::from_maybe_shared(Bytes::from(pq)).map_err(|_| {
            self.error(
                StatusCode::BAD_REQUEST,
                "the rewritten path is not a valid URI path",
            )
        })?;
        let mut parts = self.request.uri().clone().into_parts();
        parts.path_and_query = Some(pq);
        *self.request.uri_mut() = Uri::from_parts(parts).map_err(|_| {
            self.error(
                StatusCode::BAD_REQUEST,
                "the rewritten path is not a valid URI path",
            )
        })?;
        Ok(())
    }

    /// A JSON error response for this request.
    pub fn error(&self, status: StatusCode, message: &str) -> Response<Body> {
        error_response(
            status,
            message,
            self.path(),
            Some(&self.route_id),
            self.request_id,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tried_instances_are_shared_by_clones_and_bounded() {
        let tried = TriedInstances::new(2);
        let shared = tried.clone();
        assert!(tried.is_empty());
        shared.record(&Arc::from("a:1"));
        assert!(!tried.is_empty());
        assert!(tried.contains("a:1"));
        assert!(!tried.contains("b:1"));
        shared.record(&Arc::from("b:1"));
        shared.record(&Arc::from("c:1")); // no room left: not recorded
        assert!(tried.contains("b:1"));
        assert!(!tried.contains("c:1"));
        // A huge retry count does not make a huge list.
        assert_eq!(
            TriedInstances::new(u32::MAX as usize + 1).0.len(),
            MAX_TRIED
        );
    }
}
