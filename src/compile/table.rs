use std::sync::Arc;

use weir_filters::HttpService;
use weir_predicates::{Captures, Predicate, RequestView};

use super::index::RouteIndex;
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
    index: RouteIndex,
}

impl RouteTable {
    /// A table of `routes`, sorted stably by order, and its index.
    pub fn new(mut routes: Vec<Arc<Route>>) -> Self {
        routes.sort_by_key(|r| r.order);
        let index = RouteIndex::new(
            routes
                .iter()
                .map(|r| r.predicates.iter().find_map(|p| p.path_prefixes())),
        );
        Self { routes, index }
    }

    /// The first route whose predicates all match, in table order. The index narrows the
    /// routes tried to those whose path prefix fits the request (see [`RouteIndex`]); the
    /// answer is the one a full scan would give. `captures` holds that route's variables
    /// afterwards (and nothing from routes that did not match).
    pub fn find(&self, request: &RequestView<'_>, captures: &mut Captures) -> Option<&Arc<Route>> {
        let position = self.index.first(request.path, |i| {
            captures.truncate(0);
            self.routes[i as usize].matches(request, captures)
        })?;
        self.routes.get(position as usize)
    }

    /// [`RouteTable::find`] without the index: every route in order. For tests and benches.
    pub fn find_by_scan(
        &self,
        request: &RequestView<'_>,
        captures: &mut Captures,
    ) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| {
            captures.truncate(0);
            route.matches(request, captures)
        })
    }

    /// How many routes cannot be indexed, and so are tried for every request.
    pub fn unindexed(&self) -> usize {
        self.index.unindexed()
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
