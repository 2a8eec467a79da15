//! Running a gateway: the builder that custom factories are registered with, the shared state
//! every request reads, the listeners, and what reloads the config.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use futures_util::future::Either;
use http::{HeaderValue, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;
use weir_filters::{Body, FilterFactory};
use weir_predicates::PredicateFactory;

use crate::compile::{Registry, Resources, Snapshot};
use crate::config::{ConfigErrors, Source};
use crate::metrics::{BreakerCollector, Metrics};
use crate::proxy::balance::Resolver;
use crate::proxy::guard::{self, Verdict};
use crate::proxy::normalize::normalize_path;
use crate::proxy::{dispatch, Conn};
use crate::reload::{watch::FileWatch, Origin, Reloader};
use crate::{admin, server};
use weir_filters::random_u64;

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config could not be read or has errors.
    #[error("{0}")]
    Config(ConfigErrors),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The config file could not be watched.
    #[error("cannot watch the config file for changes: {0}")]
    Watch(#[from] notify::Error),
}

/// Looks up `${NAME}` placeholders.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What every request reads: the current snapshot and the long-lived parts that outlive it.
pub struct Shared {
    /// The current compiled config, swapped whole.
    pub snapshot: ArcSwap<Snapshot>,
    /// Metrics.
    pub metrics: Metrics,
    /// Factories, forwarding clients and filter state: kept across reloads.
    pub resources: Resources,
    next_request_id: AtomicU64,
    unmatched: Arc<str>,
    rejected: Arc<str>,
}

impl Shared {
    /// Handles one request from the main listener. The request is checked and its route's
    /// chain started before the returned future is: the future (which the connection holds,
    /// and moves, for every request) keeps only what it awaits, what the metrics need, and
    /// the snapshot the request started on.
    pub fn handle(
        self: &Arc<Self>,
        request: Request<Body>,
        conn: Conn,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        let start = Instant::now();
        let snapshot = self.snapshot.load_full();
        let (mut parts, body) = request.into_parts();
        let method = parts.method.clone();
        let verdict = match guard::check(&mut parts, conn.framing) {
            Verdict::Pass => match normalize_path(parts.uri.path()) {
                Ok(std::borrow::Cow::Borrowed(_)) => Verdict::Pass,
                Ok(std::borrow::Cow::Owned(path)) => {
                    let pq = match parts.uri.query() {
                        Some(q) => format!("{path}?{q}"),
                        None => path,
                    };
                    let mut uri = std::mem::take(&mut parts.uri).into_parts();
                    uri.path_and_query = pq.parse().ok();
                    parts.uri = http::Uri::from_parts(uri).unwrap_or_default();
                    Verdict::Pass
                }
                Err(rejected) => Verdict::Reject(StatusCode::BAD_REQUEST, rejected.0),
            },
            other => other,
        };
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        if verdict != Verdict::Pass {
            let response = answer_directly(verdict, &parts, request_id);
            self.metrics.record(
                &self.rejected,
                &method,
                response.status().as_u16(),
                start.elapsed(),
            );
            return Either::Left(std::future::ready(response));
        }
        let request = Request::from_parts(parts, body);
        let dispatched = dispatch(&snapshot.table, request, conn, request_id, 0);
        let this = self.clone();
        Either::Right(async move {
            // The request finishes on the snapshot it started on, even if a reload replaces
            // it meanwhile (`forward:` routes look their table up through it).
            let _snapshot = snapshot;
            let (response, route) = dispatched.await;
            let route = route.as_ref().unwrap_or(&this.unmatched);
            this.metrics
                .record(route, &method, response.status().as_u16(), start.elapsed());
            response
        })
    }
}

/// The answer to a request the guard or the path policy stopped: `OPTIONS *`, or a JSON error.
/// On HTTP/1 the connection is closed after it: the rest of what the client sent is not read.
fn answer_directly(
    verdict: Verdict,
    parts: &http::request::Parts,
    request_id: u64,
) -> Response<Body> {
    let mut response = match verdict {
        Verdict::OptionsStar => {
            let mut response = Response::new(Body::Empty);
            response
                .headers_mut()
                .insert(http::header::ALLOW, HeaderValue::from_static(guard::ALLOW));
            return response;
        }
        Verdict::Reject(status, message) => {
            tracing::debug!(
                status = status.as_u16(),
                reason = message,
                request_id = format_args!("{request_id:016x}"),
                "request rejected"
            );
            weir_filters::error_response(status, message, parts.uri.path(), None, request_id)
        }
        Verdict::Pass => Response::new(Body::Empty),
    };
    if parts.version < http::Version::HTTP_2 {
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Builds a gateway: its config, listeners and any custom predicate or filter factories.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let gateway = weir::Gateway::builder()
///     .predicate(weir_predicates::number::NumberFactory) // your own factory goes here
///     .config_file("routes.yaml")
///     .start()
///     .await?;
/// gateway.wait().await;
/// # Ok(()) }
/// ```
pub struct GatewayBuilder {
    registry: Registry,
    resolver: Option<Arc<dyn Resolver>>,
    origin: Origin,
    listen: Option<SocketAddr>,
    admin_listen: Option<SocketAddr>,
    env: EnvLookup,
}

/// The entry point of the library API.
pub struct Gateway;

impl Gateway {
    /// A builder with the built-in factories and the embedded default config.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            registry: Registry::default(),
            resolver: None,
            origin: Origin::Embedded,
            listen: None,
            admin_listen: None,
            env: Arc::new(|name| std::env::var(name).ok()),
        }
    }
}

impl GatewayBuilder {
    /// Registers a predicate factory (replacing a built-in of the same name).
    pub fn predicate(mut self, factory: impl PredicateFactory) -> Self {
        self.registry.add_predicate(factory);
        self
    }

    /// Registers a filter factory (replacing a built-in of the same name).
    pub fn filter(mut self, factory: impl FilterFactory) -> Self {
        self.registry.add_filter(factory);
        self
    }

    /// Replaces the resolver of DNS services (`services.NAME.dns`), for example with one a test
    /// controls.
    pub fn resolver(mut self, resolver: impl Resolver + 'static) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    /// Runs the config file at `path`, and reloads it whenever it changes.
    pub fn config_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.origin = Origin::File(path.into());
        self
    }

    /// Runs a config given as text; `name` stands for the file in messages.
    pub fn config_text(mut self, name: &str, text: &str) -> Self {
        self.origin = Origin::Text(Source {
            name: Arc::from(name),
            text: text.to_string(),
        });
        self
    }

    /// Overrides the main listen address from the config.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(addr);
        self
    }

    /// Overrides the admin listen address from the config.
    pub fn admin_listen(mut self, addr: SocketAddr) -> Self {
        self.admin_listen = Some(addr);
        self
    }

    /// Replaces the environment that `${NAME}` placeholders read.
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Loads and compiles the config, binds the listeners, starts serving in the background
    /// and, for a config file, starts watching it.
    pub async fn start(self) -> Result<RunningGateway, StartError> {
        let mut resources = Resources::new(self.registry);
        if let Some(resolver) = self.resolver {
            resources.resolver = resolver;
        }
        // Reading, compiling and any first DNS lookup block: keep them off the async workers.
        let (origin, env, listen, admin) = (
            self.origin.clone(),
            self.env.clone(),
            self.listen,
            self.admin_listen,
        );
        let (loaded, resources) = tokio::task::spawn_blocking(move || {
            let loaded = Reloader::load(&origin, &resources, &*env, listen, admin);
            (loaded, resources)
        })
        .await
        .map_err(|e| {
            StartError::Config(crate::config::ConfigErrors::internal(&format!(
                "loading the config failed: {e}"
            )))
        })?;
        let (snapshot, sha256) = loaded.map_err(StartError::Config)?;
        for warning in &snapshot.config.warnings {
            tracing::warn!("{warning}");
        }
        let config = snapshot.config.clone();
        tracing::info!(
            source = %config.source,
            routes = snapshot.table.routes().len(),
            "config loaded"
        );

        let bind = |what: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let main = bind("main listener", config.server.listen).await?;
        let admin_listener = bind("admin listener", config.admin.listen).await?;
        let local = |listener: &TcpListener, what, addr| {
            listener
                .local_addr()
                .map_err(|source| StartError::Bind { what, addr, source })
        };
        let listen_addr = local(&main, "main listener", config.server.listen)?;
        let admin_addr = local(&admin_listener, "admin listener", config.admin.listen)?;
        let metrics_listener = match config.metrics.listen {
            Some(addr) => {
                let listener = bind("metrics listener", addr).await?;
                let bound = local(&listener, "metrics listener", addr)?;
                Some((listener, bound))
            }
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().map(|(_, addr)| *addr);
        // The config's own address was warned about when it loaded; an override was not.
        if self.admin_listen.is_some()
            && config.admin.token.is_none()
            && !admin_addr.ip().is_loopback()
        {
            tracing::warn!(address = %admin_addr, "the admin API listens beyond this machine without `admin.token`: anyone who can reach it can read the config and reload it");
        }

        let mut metrics = Metrics::default();
        metrics
            .registry_mut()
            .register_collector(Box::new(BreakerCollector(resources.state.clone())));
        let (unmatched, rejected): (Arc<str>, Arc<str>) = ("unmatched".into(), "rejected".into());
        let route_ids = snapshot.table.routes().iter().map(|r| r.id.clone());
        metrics.add_routes(route_ids.chain([unmatched.clone(), rejected.clone()]));
        let shared = Arc::new(Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
            resources,
            next_request_id: AtomicU64::new(random_u64() >> 16),
            unmatched,
            rejected,
        });
        let reloader = Arc::new(Reloader::new(
            shared.clone(),
            self.origin.clone(),
            self.env.clone(),
            self.listen,
            self.admin_listen,
            sha256,
        ));
        reloader.watch_certificates();
        let watch = match &self.origin {
            Origin::File(path) => {
                let reloader = reloader.clone();
                Some(crate::reload::watch::watch_file(
                    path,
                    config.reload.debounce,
                    move || {
                        let reloader = reloader.clone();
                        async move {
                            let _ = reloader.reload("file changed").await;
                        }
                    },
                )?)
            }
            _ => None,
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        if shared
            .snapshot
            .load()
            .table
            .routes()
            .iter()
            .any(|r| r.uri == crate::config::RouteUri::Queue)
        {
            tasks.push(tokio::spawn(crate::queue::worker::open_and_run(
                config.async_queue.clone(),
                shared.clone(),
                shutdown_rx.clone(),
            )));
        }
        // The SIGHUP handler is installed before the gateway says it is listening: until it
        // is, a SIGHUP would kill the process.
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => tasks.push(tokio::spawn(reload_on_sighup(
                reloader.clone(),
                hangups,
                shutdown_rx.clone(),
            ))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload with the admin API instead")
            }
        }
        tracing::info!(address = %listen_addr, "listening (gateway)");
        if let Some((listener, addr)) = metrics_listener {
            tracing::info!(address = %addr, "listening (metrics)");
            let shared = shared.clone();
            tasks.push(tokio::spawn(server::serve(
                listener,
                move |request, _| {
                    let shared = shared.clone();
                    async move {
                        crate::metrics::metrics_listener(
                            &shared.metrics,
                            &shared.resources.state,
                            &request,
                        )
                    }
                },
                shutdown_rx.clone(),
            )));
        }
        crate::openfaas::warn_open_system_routes(&shared.snapshot.load());
        tracing::info!(address = %admin_addr, "listening (admin)");
        tasks.push(tokio::spawn(server::serve_with(
            main,
            {
                let shared = shared.clone();
                move |request, conn| shared.handle(request, conn)
            },
            shutdown_rx.clone(),
            server::Timeouts {
                read: config.server.read_timeout,
                write: config.server.write_timeout,
            },
            config.server.ssl.as_ref().map(|ssl| {
                // Each handshake uses the running config's certificate: a reload renews it.
                // A reload never takes `server.ssl` out of the running config (it keeps the
                // old one until a restart: see Reloader::swap); the start-up settings are
                // only what an `Option` needs.
                let (shared, first) = (shared.clone(), ssl.server_config.clone());
                Arc::new(move || {
                    let snapshot = shared.snapshot.load();
                    snapshot
                        .config
                        .server
                        .ssl
                        .as_ref()
                        .map_or_else(|| first.clone(), |ssl| ssl.server_config.clone())
                }) as server::tls::Current
            }),
        )));
        tasks.push(tokio::spawn(server::serve(
            admin_listener,
            {
                let reloader = reloader.clone();
                move |request, _| {
                    let reloader = reloader.clone();
                    async move { admin::handle(&reloader, request).await }
                }
            },
            shutdown_rx,
        )));
        Ok(RunningGateway {
            listen_addr,
            admin_addr,
            metrics_addr,
            reloader,
            shutdown: shutdown_tx,
            tasks,
            _watch: watch,
        })
    }
}

/// Reloads the config on every SIGHUP until shutdown.
#[cfg(unix)]
async fn reload_on_sighup(
    reloader: Arc<Reloader>,
    mut hangups: tokio::signal::unix::Signal,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            got = hangups.recv() => {
                if got.is_none() {
                    return;
                }
                let _ = reloader.reload("SIGHUP").await;
            }
            _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
        }
    }
}

/// A started gateway.
pub struct RunningGateway {
    listen_addr: SocketAddr,
    admin_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    reloader: Arc<Reloader>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _watch: Option<FileWatch>,
}

impl RunningGateway {
    /// The bound main address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The bound metrics address, when the config has `metrics.listen`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        self.reloader.shared()
    }

    /// What reloads the config.
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// Waits until the listeners stop.
    pub async fn wait(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Stops accepting connections, lets open ones finish, and waits.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.wait().await;
    }
}
