//! Turning a [`Config`] into a [`Snapshot`]: every predicate and filter built once by its
//! factory, every route wrapped around its forwarder, every error collected with its place.
//!
//! Start-up, `weir check` and reload all go through [`compile`].

mod index;
mod registry;
mod table;

use std::sync::{Arc, OnceLock, Weak};

use weir_filters::{Args, Filter, FilterContext, HttpService, StateStore};
use weir_predicates::{ArgError, BuildContext, Shortcut, WeightGroups};

pub use registry::Registry;
pub use table::{Route, RouteTable};

use crate::config::ServiceDef;
use crate::config::{
    self, Config, ConfigError, ConfigErrors, FactoryDef, RawArgs, RouteDef, RouteUri, Source,
};
use crate::proxy::balance::{Endpoint, Resolver, Service, SystemResolver};
use crate::proxy::{ForwardTo, Forwarder, NoOp, Target, Upstream};
use std::collections::HashMap;
use weir_filters::{StateKey, Upstreams};

/// A compiled config: everything a request needs, swapped in as one piece.
pub struct Snapshot {
    /// The routes.
    pub table: Arc<RouteTable>,
    /// The config it was compiled from.
    pub config: Config,
    /// The compile that made it, as counted by [`StateStore::begin`].
    pub generation: u64,
}

/// What outlives every snapshot: the factories configs may name, the forwarding clients (and
/// their pooled connections), and the state of stateful filters.
pub struct Resources {
    /// The predicate and filter factories.
    pub registry: Registry,
    /// The forwarding clients.
    pub upstream: Upstream,
    /// State that survives reloads: filters' state, and services.
    pub state: Arc<StateStore>,
    /// Resolves the names of DNS services.
    pub resolver: Arc<dyn Resolver>,
    /// The async queue, once it is open (used by `queue:` routes).
    pub queue: crate::queue::QueueSlot,
}

impl Default for Resources {
    fn default() -> Self {
        Self::new(Registry::default())
    }
}

impl Resources {
    /// The factories of `registry`, with fresh clients and state, and the system resolver.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            upstream: Upstream::default(),
            state: Arc::new(StateStore::default()),
            resolver: Arc::new(SystemResolver),
            queue: Default::default(),
        }
    }

    /// Every service in use, by name.
    pub fn services(&self) -> Vec<Arc<Service>> {
        let mut services: Vec<Arc<Service>> = self
            .state
            .values::<Arc<Service>>()
            .into_iter()
            .map(|(_, s)| (*s).clone())
            .collect();
        services.sort_by(|a, b| a.name().cmp(b.name()));
        services
    }
}

/// What filters reach through [`Upstreams`] while a config compiles: other routes of the table
/// being built, and uris.
struct CompileUpstreams<'a> {
    config: &'a Config,
    upstream: &'a Upstream,
    table_cell: &'a Arc<OnceLock<Weak<RouteTable>>>,
}

impl Upstreams for CompileUpstreams<'_> {
    fn forward(&self, path: &str) -> HttpService {
        HttpService::new(ForwardTo::new(path, self.table_cell.clone()))
    }

    fn uri(&self, uri: &str) -> Result<HttpService, String> {
        let (tls, authority) = config::parse_instance_uri(uri)
            .map_err(|e| format!("{e}; a fallback is `forward:/path` or `http(s)://host:port`"))?;
        Ok(Forwarder::new(
            self.upstream
                .client(self.config.client.connect_timeout, self.config.client.pool),
            Target::Fixed(Arc::new(Endpoint::new(tls, authority))),
            self.config.client.response_timeout,
            self.config.server.trusted_proxies.clone(),
        )
        .into_service())
    }
}

fn args_of(def: &FactoryDef, shortcut: Shortcut) -> Result<Args, ArgError> {
    match &def.args {
        RawArgs::Shortcut(values) => Args::shortcut(&def.name, shortcut, values.clone()),
        RawArgs::Expanded(pairs) => Ok(Args::expanded(&def.name, shortcut, pairs.clone())),
    }
}

/// SCG's order of default and route filters: each filter ranks by its position in its own
/// list, and on equal rank the default filter goes first: d1, r1, d2, r2, ...
pub fn merge_filters<'a>(defaults: &'a [FactoryDef], own: &'a [FactoryDef]) -> Vec<&'a FactoryDef> {
    let mut merged = Vec::with_capacity(defaults.len() + own.len());
    for i in 0..defaults.len().max(own.len()) {
        merged.extend(defaults.get(i));
        merged.extend(own.get(i));
    }
    merged
}

struct Compiler<'a> {
    config: &'a Config,
    queue: crate::queue::QueueSlot,
    registry: &'a Registry,
    upstream: &'a Upstream,
    services: HashMap<String, Arc<Service>>,
    state: &'a StateStore,
    generation: u64,
    table_cell: Arc<OnceLock<Weak<RouteTable>>>,
    weights: WeightGroups,
    errors: Vec<ConfigError>,
}

impl Compiler<'_> {
    fn error(&mut self, def_pos: crate::config::Pos, route: &str, message: String) {
        // A default filter is compiled into every route: its mistake is reported once, with
        // the first route it was found in, not once per route.
        if self
            .errors
            .iter()
            .any(|e| e.pos == def_pos && e.message == message)
        {
            return;
        }
        self.errors.push(ConfigError {
            file: self.config.source.clone(),
            pos: def_pos,
            route: Some(route.to_string()),
            message,
        });
    }

    /// Checks the default filters on their own, for a config without routes (where no route
    /// compiles them).
    fn default_filters_alone(&mut self) {
        let upstreams = CompileUpstreams {
            config: self.config,
            upstream: self.upstream,
            table_cell: &self.table_cell,
        };
        let ctx = FilterContext::new("", &[], self.state, self.generation, &upstreams);
        for f in &self.config.default_filters {
            let message = match self.registry.filter(&f.name) {
                Err(e) => e,
                Ok(factory) => match args_of(f, factory.shortcut()).and_then(|args| {
                    factory.build(&args, &ctx)?;
                    args.finish()
                }) {
                    Ok(()) => continue,
                    Err(e) => format!("`{}`: {e}", f.name),
                },
            };
            self.errors.push(ConfigError {
                file: self.config.source.clone(),
                pos: f.pos,
                route: None,
                message,
            });
        }
    }

    fn route(&mut self, def: &RouteDef) -> Option<Route> {
        let errors_before = self.errors.len();
        let mut predicates = Vec::new();
        let mut predicate_text = Vec::new();
        for p in &def.predicates {
            let factory = match self.registry.predicate(&p.name) {
                Ok(f) => f.clone(),
                Err(e) => {
                    self.error(p.pos, &def.id, e);
                    continue;
                }
            };
            let built = args_of(p, factory.shortcut()).and_then(|args| {
                let mut ctx = BuildContext::new(&def.id, &mut self.weights);
                let predicate = factory.build(&args, &mut ctx)?;
                args.finish()?;
                Ok((predicate, args.display()))
            });
            match built {
                Ok((predicate, text)) => {
                    predicates.push(predicate);
                    predicate_text.push(format!("{}({text})", p.name));
                }
                Err(e) => self.error(p.pos, &def.id, format!("`{}`: {e}", p.name)),
            }
        }
        let variables: Vec<String> = predicates.iter().flat_map(|p| p.variables()).collect();
        let table_cell = self.table_cell.clone();
        let upstreams = CompileUpstreams {
            config: self.config,
            upstream: self.upstream,
            table_cell: &table_cell,
        };
        let ctx = FilterContext::new(&def.id, &variables, self.state, self.generation, &upstreams);
        let mut filters: Vec<Filter> = Vec::new();
        let mut filter_text = Vec::new();
        for f in merge_filters(&self.config.default_filters, &def.filters) {
            let factory = match self.registry.filter(&f.name) {
                Ok(factory) => factory.clone(),
                Err(e) => {
                    self.error(f.pos, &def.id, e);
                    continue;
                }
            };
            let built = args_of(f, factory.shortcut()).and_then(|args| {
                let filter = factory.build(&args, &ctx)?;
                args.finish()?;
                Ok((filter, args.display()))
            });
            match built {
                Ok((filter, text)) => {
                    filters.push(filter);
                    filter_text.push(format!("{}({text})", f.name));
                }
                Err(e) => self.error(f.pos, &def.id, format!("`{}`: {e}", f.name)),
            }
        }
        let id: Arc<str> = Arc::from(def.id.as_str());
        let connect = def
            .metadata
            .connect_timeout
            .unwrap_or(self.config.client.connect_timeout);
        let response = match def.metadata.response_timeout {
            Some(per_route) => per_route,
            None => self.config.client.response_timeout,
        };
        let inner = match &def.uri {
            RouteUri::Http { tls, authority } => Forwarder::new(
                self.upstream.client(connect, self.config.client.pool),
                Target::Fixed(Arc::new(Endpoint::new(*tls, authority.clone()))),
                response,
                self.config.server.trusted_proxies.clone(),
            )
            .into_service(),
            RouteUri::Lb(name) => match self.services.get(name) {
                Some(service) => Forwarder::new(
                    self.upstream.client(connect, self.config.client.pool),
                    Target::Balanced(service.clone()),
                    response,
                    self.config.server.trusted_proxies.clone(),
                )
                .into_service(),
                None => {
                    let hint =
                        weir_predicates::closest(name, self.services.keys().map(String::as_str))
                            .map(|c| format!("did you mean `lb://{c}`? "))
                            .unwrap_or_default();
                    self.error(
                        def.pos,
                        &def.id,
                        format!("`lb://{name}`: no service `{name}` is defined; {hint}define it under `services:` with its `instances` or `dns`"),
                    );
                    HttpService::new(NoOp)
                }
            },
            RouteUri::Forward(path) => {
                HttpService::new(ForwardTo::new(path, self.table_cell.clone()))
            }
            RouteUri::NoOp => HttpService::new(NoOp),
            RouteUri::Queue => {
                if !variables.iter().any(|v| v == "name") {
                    self.error(
                        def.pos,
                        &def.id,
                        "a `queue:` route needs a `{name}` path variable naming the function, as in `Path=/async-function/{name}/**`".into(),
                    );
                }
                crate::queue::enqueue_service(self.queue.clone())
            }
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Route {
            id,
            order: def.order,
            uri: def.uri.clone(),
            predicates,
            service: weir_filters::chain(&filters, inner),
            predicate_text,
            filter_text,
            metadata: def.metadata.all.clone(),
        })
    }
}

/// The running service for `def`: the one from the previous config when its definition did not
/// change (with its positions and ejections), else a new one.
fn service(
    def: &ServiceDef,
    resources: &Resources,
    config: &Config,
    generation: u64,
) -> Arc<Service> {
    let key = StateKey {
        route: String::new(),
        factory: format!("service:{}", def.name),
        args: def.fingerprint(),
    };
    let kept = resources.state.get_or_init(key, generation, || {
        Service::start(
            def.clone(),
            resources
                .upstream
                .client(config.client.connect_timeout, config.client.pool),
            resources.resolver.clone(),
        )
    });
    (*kept).clone()
}

/// Loads and compiles `source`: the one path from text to a snapshot that start-up,
/// `weir check` and reload share. Returns every error of the file, in file order.
pub fn build(
    source: &Source,
    resources: &Resources,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Snapshot, ConfigErrors> {
    let (config, mut errors) = config::load_partial(source, env);
    match compile(config, resources) {
        Ok(snapshot) if errors.is_empty() => return Ok(snapshot),
        Ok(_) => {}
        Err(more) => errors.extend(more.0),
    }
    errors.sort_by_key(|e| (e.pos.line, e.pos.col));
    Err(ConfigErrors(errors))
}

/// Compiles `config`. Returns every error found, each with file, line, column and route.
pub fn compile(config: Config, resources: &Resources) -> Result<Snapshot, ConfigErrors> {
    let generation = resources.state.begin();
    let services = config
        .services
        .iter()
        .map(|def| {
            (
                def.name.clone(),
                service(def, resources, &config, generation),
            )
        })
        .collect();
    let mut compiler = Compiler {
        config: &config,
        queue: resources.queue.clone(),
        registry: &resources.registry,
        upstream: &resources.upstream,
        services,
        state: &resources.state,
        generation,
        table_cell: Arc::new(OnceLock::new()),
        weights: WeightGroups::default(),
        errors: Vec::new(),
    };
    let routes: Vec<Arc<Route>> = config
        .routes
        .iter()
        .filter(|r| r.enabled)
        .filter_map(|r| compiler.route(r).map(Arc::new))
        .collect();
    if !config.routes.iter().any(|r| r.enabled) {
        compiler.default_filters_alone();
    }
    if !compiler.errors.is_empty() {
        return Err(ConfigErrors(compiler.errors));
    }
    let generation = compiler.generation;
    compiler.weights.finish();
    let table = Arc::new(RouteTable::new(routes));
    let _ = compiler.table_cell.set(Arc::downgrade(&table));
    Ok(Snapshot {
        table,
        config,
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(name: &str) -> FactoryDef {
        FactoryDef {
            name: name.into(),
            args: RawArgs::Shortcut(vec![]),
            pos: Default::default(),
        }
    }

    #[test]
    fn default_filters_interleave_as_in_scg() {
        let d = [def("d1"), def("d2"), def("d3")];
        let r = [def("r1")];
        let names: Vec<&str> = merge_filters(&d, &r)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["d1", "r1", "d2", "d3"]);
    }

    /// A small deterministic generator, so that failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    #[test]
    fn the_index_finds_what_a_full_scan_finds() {
        use weir_predicates::{Captures, RequestView};
        const SEGMENTS: &[&str] = &["a", "b", "c", "{x}", "*", "a*", "{y:[ab]+}"];
        const TAILS: &[&str] = &["", "/**", "/{*rest}", "/"];
        const PATH_SEGMENTS: &[&str] = &["a", "b", "c", "ab", "abc", "", "."];
        let mut rng = Lcg(7);
        let mut compiled = 0;
        let headers = {
            let mut h = http::HeaderMap::new();
            h.insert("x-env", "blue".parse().unwrap());
            h
        };
        for _ in 0..300 {
            let mut yaml = String::from("gateway:\n  routes:\n");
            for r in 0..rng.next(12) + 1 {
                yaml.push_str(&format!(
                    "  - id: r{r}\n    uri: no://op\n    order: {}\n",
                    rng.next(3)
                ));
                match rng.next(5) {
                    0 => {} // no predicates: matches everything
                    1 => yaml.push_str("    predicates: [\"Header=X-Env, blue\"]\n"),
                    _ => {
                        let mut patterns = Vec::new();
                        for _ in 0..rng.next(2) + 1 {
                            let mut p = String::new();
                            for position in 0..rng.next(3) {
                                p.push('/');
                                // Variables are named by position: a name may not repeat.
                                let segment = SEGMENTS[rng.next(SEGMENTS.len())];
                                p.push_str(
                                    &segment
                                        .replace("{x}", &format!("{{x{position}}}"))
                                        .replace("{y:", &format!("{{y{position}:")),
                                );
                            }
                            p.push_str(TAILS[rng.next(TAILS.len())]);
                            if !p.starts_with('/') {
                                p.insert(0, '/');
                            }
                            patterns.push(p);
                        }
                        let flag = if rng.next(2) == 0 { ", false" } else { "" };
                        yaml.push_str(&format!(
                            "    predicates: [\"Path={}{flag}\"]\n",
                            patterns.join(",")
                        ));
                    }
                }
            }
            let source = Source {
                name: Arc::from("t.yaml"),
                text: yaml.clone(),
            };
            let Ok(snapshot) = build(&source, &Resources::default(), &|_| None) else {
                continue;
            };
            compiled += 1;
            for _ in 0..40 {
                let mut path = String::new();
                for _ in 0..rng.next(4) {
                    path.push('/');
                    path.push_str(PATH_SEGMENTS[rng.next(PATH_SEGMENTS.len())]);
                }
                if path.is_empty() || rng.next(4) == 0 {
                    path.push('/');
                }
                let view = RequestView {
                    method: &http::Method::GET,
                    path: &path,
                    query: None,
                    headers: &headers,
                    host: Some("h"),
                    remote: "127.0.0.1:1".parse().unwrap(),
                    seed: 1,
                };
                let (mut c1, mut c2) = (Captures::default(), Captures::default());
                let indexed = snapshot.table.find(&view, &mut c1).map(|r| r.id.clone());
                let scanned = snapshot
                    .table
                    .find_by_scan(&view, &mut c2)
                    .map(|r| r.id.clone());
                assert_eq!(indexed, scanned, "path {path:?} in\n{yaml}");
                assert_eq!(c1, c2, "captures for {path:?} in\n{yaml}");
            }
        }
        assert!(
            compiled > 200,
            "only {compiled} of 300 generated configs compiled"
        );
    }
}
