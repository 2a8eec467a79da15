//! What filters need to know about upstream calls: how one failed, which instance answered,
//! how to pick an instance, and how to reach another route or uri.

use crate::HttpService;

/// Put in the extensions of a response that weir made because the upstream call failed, so
/// that filters (Retry, CircuitBreaker) can tell it from a status the upstream chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No connection could be made (refused, unreachable, no healthy instance).
    Connect,
    /// The connection closed before a complete response head arrived.
    Closed,
    /// Connecting or waiting for the response took too long.
    Timeout,
}

impl UpstreamFailure {
    /// A short name, for logs and fallback headers.
    pub fn name(self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Closed => "closed",
            UpstreamFailure::Timeout => "timeout",
        }
    }
}

/// How a load-balanced route picks an instance (the `LoadBalancer` filter sets it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// In turn (the default).
    #[default]
    RoundRobin,
    /// At random.
    Random,
    /// The less busy of two instances drawn at random.
    LeastRequests,
    /// At random, in proportion to the instances' weights.
    Weighted,
}

impl Strategy {
    /// The strategy's name in config.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::Random => "random",
            Strategy::LeastRequests => "least-requests",
            Strategy::Weighted => "weighted",
        }
    }
}

/// A route's load-balancing choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// How to pick.
    pub strategy: Strategy,
    /// Answer 404 instead of 503 when no instance is healthy (SCG's `use404`).
    pub use404: bool,
}

/// Lets a filter send requests somewhere other than its route's upstream: another route of
/// the table (`forward:/path`) or a uri. The gateway provides it when compiling.
pub trait Upstreams: Send + Sync {
    /// A service that dispatches through the route table with the path replaced by `path`.
    fn forward(&self, path: &str) -> HttpService;

    /// A service that sends requests to `uri` (`http://` or `https://`), keeping their path.
    fn uri(&self, uri: &str) -> Result<HttpService, String>;
}

/// Resolves a fallback uri: `forward:/path` or `http(s)://host:port`.
pub fn fallback_service(upstreams: &dyn Upstreams, uri: &str) -> Result<HttpService, String> {
    match uri.strip_prefix("forward:") {
        Some(path) => {
            let path = path.trim_start_matches("//");
            let path = if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            };
            Ok(upstreams.forward(&path))
        }
        None => upstreams.uri(uri),
    }
}
