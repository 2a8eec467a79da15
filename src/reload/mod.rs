//! Hot reload: a saved file, SIGHUP or `POST /actuator/gateway/refresh` compiles the whole
//! config and swaps it in as one piece, or leaves the running config untouched and reports why.
//!
//! ```text
//! trigger ─► read ─► build (load + compile, off the async workers) ─┬─► ok:  swap snapshot, keep filter state, version+1
//!                                                                   └─► err: old snapshot keeps serving, last_error set
//! ```
//! A request loads the snapshot once when it starts, so it finishes on the table it started
//! with; every request that starts after the swap sees the new one.

pub mod files;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::compile::{build, Resources, Snapshot};
use crate::config::{ConfigError, ConfigErrors, Pos, Source};
use crate::gateway::{EnvLookup, Shared};

/// Where the config comes from.
#[derive(Clone)]
pub enum Origin {
    /// The embedded default (not watched).
    Embedded,
    /// A file (watched).
    File(PathBuf),
    /// Text given to the builder (not watched).
    Text(Source),
}

impl Origin {
    fn read(&self) -> Result<Source, ConfigErrors> {
        match self {
            Origin::Embedded => Ok(Source::embedded()),
            Origin::Text(source) => Ok(source.clone()),
            Origin::File(path) => Source::read(path).map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    file: Arc::from(path.display().to_string()),
                    pos: Pos::default(),
                    route: None,
                    message: format!("cannot read the config file: {e}"),
                }])
            }),
        }
    }
}

/// The last failed reload, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    /// The first error.
    pub message: String,
    /// Its line (0 when it has none, such as an unreadable file).
    pub line: usize,
    /// Its column.
    pub column: usize,
    /// Its route, when it is in one.
    pub route: Option<String>,
    /// When the reload failed (RFC 3339).
    pub time: String,
    /// Every error, one line each.
    pub errors: Vec<String>,
}

/// The state of the running config, as `GET /actuator/gateway/config` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// Increments on every successful load, even when the content did not change.
    pub version: u64,
    /// When the running config was loaded (RFC 3339).
    pub loaded_at: String,
    /// The file, or `<embedded default>`.
    pub source: String,
    /// SHA-256 of the running config's text, in hex.
    pub sha256: String,
    /// How many routes it has.
    pub routes: usize,
    /// The last reload that failed, until a good one replaces it.
    pub last_error: Option<LastError>,
    /// Settings changed in the file that only take effect after a restart.
    pub restart_needed: Vec<String>,
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// Reloads the config of one running gateway. Reloads are serialised.
pub struct Reloader {
    shared: Arc<Shared>,
    origin: Origin,
    env: EnvLookup,
    listen_override: Option<SocketAddr>,
    admin_override: Option<SocketAddr>,
    status: Mutex<ConfigStatus>,
    lock: tokio::sync::Mutex<()>,
    files: files::FileWatches,
    /// The watch of the running config's TLS certificate and key, with their paths.
    certificates: Mutex<Option<(Vec<PathBuf>, watch::FileWatch)>>,
}

impl Reloader {
    /// A reloader for a gateway that started with `status`.
    pub fn new(
        shared: Arc<Shared>,
        origin: Origin,
        env: EnvLookup,
        listen_override: Option<SocketAddr>,
        admin_override: Option<SocketAddr>,
        sha256: String,
    ) -> Self {
        let snapshot = shared.snapshot.load();
        let status = ConfigStatus {
            version: 1,
            loaded_at: now(),
            source: snapshot.config.source.to_string(),
            sha256,
            routes: snapshot.table.routes().len(),
            last_error: None,
            restart_needed: Vec::new(),
        };
        drop(snapshot);
        let files = files::FileWatches::default();
        files.sync(&shared.resources.state);
        Self {
            shared,
            origin,
            env,
            listen_override,
            admin_override,
            status: Mutex::new(status),
            lock: tokio::sync::Mutex::new(()),
            files,
            certificates: Mutex::default(),
        }
    }

    /// Reads and compiles the config of `origin`, applying the listen overrides; returns the
    /// snapshot and the SHA-256 of the text. Blocking: run it off the async workers.
    pub fn load(
        origin: &Origin,
        resources: &Resources,
        env: &dyn Fn(&str) -> Option<String>,
        listen: Option<SocketAddr>,
        admin: Option<SocketAddr>,
    ) -> Result<(Snapshot, String), ConfigErrors> {
        let source = origin.read()?;
        let mut snapshot = build(&source, resources, env)?;
        if let Some(addr) = listen {
            snapshot.config.server.listen = addr;
        }
        if let Some(addr) = admin {
            snapshot.config.admin.listen = addr;
        }
        Ok((snapshot, sha256_hex(&source.text)))
    }

    /// Watches the TLS certificate and key the running config names, so that a renewal
    /// written in place (certbot, cert-manager, a Kubernetes secret) reloads the config as
    /// saving it would. Called at start-up and after each reload; the watch follows the
    /// paths. Needs a Tokio runtime.
    pub fn watch_certificates(self: &Arc<Self>) {
        let snapshot = self.shared.snapshot.load();
        let paths: Vec<PathBuf> = snapshot
            .config
            .server
            .ssl
            .iter()
            .flat_map(|ssl| [ssl.certificate.clone(), ssl.private_key.clone()])
            .collect();
        let mut watched = self.certificates.lock().unwrap_or_else(|e| e.into_inner());
        if watched
            .as_ref()
            .map_or(paths.is_empty(), |(now, _)| *now == paths)
        {
            return;
        }
        *watched = None;
        if paths.is_empty() {
            return;
        }
        // One watch over both files: a renewal rewrites them together, and is one reload.
        let reloader = Arc::downgrade(self);
        let watch = watch::watch_files(&paths, snapshot.config.reload.debounce, move || {
            let reloader = reloader.clone();
            async move {
                if let Some(reloader) = reloader.upgrade() {
                    let _ = reloader.reload("TLS certificate or key changed").await;
                }
            }
        });
        match watch {
            Ok(watch) => *watched = Some((paths, watch)),
            Err(e) => tracing::warn!(
                "cannot watch the TLS certificate and key for changes ({e}); a renewed certificate takes effect at the next reload"
            ),
        }
    }

    /// The gateway's shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The state of the running config.
    pub fn status(&self) -> ConfigStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The origin of the config.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Reads, compiles and swaps in the config. `trigger` says why, for the log. On failure
    /// the running config is untouched and the errors are returned, logged and kept for the
    /// admin API.
    pub async fn reload(
        self: &Arc<Self>,
        trigger: &'static str,
    ) -> Result<ConfigStatus, ConfigErrors> {
        let _serial = self.lock.lock().await;
        let this = self.clone();
        let built = tokio::task::spawn_blocking(move || {
            Reloader::load(
                &this.origin,
                &this.shared.resources,
                &*this.env,
                this.listen_override,
                this.admin_override,
            )
        })
        .await
        .unwrap_or_else(|e| {
            Err(ConfigErrors::internal(&format!(
                "compiling the config failed unexpectedly: {e}"
            )))
        });
        match built {
            Ok((snapshot, sha256)) => {
                let status = self.swap(snapshot, sha256, trigger);
                self.watch_certificates();
                Ok(status)
            }
            Err(errors) => {
                self.fail(&errors, trigger);
                Err(errors)
            }
        }
    }

    fn swap(&self, mut snapshot: Snapshot, sha256: String, trigger: &'static str) -> ConfigStatus {
        let previous = self.shared.snapshot.load_full();
        let old = &previous;
        let mut restart_needed = Vec::new();
        if snapshot.config.server.listen != old.config.server.listen {
            restart_needed.push(format!(
                "server.listen: {} -> {} (the gateway keeps listening on {} until restarted)",
                old.config.server.listen, snapshot.config.server.listen, old.config.server.listen
            ));
        }
        if snapshot.config.admin.listen != old.config.admin.listen {
            restart_needed.push(format!(
                "admin.listen: {} -> {} (the admin API keeps listening on {} until restarted)",
                old.config.admin.listen, snapshot.config.admin.listen, old.config.admin.listen
            ));
        }
        if snapshot.config.server.read_timeout != old.config.server.read_timeout {
            restart_needed.push(format!(
                "server.read-timeout: {:?} -> {:?} (the listener keeps its timeout until restarted)",
                old.config.server.read_timeout, snapshot.config.server.read_timeout
            ));
        }
        if snapshot.config.metrics.listen != old.config.metrics.listen {
            restart_needed.push(format!(
                "metrics.listen: {:?} -> {:?} (the metrics listener stays as it is until restarted)",
                old.config.metrics.listen, snapshot.config.metrics.listen
            ));
        }
        if snapshot.config.async_queue != old.config.async_queue {
            restart_needed.push(
                "async: the queue and its worker keep their settings until restarted".to_string(),
            );
        }
        // The listener reads its certificate from the running snapshot at each handshake: a
        // `server.ssl` added or removed is carried over as it was until a restart, and an
        // unchanged one keeps its settings (and their session cache).
        let ssl = &mut snapshot.config.server.ssl;
        match (&old.config.server.ssl, &*ssl) {
            (None, Some(_)) => {
                restart_needed.push(
                    "server.ssl: added (the listener serves plain HTTP until restarted)"
                        .to_string(),
                );
                *ssl = None;
            }
            (Some(_), None) => {
                restart_needed.push(
                    "server.ssl: removed (the listener keeps serving TLS, with its current certificate, until restarted)"
                        .to_string(),
                );
                ssl.clone_from(&old.config.server.ssl);
            }
            (Some(before), Some(now)) if before == now => ssl.clone_from(&old.config.server.ssl),
            (Some(_), Some(now)) => tracing::info!(
                certificate = %now.certificate.display(),
                "TLS certificate reloaded: new handshakes use it"
            ),
            (None, None) => {}
        }
        if snapshot.config.reload.debounce != old.config.reload.debounce {
            restart_needed.push(format!(
                "reload.debounce: {:?} -> {:?} (the watch keeps its debounce until restarted)",
                old.config.reload.debounce, snapshot.config.reload.debounce
            ));
        }
        for warning in &snapshot.config.warnings {
            tracing::warn!("{warning}");
        }
        for item in &restart_needed {
            tracing::warn!("restart needed: {item}");
        }
        let routes = snapshot.table.routes().len();
        let generation = snapshot.generation;
        let source = snapshot.config.source.to_string();
        // Settings read only at start-up keep their running values in the served config.
        let mut snapshot = snapshot;
        snapshot.config.server.listen = old.config.server.listen;
        snapshot.config.admin.listen = old.config.admin.listen;
        snapshot.config.metrics.listen = old.config.metrics.listen;
        snapshot.config.server.read_timeout = old.config.server.read_timeout;
        snapshot.config.reload.debounce = old.config.reload.debounce;
        let route_ids = snapshot.table.routes().iter().map(|r| r.id.clone());
        self.shared.metrics.add_routes(route_ids);
        let replaced = self.shared.snapshot.swap(Arc::new(snapshot));
        drop(previous);
        // Freeing a large table takes a while; the new one already serves, so do it aside.
        // (Requests still running on the old table hold it until they finish.)
        tokio::task::spawn_blocking(move || drop(replaced));
        self.shared.resources.state.retain(generation);
        self.files.sync(&self.shared.resources.state);
        self.shared.metrics.reload_succeeded();
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.version += 1;
        status.loaded_at = now();
        status.source = source;
        status.sha256 = sha256;
        status.routes = routes;
        status.last_error = None;
        status.restart_needed = restart_needed;
        tracing::info!(version = status.version, routes, trigger, "config reloaded");
        status.clone()
    }

    fn fail(&self, errors: &ConfigErrors, trigger: &'static str) {
        self.shared.metrics.reload_failed();
        let first = errors.first();
        tracing::error!(
            trigger,
            errors = errors.0.len(),
            "config not reloaded; the previous config keeps serving"
        );
        for e in &errors.0 {
            tracing::error!("{e}");
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.last_error = Some(LastError {
            message: first.map(|e| e.message.clone()).unwrap_or_default(),
            line: first.map_or(0, |e| e.pos.line),
            column: first.map_or(0, |e| e.pos.col),
            route: first.and_then(|e| e.route.clone()),
            time: now(),
            errors: errors.0.iter().map(ToString::to_string).collect(),
        });
    }
}
