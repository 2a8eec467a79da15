//! The filter half of weir's factory API, and weir's built-in filters.
//!
//! A filter changes a request on its way to the upstream, or the response on its way back, or
//! answers the request itself. A [`FilterFactory`] is registered under its YAML name
//! (`RewritePath`, `AddRequestHeader`, ...) and builds a [`Filter`] once, when the config is
//! compiled. A route's filters become tower layers around one forwarding service
//! ([`HttpService`]); see [`chain`] for the order.
//!
//! There are two kinds of filter:
//! - [`EditFilter`]: edits the request in place and/or the response on the way back, or
//!   answers directly. Consecutive edit filters run in one layer with no per-request
//!   allocation. Most built-ins are of this kind.
//! - [`LayerFilter`]: wraps the rest of the chain as any tower layer does (retries, circuit
//!   breakers, timeouts).
//!
//! Each built-in lives in the module named after it: `RewritePath` in [`rewrite_path`],
//! `StripPrefix` in [`strip_prefix`], and so on.

mod body;
mod chain;
mod error;
mod exchange;
mod header_op;
mod random;
mod replay;
mod service;
mod state;
mod template;
mod upstream;
mod watched_file;

mod faas;

pub mod add_request_header;
pub mod add_request_parameter;
pub mod add_response_header;
pub mod alert_scaling;
pub mod allow_methods;
pub mod basic_auth;
pub mod call_id;
pub mod circuit_breaker;
pub mod function_metrics;
pub mod gateway_info;
pub mod invocation_count;
pub mod load_balancer;
pub mod prefix_path;
pub mod preserve_host_header;
pub mod redirect_to;
pub mod remove_request_header;
pub mod remove_request_parameter;
pub mod remove_response_header;
pub mod retry;
pub mod rewrite_path;
pub mod scale_from_zero;
pub mod set_path;
pub mod set_request_header;
pub mod set_request_host_header;
pub mod set_response_header;
pub mod set_status;
pub mod strip_prefix;
pub mod validate_scale_request;

use std::sync::Arc;

pub use body::{Body, BoxError, Lease, UpstreamBody};
pub use chain::chain;
pub use error::{error_response, json_response, ErrorBody};
pub use exchange::{CutOff, Exchange, TriedInstances};
pub use random::{random_below, random_u64};
pub use replay::{read_replayable, Replay};
pub use service::{BoxFuture, HttpService};
pub use state::{StateKey, StateStore};
pub use template::Template;
pub use upstream::{fallback_service, Balance, Strategy, UpstreamFailure, Upstreams};
pub use watched_file::WatchedFile;
pub use weir_predicates::{parse_duration, parse_size, ArgError, Args, Captures, Shortcut};

/// A compiled filter.
#[derive(Clone)]
pub enum Filter {
    /// Edits the request and/or response in place.
    Edit(Arc<dyn EditFilter>),
    /// Wraps the rest of the chain.
    Layer(Arc<dyn LayerFilter>),
}

/// A filter that edits the request before it goes on and the response on the way back.
pub trait EditFilter: Send + Sync + 'static {
    /// Edits the request. Returning `Err(response)` answers the request with `response`
    /// instead of passing it on; the response still passes back through the filters before
    /// this one.
    fn request(&self, exchange: &mut Exchange) -> Result<(), http::Response<Body>> {
        let _ = exchange;
        Ok(())
    }

    /// Edits the response on its way back to the client. `vars` holds the variables captured
    /// by the route's predicates when [`EditFilter::needs_vars_on_response`] is true, and is
    /// empty otherwise.
    fn response(&self, response: &mut http::Response<Body>, vars: &Captures) {
        let _ = (response, vars);
    }

    /// Whether [`EditFilter::response`] reads captured variables (they are then kept for it).
    fn needs_vars_on_response(&self) -> bool {
        false
    }

    /// Whether [`EditFilter::response`] does anything. A run of filters that all answer
    /// `false` hands the request on without waiting for the response (one future less per
    /// request). The default is `true`; a filter that edits only the request overrides it.
    fn edits_response(&self) -> bool {
        true
    }
}

/// A filter that wraps the rest of the chain, as a tower layer does.
pub trait LayerFilter: Send + Sync + 'static {
    /// Wraps `inner`, the rest of the chain (later filters and the forwarder).
    fn layer(&self, inner: HttpService) -> HttpService;
}

/// What a filter factory may know about the route it builds for.
pub struct FilterContext<'a> {
    route_id: &'a str,
    variables: &'a [String],
    state: &'a StateStore,
    generation: u64,
    upstreams: &'a dyn Upstreams,
}

impl<'a> FilterContext<'a> {
    /// A context for route `route_id`, whose predicates capture `variables`. Stateful
    /// filters keep their state in `state`; `generation` is the compile under way
    /// ([`StateStore::begin`]); `upstreams` reaches other routes and uris.
    pub fn new(
        route_id: &'a str,
        variables: &'a [String],
        state: &'a StateStore,
        generation: u64,
        upstreams: &'a dyn Upstreams,
    ) -> Self {
        Self {
            route_id,
            variables,
            state,
            generation,
            upstreams,
        }
    }

    /// Reaches other routes (`forward:/path`) and uris, for fallbacks.
    pub fn upstreams(&self) -> &dyn Upstreams {
        self.upstreams
    }

    /// Like [`FilterContext::state`], but shared by every route that names the same `name`
    /// with the same arguments (a circuit breaker named `backend` on two routes is one
    /// breaker).
    pub fn named_state<T: std::any::Any + Send + Sync>(
        &self,
        name: &str,
        args: &Args,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let key = StateKey {
            route: String::new(),
            factory: format!("{}:{name}", args.factory()),
            args: args.fingerprint(),
        };
        self.state.get_or_init(key, self.generation, init)
    }

    /// The long-lived state of the filter being built, created with `init` the first time.
    ///
    /// The state is keyed by the route id, the factory name and the arguments: after a reload
    /// that changes none of them, the filter gets the same object back (a circuit breaker stays
    /// open, a counter keeps counting); a changed argument starts fresh.
    pub fn state<T: std::any::Any + Send + Sync>(
        &self,
        args: &Args,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let key = StateKey {
            route: self.route_id.to_string(),
            factory: args.factory().to_string(),
            args: args.fingerprint(),
        };
        self.state.get_or_init(key, self.generation, init)
    }

    /// State shared by every filter that asks for `name`, whatever its route, factory and
    /// arguments (the OpenFaaS function counters, which one filter writes and others read).
    pub fn global_state<T: std::any::Any + Send + Sync>(
        &self,
        name: &str,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let key = StateKey {
            route: String::new(),
            factory: format!("global:{name}"),
            args: 0,
        };
        self.state.get_or_init(key, self.generation, init)
    }

    /// The file at `path`, read now and kept up to date: the gateway watches every file a
    /// filter opens this way, as it watches the config file. A file that cannot be read is an
    /// error of argument `arg` naming the path.
    pub fn watched_file(&self, arg: &str, path: &str) -> Result<Arc<WatchedFile>, ArgError> {
        let path = watched_file::clean_path(path);
        let fresh = WatchedFile::open(&path).map_err(|e| ArgError::for_arg(arg, e))?;
        let content = fresh.content().to_string();
        let kept = self.global_state(&format!("file:{}", path.display()), || fresh);
        // A file kept from the previous config gets what this compile read.
        kept.set(content);
        Ok(kept)
    }

    /// The id of the route being built.
    pub fn route_id(&self) -> &str {
        self.route_id
    }

    /// The variables the route's predicates capture, for checking `{var}` templates.
    pub fn variables(&self) -> &[String] {
        self.variables
    }

    /// Parses a `{var}` template and checks that every variable is captured by the route.
    pub fn template(&self, arg: &str, text: &str) -> Result<Template, ArgError> {
        Template::parse(text, self.variables).map_err(|message| ArgError::for_arg(arg, message))
    }
}

/// Builds a [`Filter`] from the arguments of one YAML entry.
pub trait FilterFactory: Send + Sync + 'static {
    /// The name used in YAML, such as `RewritePath`.
    fn name(&self) -> &'static str;

    /// How positional (shortcut) arguments map onto argument names.
    fn shortcut(&self) -> Shortcut;

    /// Builds the filter, or explains precisely what is wrong with the arguments.
    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError>;
}

/// The built-in filter factories.
pub fn builtins() -> Vec<Box<dyn FilterFactory>> {
    vec![
        Box::new(add_request_header::AddRequestHeaderFactory),
        Box::new(add_request_parameter::AddRequestParameterFactory),
        Box::new(add_response_header::AddResponseHeaderFactory),
        Box::new(alert_scaling::AlertScalingFactory),
        Box::new(allow_methods::AllowMethodsFactory),
        Box::new(basic_auth::BasicAuthFactory),
        Box::new(call_id::CallIdFactory),
        Box::new(circuit_breaker::CircuitBreakerFactory),
        Box::new(function_metrics::FunctionMetricsFactory),
        Box::new(gateway_info::GatewayInfoFactory),
        Box::new(invocation_count::InvocationCountFactory),
        Box::new(load_balancer::LoadBalancerFactory),
        Box::new(prefix_path::PrefixPathFactory),
        Box::new(preserve_host_header::PreserveHostHeaderFactory),
        Box::new(redirect_to::RedirectToFactory),
        Box::new(remove_request_header::RemoveRequestHeaderFactory),
        Box::new(remove_request_parameter::RemoveRequestParameterFactory),
        Box::new(remove_response_header::RemoveResponseHeaderFactory),
        Box::new(retry::RetryFactory),
        Box::new(rewrite_path::RewritePathFactory),
        Box::new(scale_from_zero::ScaleFromZeroFactory),
        Box::new(set_path::SetPathFactory),
        Box::new(set_request_header::SetRequestHeaderFactory),
        Box::new(set_request_host_header::SetRequestHostHeaderFactory),
        Box::new(set_response_header::SetResponseHeaderFactory),
        Box::new(set_status::SetStatusFactory),
        Box::new(strip_prefix::StripPrefixFactory),
        Box::new(validate_scale_request::ValidateScaleRequestFactory),
    ]
}
