use std::sync::Arc;

use weir_filters::HttpService;
use weir_predicates::{Captures, Predicate, RequestView};

use crate::config::RouteUri;

/// A compiled route.
pub struct Route {
    /// The route id.
    pub id: Arc<str>,
    /// Its order.
    pub order: i32,
    /// Where it sends requests.
    pub uri: RouteUri,
    /// Its predicates; all must match.
    pub predicates: Vec<Box<dyn Predicate>>,
    /// Its filters around its forwarder.
    pub service: HttpService,
    /// Each predicate with its resolved arguments, for `weir check` and the admin API.
    pub predicate_text: Vec<String>,
    /// Each filter (defaults included, in run order) with its resolved arguments.
    pub filter_text: Vec<String>,
    /// The route's `metadata`.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Route {
    /// Whether every predicate matches; variables captured go into `captures`.
    pub fn matches(&self, request: &RequestView<'_>, captures: &mut Captures) -> bool {
        self.predicates.iter().all(|p| p.test(request, captures))
    }
}

/// The routes of one config, in matching order: by `order`, then file order.
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// A table of `routes`, sorted stably by order.
    pub fn new(mut routes: Vec<Arc<Route>>) -> Self {
        routes.sort_by_key(|r| r.order);
        Self { routes }
    }

    /// The first route whose predicates all match. `captures` holds that route's variables
    /// afterwards (and nothing from routes that did not match).
    pub fn find(&self, request: &RequestView<'_>, captures: &mut Captures) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| {
            captures.truncate(0);
            route.matches(request, captures)
        })
    }

    /// Every route in matching order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// The route with id `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| &*r.id == id)
    }
}
