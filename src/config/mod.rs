//! Reading `routes.yaml`: the YAML tree, placeholders, SCG's roots and route shape, and
//! errors that point at the file, line, column and route.
//!
//! The result is a [`Config`]: plain definitions, not yet compiled. Factories never see YAML;
//! their arguments stay text until [`crate::compile`] hands them to the factory.

mod async_queue;
mod error;
mod placeholders;
mod services;
mod yaml;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Authority;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use weir_predicates::parse_duration;

pub use async_queue::{AsyncSettings, NatsSettings, QueueKind, WorkerSettings};
pub use error::{ConfigError, ConfigErrors};
pub use services::{
    parse_instance_uri, ActiveHealth, DnsDef, InstanceDef, PassiveHealth, ServiceDef,
};
pub use yaml::Pos;
use yaml::{Node, Value};

use crate::server::tls::TlsError;

/// The default config: the OpenFaaS gateway's routes, compiled into the binary.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../routes.example.yaml");

/// The name the embedded default config goes by in messages.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// The text of a config and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file path, or [`EMBEDDED_NAME`].
    pub name: Arc<str>,
    /// The YAML text.
    pub text: String,
}

impl Source {
    /// The embedded default config.
    pub fn embedded() -> Self {
        Self {
            name: Arc::from(EMBEDDED_NAME),
            text: EMBEDDED_DEFAULT.to_string(),
        }
    }

    /// Reads a config file.
    pub fn read(path: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self {
            name: Arc::from(path.display().to_string()),
            text: std::fs::read_to_string(path)?,
        })
    }
}

/// A loaded config, before compilation.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from.
    pub source: Arc<str>,
    /// The main listener and how it treats clients.
    pub server: ServerSettings,
    /// The admin listener.
    pub admin: AdminSettings,
    /// The metrics listener.
    pub metrics: MetricsSettings,
    /// The forwarding client.
    pub client: ClientSettings,
    /// Hot reload.
    pub reload: ReloadSettings,
    /// The services behind `lb://` routes.
    pub services: Vec<ServiceDef>,
    /// The queue behind `queue:` routes.
    pub async_queue: AsyncSettings,
    /// The routes in file order.
    pub routes: Vec<RouteDef>,
    /// Filters applied to every route.
    pub default_filters: Vec<FactoryDef>,
    /// Things that are allowed but probably not what the user meant.
    pub warnings: Vec<ConfigError>,
}

/// `server:` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSettings {
    /// Where the gateway listens (`server.listen`, or SCG's `server.port`).
    pub listen: SocketAddr,
    /// Peers whose `X-Forwarded-For` is kept and appended to (`server.trusted-proxies`).
    pub trusted_proxies: Vec<IpNet>,
    /// How long a connection may wait for a whole request head, from its opening or the end of
    /// the previous response (`server.read-timeout`); default 30 s.
    pub read_timeout: Option<Duration>,
    /// How long a request may take, from its head to the end of its response
    /// (`server.write-timeout`); default none.
    pub write_timeout: Option<Duration>,
    /// TLS on the main listener (`server.ssl`, as Spring Boot's PEM settings); none: plain
    /// HTTP.
    pub ssl: Option<SslSettings>,
}

/// `server.ssl`: the main listener's certificate and key, read (and checked) when the config
/// loads, so that a file that cannot be used is a config error and a reload with a renewed
/// certificate takes effect for the next handshake.
#[derive(Debug, Clone)]
pub struct SslSettings {
    /// The PEM file of the certificate chain (`server.ssl.certificate`).
    pub certificate: PathBuf,
    /// The PEM file of its private key (`server.ssl.certificate-private-key`).
    pub private_key: PathBuf,
    /// SHA-256 of both files' contents, as read: what tells a renewed certificate apart.
    digest: [u8; 32],
    /// The handshake settings built from them.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl PartialEq for SslSettings {
    fn eq(&self, other: &Self) -> bool {
        self.certificate == other.certificate
            && self.private_key == other.private_key
            && self.digest == other.digest
    }
}

/// `admin:` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    /// Where the admin API listens.
    pub listen: SocketAddr,
    /// The bearer token every admin request but `/actuator/health` must carry, when set.
    pub token: Option<Secret>,
}

/// A secret from the config (such as `admin.token`): compared in constant time, never shown,
/// not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Whether `offered` is the secret. The time taken does not depend on where the two
    /// differ, nor on their lengths: both are hashed first, and the hashes compared in
    /// constant time.
    pub fn matches(&self, offered: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(offered);
        a.ct_eq(&b).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(******)")
    }
}

/// `metrics:` settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricsSettings {
    /// Where `/metrics` and `/healthz` alone are served, without authentication, as the
    /// OpenFaaS gateway serves them on port 8082. `None` (the default): no such listener; the
    /// admin API still serves `/metrics`.
    pub listen: Option<SocketAddr>,
}

/// `httpclient:` settings, as SCG's `spring.cloud.gateway.httpclient`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// How long to wait for a connection to an upstream (default 5 s).
    pub connect_timeout: Duration,
    /// How long to wait for an upstream's response headers (default: no limit).
    pub response_timeout: Option<Duration>,
    /// `pool:`: how idle upstream connections are kept.
    pub pool: PoolLimits,
}

/// How the pool keeps idle connections (`httpclient.pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolLimits {
    /// An idle connection is closed after this long (`max-idle-time`, default 90 s).
    pub max_idle_time: Duration,
    /// Idle connections kept per upstream (`max-idle-per-host`, default 1024).
    pub max_idle_per_host: usize,
    /// Idle connections kept in all (`max-idle`, default 1024).
    pub max_idle: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        Self {
            max_idle_time: Duration::from_secs(90),
            max_idle_per_host: 1024,
            max_idle: 1024,
        }
    }
}

/// `reload:` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadSettings {
    /// How long the config file must stay quiet after a change before it is reloaded
    /// (default 200 ms). Read at start-up.
    pub debounce: Duration,
}

/// One route as written.
#[derive(Debug, Clone)]
pub struct RouteDef {
    /// The route id (generated when missing).
    pub id: String,
    /// Where requests go.
    pub uri: RouteUri,
    /// Lower orders are tried first; ties keep file order.
    pub order: i32,
    /// All must match.
    pub predicates: Vec<FactoryDef>,
    /// The route's own filters.
    pub filters: Vec<FactoryDef>,
    /// `metadata:`.
    pub metadata: Metadata,
    /// `enabled: false` leaves the route out.
    pub enabled: bool,
    /// Where the route starts.
    pub pos: Pos,
}

/// A route's `metadata:`.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    /// `response-timeout`: `Some(None)` when a negative value disables the global one.
    pub response_timeout: Option<Option<Duration>>,
    /// `connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// Every key, for the admin API.
    pub all: serde_json::Map<String, serde_json::Value>,
}

/// Where a route sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteUri {
    /// `http://` or `https://` host and port; the uri's path is ignored, as in SCG.
    Http {
        /// `https`.
        tls: bool,
        /// Host and port.
        authority: Authority,
    },
    /// `lb://NAME`: an instance of a service.
    Lb(String),
    /// `forward:/path`: dispatched again through the route table with this path.
    Forward(String),
    /// `no://op`: the route's filters answer; if none does, an empty 200.
    NoOp,
    /// `queue:`: the request is accepted into the async queue (202) and run later by the
    /// worker; the function is the route's `{name}` path variable.
    Queue,
}

impl std::fmt::Display for RouteUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteUri::Http { tls, authority } => {
                write!(f, "{}://{authority}", if *tls { "https" } else { "http" })
            }
            RouteUri::Lb(name) => write!(f, "lb://{name}"),
            RouteUri::Forward(path) => write!(f, "forward:{path}"),
            RouteUri::NoOp => f.write_str("no://op"),
            RouteUri::Queue => f.write_str("queue:"),
        }
    }
}

/// One predicate or filter entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryDef {
    /// The factory name.
    pub name: String,
    /// Its arguments.
    pub args: RawArgs,
    /// Where the entry is.
    pub pos: Pos,
}

/// Arguments as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawArgs {
    /// `Name=a,b`: the values, trimmed, empty ones dropped.
    Shortcut(Vec<String>),
    /// `name:` + `args:`: `(name, value)` pairs in file order; list elements become one pair
    /// each, nested keys are joined with `.`.
    Expanded(Vec<(String, String)>),
}

/// Whether `token` can be sent as a bearer token (RFC 6750's `b64token`, loosened to any
/// visible ASCII).
fn invalid_token(token: &str) -> bool {
    !token.bytes().all(|b| b.is_ascii_graphic())
}

const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";

struct Loader<'a> {
    file: Arc<str>,
    env: &'a dyn Fn(&str) -> Option<String>,
    route: Option<String>,
    /// Every route id written so far, to report duplicates.
    ids: HashSet<String>,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

/// Parses a milliseconds count (SCG's form) or a duration such as `5s`.
pub fn millis_or_duration(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(ms) => Ok(Duration::from_millis(ms)),
        Err(_) => parse_duration(text),
    }
}

/// Relaxed-binding comparison of a key with a known name: case and `-`/`_` do not matter.
fn key_is(key: &str, name: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| *c != '-' && *c != '_')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    norm(key) == norm(name)
}

fn suggestion(key: &str, known: &[&str]) -> String {
    weir_predicates::closest(key, known.iter().copied())
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_else(|| format!("; expected one of: {}", known.join(", ")))
}

impl Loader<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.clone(),
            pos,
            route: self.route.clone(),
            message: message.into(),
        });
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            file: self.file.clone(),
            pos,
            route: self.route.clone(),
            message: message.into(),
        });
    }

    /// `true` or `false` (around spaces allowed); `None`, with an error, for anything else.
    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match self.text(node, what).as_deref().map(str::trim) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                self.error(
                    node.pos,
                    format!("`{what}` must be `true` or `false`, found `{other}`"),
                );
                None
            }
            None => None,
        }
    }

    /// A scalar with its placeholders resolved.
    fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Scalar(s) => match placeholders::resolve(s, self.env) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.error(node.pos, e);
                    None
                }
            },
            _ => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a single value, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn entries<'n>(&mut self, node: &'n Node, what: &str) -> &'n [(Node, Node)] {
        match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "`{what}` must be a mapping of keys to values, found {}",
                        node.kind()
                    ),
                );
                &[]
            }
        }
    }

    fn items<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            _ => {
                self.error(
                    node.pos,
                    format!(
                        "`{what}` must be a list (entries starting with `- `), found {}",
                        node.kind()
                    ),
                );
                &[]
            }
        }
    }

    fn listen(&mut self, node: &Node, what: &str) -> Option<SocketAddr> {
        let text = self.text(node, what)?;
        match text.trim().parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.error(node.pos, format!("`{what}` must be HOST:PORT with an IP address, such as `0.0.0.0:8080`; found `{text}`"));
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = self.text(node, what)?;
        match millis_or_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(node.pos, format!("`{what}`: {e}"));
                None
            }
        }
    }

    fn load(&mut self, root: &Node) -> Config {
        let mut config = Config {
            source: self.file.clone(),
            server: ServerSettings {
                listen: DEFAULT_LISTEN.parse().expect("valid default"),
                trusted_proxies: Vec::new(),
                read_timeout: Some(Duration::from_secs(30)),
                write_timeout: None,
                ssl: None,
            },
            admin: AdminSettings {
                listen: DEFAULT_ADMIN_LISTEN.parse().expect("valid default"),
                token: None,
            },
            metrics: MetricsSettings::default(),
            client: ClientSettings {
                connect_timeout: Duration::from_secs(5),
                response_timeout: None,
                pool: PoolLimits::default(),
            },
            reload: ReloadSettings {
                debounce: Duration::from_millis(200),
            },
            services: Vec::new(),
            async_queue: AsyncSettings::default(),
            routes: Vec::new(),
            default_filters: Vec::new(),
            warnings: Vec::new(),
        };
        if matches!(root.value, Value::Scalar(_) | Value::Seq(_)) {
            self.error(root.pos, "the config must be a mapping with a `gateway:` (or SCG `spring.cloud.gateway:`) section");
            return config;
        }
        for (key, value) in self.entries(root, "the config") {
            let k = key.as_str().unwrap_or_default();
            match k {
                "gateway" => self.gateway(value, &mut config, true),
                "spring" => self.spring(value, &mut config),
                "server" => self.server(value, &mut config),
                "admin" => self.admin(value, &mut config),
                "metrics" => self.metrics(value, &mut config),
                "reload" => self.reload(value, &mut config),
                "services" => self.services(value, &mut config),
                "async" => self.async_settings(value, &mut config),
                _ => {
                    let hint = suggestion(
                        k,
                        &[
                            "gateway", "spring", "server", "admin", "reload", "services", "async",
                            "metrics",
                        ],
                    );
                    self.warn(
                        key.pos,
                        format!("top-level key `{k}` is not used by weir and is ignored{hint}"),
                    );
                }
            }
        }
        self.assign_ids(&mut config.routes);
        config
    }

    fn spring(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "spring") {
            if key.as_str() != Some("cloud") {
                continue;
            }
            for (key, value) in self.entries(value, "spring.cloud") {
                if key.as_str() == Some("gateway") {
                    self.gateway(value, config, false);
                }
            }
        }
    }

    /// A section holding `routes:` and `default-filters:`: weir's `gateway:` (strict) or SCG's
    /// `spring.cloud.gateway` and `spring.cloud.gateway.server.webflux` (other SCG settings are
    /// ignored with a warning).
    fn gateway(&mut self, node: &Node, config: &mut Config, strict: bool) {
        const KEYS: &[&str] = &["routes", "default-filters", "httpclient"];
        for (key, value) in self.entries(node, "gateway") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "routes") {
                for item in self.items(value, "routes") {
                    if let Some(route) = self.route(item) {
                        config.routes.push(route);
                    }
                }
            } else if key_is(k, "default-filters") {
                for item in self.items(value, "default-filters") {
                    if let Some(f) = self.factory(item, "filter") {
                        config.default_filters.push(f);
                    }
                }
            } else if key_is(k, "httpclient") {
                self.httpclient(value, config);
            } else if !strict && k == "server" {
                for (key, value) in self.entries(value, "server") {
                    if key.as_str() == Some("webflux") {
                        self.gateway(value, config, false);
                    }
                }
            } else if strict {
                let hint = suggestion(k, KEYS);
                self.error(key.pos, format!("unknown key `{k}` in `gateway`{hint}"));
            } else {
                self.warn(
                    key.pos,
                    format!("SCG setting `{k}` is not supported by weir and is ignored"),
                );
            }
        }
    }

    fn httpclient(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "httpclient") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "connect-timeout") {
                if let Some(d) = self.duration(value, "connect-timeout") {
                    config.client.connect_timeout = d;
                }
            } else if key_is(k, "response-timeout") {
                config.client.response_timeout = self.duration(value, "response-timeout");
            } else if key_is(k, "pool") {
                self.pool(value, &mut config.client.pool);
            } else {
                self.warn(
                    key.pos,
                    format!("httpclient setting `{k}` is not supported by weir and is ignored"),
                );
            }
        }
    }

    fn pool(&mut self, node: &Node, pool: &mut PoolLimits) {
        const KEYS: &[&str] = &["max-idle-time", "max-idle-per-host", "max-idle"];
        for (key, value) in self.entries(node, "httpclient.pool") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "max-idle-time") {
                if let Some(d) = self.duration(value, "httpclient.pool.max-idle-time") {
                    pool.max_idle_time = d;
                }
            } else if key_is(k, "max-idle-per-host") {
                if let Some(n) = self.number(value, "httpclient.pool.max-idle-per-host") {
                    pool.max_idle_per_host = n;
                }
            } else if key_is(k, "max-idle") {
                if let Some(n) = self.number(value, "httpclient.pool.max-idle") {
                    pool.max_idle = n;
                }
            } else {
                let hint = suggestion(k, KEYS);
                self.warn(
                    key.pos,
                    format!("httpclient.pool setting `{k}` is not supported by weir and is ignored{hint}"),
                );
            }
        }
    }

    /// A whole number of type `T`.
    fn number<T: std::str::FromStr>(&mut self, node: &Node, what: &str) -> Option<T> {
        let text = self.text(node, what)?;
        match text.trim().parse() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a whole number, found `{text}`"),
                );
                None
            }
        }
    }

    fn server(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "server") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "listen") {
                if let Some(addr) = self.listen(value, "server.listen") {
                    config.server.listen = addr;
                }
            } else if key_is(k, "port") {
                let text = self.text(value, "server.port");
                match text.as_deref().map(str::trim).map(str::parse::<u16>) {
                    Some(Ok(port)) => config.server.listen = SocketAddr::from(([0, 0, 0, 0], port)),
                    Some(Err(_)) => self.error(
                        value.pos,
                        "`server.port` must be a port number such as 8080",
                    ),
                    None => {}
                }
            } else if key_is(k, "read-timeout") {
                config.server.read_timeout = self.duration(value, "server.read-timeout");
            } else if key_is(k, "write-timeout") {
                config.server.write_timeout = self.duration(value, "server.write-timeout");
            } else if key_is(k, "trusted-proxies") {
                let values: Vec<String> = match &value.value {
                    Value::Seq(items) => items
                        .iter()
                        .filter_map(|i| self.text(i, "trusted-proxies"))
                        .collect(),
                    _ => self
                        .text(value, "trusted-proxies")
                        .map(|t| t.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                };
                for v in values.iter().filter(|v| !v.trim().is_empty()) {
                    match weir_predicates::remote_addr::parse_net(v) {
                        Ok(net) => config.server.trusted_proxies.push(net),
                        Err(e) => self.error(value.pos, format!("`server.trusted-proxies`: {e}")),
                    }
                }
            } else if key_is(k, "ssl") {
                config.server.ssl = self.ssl(value);
            } else {
                self.warn(key.pos, format!("server setting `{k}` is not supported by weir and is ignored; weir reads `listen`, `port`, `read-timeout`, `write-timeout`, `trusted-proxies` and `ssl`"));
            }
        }
    }

    /// `server.ssl`: Spring Boot's PEM settings. Keystores and client certificates are refused
    /// rather than ignored: a listener that silently skipped them would not be what was asked.
    fn ssl(&mut self, node: &Node) -> Option<SslSettings> {
        let mut enabled = true;
        let mut certificate = None;
        let mut key = None;
        for (k, value) in self.entries(node, "server.ssl") {
            let name = k.as_str().unwrap_or_default();
            if key_is(name, "enabled") {
                enabled = self.boolean(value, "server.ssl.enabled").unwrap_or(enabled);
            } else if key_is(name, "certificate") {
                certificate = self
                    .text(value, "server.ssl.certificate")
                    .map(|p| (p, value.pos));
            } else if key_is(name, "certificate-private-key") {
                key = self
                    .text(value, "server.ssl.certificate-private-key")
                    .map(|p| (p, value.pos));
            } else if [
                "key-store",
                "key-store-type",
                "key-store-password",
                "key-alias",
                "key-password",
                "bundle",
                "trust-store",
            ]
            .iter()
            .any(|known| key_is(name, known))
            {
                self.error(k.pos, format!("`server.ssl.{name}`: weir reads PEM files, not keystores; convert one with `openssl pkcs12 -in keystore.p12 -nodes -out tls.pem` and write `certificate:` (the certificate chain) and `certificate-private-key:` (the key)"));
            } else if key_is(name, "certificate-private-key-password") {
                self.error(k.pos, "`server.ssl.certificate-private-key-password`: weir reads unencrypted keys; decrypt it once (`openssl pkey -in tls.key -out tls-plain.key`), keep the file readable only by weir, and name that file in `certificate-private-key:`");
            } else if key_is(name, "client-auth") {
                let mode = self
                    .text(value, "server.ssl.client-auth")
                    .unwrap_or_default();
                if !mode.trim().eq_ignore_ascii_case("none") {
                    self.error(value.pos, "`server.ssl.client-auth`: weir does not verify client certificates; remove the setting (or write `none`) and authenticate clients with a filter such as BasicAuth");
                }
            } else {
                self.warn(k.pos, format!("`server.ssl.{name}` is not supported by weir and is ignored; weir reads `enabled`, `certificate` and `certificate-private-key` (TLS 1.2 and 1.3 with rustls' default ciphers)"));
            }
        }
        if !enabled {
            return None;
        }
        let (Some((certificate, cert_pos)), Some((key, key_pos))) = (certificate, key) else {
            self.error(node.pos, "`server.ssl` needs both `certificate:` (a PEM file of the certificate chain) and `certificate-private-key:` (a PEM file of its key)");
            return None;
        };
        // Spring's `file:` prefix names a plain path; `classpath:` has no meaning outside a jar.
        let strip = |loader: &mut Self, path: String, pos: Pos, what: &str| {
            if path.starts_with("classpath:") {
                loader.error(pos, format!("`server.ssl.{what}`: `classpath:` resources do not exist outside a Java application; write the file's path"));
                return None;
            }
            Some(
                path.strip_prefix("file:")
                    .map_or(path.clone(), str::to_string),
            )
        };
        let certificate = strip(self, certificate, cert_pos, "certificate");
        let key = strip(self, key, key_pos, "certificate-private-key");
        let (certificate, key) = (certificate?, key?);
        let read = |loader: &mut Self, path: &str, pos: Pos, what: &str| match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                loader.error(pos, format!("`server.ssl.{what}`: cannot read {path}: {e}"));
                None
            }
        };
        let cert_pem = read(self, &certificate, cert_pos, "certificate");
        let key_pem = read(self, &key, key_pos, "certificate-private-key");
        let (cert_pem, key_pem) = (cert_pem?, key_pem?);
        match crate::server::tls::server_config(&cert_pem, &key_pem) {
            Ok(server_config) => {
                let mut hasher = Sha256::new();
                hasher.update(&cert_pem);
                hasher.update(&key_pem);
                Some(SslSettings {
                    certificate: certificate.into(),
                    private_key: key.into(),
                    digest: hasher.finalize().into(),
                    server_config,
                })
            }
            Err(e) => {
                let (pos, what, path) = match e {
                    TlsError::Certificate(_) => (cert_pos, "certificate", &certificate),
                    TlsError::Key(_) => (key_pos, "certificate-private-key", &key),
                    TlsError::Pair(_) => (key_pos, "certificate-private-key", &key),
                };
                self.error(pos, format!("`server.ssl.{what}` ({path}): {e}"));
                None
            }
        }
    }

    fn reload(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "reload") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "debounce") {
                if let Some(d) = self.duration(value, "reload.debounce") {
                    config.reload.debounce = d;
                }
            } else {
                let hint = suggestion(k, &["debounce"]);
                self.error(key.pos, format!("unknown key `{k}` in `reload`{hint}"));
            }
        }
    }

    fn admin(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "admin") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "listen") {
                if let Some(addr) = self.listen(value, "admin.listen") {
                    config.admin.listen = addr;
                }
            } else if key_is(k, "token") {
                // Never quoted in a message: it is a credential.
                if let Some(token) = self.text(value, "admin.token") {
                    if token.trim().is_empty() {
                        self.error(value.pos, "`admin.token` is empty; leave it out to run the admin API without a token, or set it, usually as `${ADMIN_TOKEN}`");
                    } else if invalid_token(token.trim()) {
                        self.error(value.pos, "`admin.token` must be printable ASCII without spaces, to be sent as `Authorization: Bearer <token>`");
                    } else {
                        config.admin.token = Some(Secret::new(token.trim()));
                    }
                }
            } else {
                let hint = suggestion(k, &["listen", "token"]);
                self.error(key.pos, format!("unknown key `{k}` in `admin`{hint}"));
            }
        }
        if config.admin.token.is_none() && !config.admin.listen.ip().is_loopback() {
            self.warn(
                node.pos,
                format!(
                    "the admin API listens on {}, beyond this machine, without `admin.token`: anyone who can reach it can read the config and reload it",
                    config.admin.listen
                ),
            );
        }
    }

    fn metrics(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "metrics") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "listen") {
                config.metrics.listen = self.listen(value, "metrics.listen");
            } else {
                let hint = suggestion(k, &["listen"]);
                self.error(key.pos, format!("unknown key `{k}` in `metrics`{hint}"));
            }
        }
    }

    fn route(&mut self, node: &Node) -> Option<RouteDef> {
        const KEYS: &[&str] = &[
            "id",
            "uri",
            "order",
            "predicates",
            "filters",
            "metadata",
            "enabled",
        ];
        self.route = None;
        let entries = match &node.value {
            Value::Map(entries) => entries,
            _ => {
                self.error(node.pos, format!("a route must be a mapping with `id`, `uri`, `predicates` and `filters`, found {}", node.kind()));
                return None;
            }
        };
        // Find the id first so every later error names the route.
        if let Some((_, id_node)) = entries.iter().find(|(k, _)| k.as_str() == Some("id")) {
            self.route = self.text(id_node, "id");
            if let Some(id) = self.route.clone() {
                if self.ids.contains(&id) {
                    self.error(
                        id_node.pos,
                        format!("route id `{id}` is used by an earlier route; ids must be unique"),
                    );
                }
                self.ids.insert(id);
            }
        }
        let mut route = RouteDef {
            id: self.route.clone().unwrap_or_default(),
            uri: RouteUri::NoOp,
            order: 0,
            predicates: Vec::new(),
            filters: Vec::new(),
            metadata: Metadata::default(),
            enabled: true,
            pos: node.pos,
        };
        let mut uri_seen = false;
        let errors_before = self.errors.len();
        for (key, value) in entries {
            let k = key.as_str().unwrap_or_default();
            match k {
                "id" => {}
                "uri" => {
                    uri_seen = true;
                    if let Some(text) = self.text(value, "uri") {
                        match parse_uri(&text) {
                            Ok((uri, ignored_path)) => {
                                route.uri = uri;
                                if let Some(path) = ignored_path {
                                    self.warn(value.pos, format!("the path `{path}` of the uri is ignored, as in SCG; to send requests to it, add the filter `PrefixPath={path}`"));
                                }
                            }
                            Err(e) => self.error(value.pos, e),
                        }
                    }
                }
                "order" => {
                    if let Some(text) = self.text(value, "order") {
                        match text.trim().parse() {
                            Ok(order) => route.order = order,
                            Err(_) => self.error(value.pos, format!("`order` must be a whole number such as -1 or 10, found `{text}`")),
                        }
                    }
                }
                "predicates" => {
                    for item in self.items(value, "predicates") {
                        if let Some(p) = self.factory(item, "predicate") {
                            route.predicates.push(p);
                        }
                    }
                }
                "filters" => {
                    for item in self.items(value, "filters") {
                        if let Some(f) = self.factory(item, "filter") {
                            route.filters.push(f);
                        }
                    }
                }
                "metadata" => route.metadata = self.metadata(value),
                "enabled" => {
                    route.enabled = self.boolean(value, "enabled").unwrap_or(route.enabled)
                }
                _ => {
                    let hint = suggestion(k, KEYS);
                    self.error(key.pos, format!("unknown route key `{k}`{hint}"));
                }
            }
        }
        if !uri_seen {
            self.error(node.pos, "the route has no `uri`; add one such as `uri: http://127.0.0.1:8081`, `lb://service` or `forward:/path`");
        }
        self.route = None;
        (self.errors.len() == errors_before).then_some(route)
    }

    fn metadata(&mut self, node: &Node) -> Metadata {
        let mut metadata = Metadata::default();
        for (key, value) in self.entries(node, "metadata") {
            let k = key.as_str().unwrap_or_default().to_string();
            if key_is(&k, "response-timeout") {
                if let Some(text) = self.text(value, "response-timeout") {
                    if text.trim().starts_with('-') {
                        metadata.response_timeout = Some(None);
                    } else if let Some(d) = self.duration(value, "response-timeout") {
                        metadata.response_timeout = Some(Some(d));
                    }
                }
            } else if key_is(&k, "connect-timeout") {
                metadata.connect_timeout = self.duration(value, "connect-timeout");
            }
            metadata.all.insert(k, self.json(value));
        }
        metadata
    }

    fn json(&mut self, node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Scalar(_) => self
                .text(node, "metadata")
                .map(serde_json::Value::from)
                .unwrap_or_default(),
            Value::Seq(items) => items.iter().map(|i| self.json(i)).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), self.json(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// One predicate or filter: `Name=a,b` or `{name: Name, args: {...}}`.
    fn factory(&mut self, node: &Node, kind: &str) -> Option<FactoryDef> {
        match &node.value {
            Value::Scalar(_) => {
                let text = self.text(node, kind)?;
                let (name, values) = match text.split_once('=') {
                    Some((name, values)) => (name.trim(), values),
                    None if kind == "filter" => (text.trim(), ""),
                    None => {
                        self.error(
                            node.pos,
                            format!(
                                "`{text}` must be of the form `Name=value`, as in `Path=/api/**`"
                            ),
                        );
                        return None;
                    }
                };
                if name.is_empty() {
                    self.error(
                        node.pos,
                        format!("the {kind} `{text}` has no name before `=`"),
                    );
                    return None;
                }
                let values = values
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect();
                Some(FactoryDef {
                    name: name.to_string(),
                    args: RawArgs::Shortcut(values),
                    pos: node.pos,
                })
            }
            Value::Map(entries) => {
                let mut name = None;
                let mut args = Vec::new();
                let mut enabled = true;
                for (key, value) in entries {
                    match key.as_str().unwrap_or_default() {
                        "name" => name = self.text(value, "name"),
                        // `enabled: ${basic_auth:false}` turns an entry on or off from the
                        // environment; a disabled entry is left out, as if not written.
                        "enabled" => match self
                            .text(value, "enabled")
                            .map(|t| t.trim().to_ascii_lowercase())
                        {
                            Some(t) if t == "true" => enabled = true,
                            Some(t) if t == "false" || t.is_empty() => enabled = false,
                            Some(other) => self.error(
                                value.pos,
                                format!("`enabled` must be `true` or `false`, found `{other}`"),
                            ),
                            None => {}
                        },
                        "args" => {
                            for (k, v) in self.entries(value, "args") {
                                self.flatten_arg(k.as_str().unwrap_or_default(), v, &mut args);
                            }
                        }
                        other => {
                            let hint = suggestion(other, &["name", "args", "enabled"]);
                            self.error(key.pos, format!("unknown key `{other}` in a {kind}{hint}"));
                        }
                    }
                }
                match name {
                    Some(_) if !enabled => None,
                    Some(name) if !name.trim().is_empty() => Some(FactoryDef {
                        name: name.trim().to_string(),
                        args: RawArgs::Expanded(args),
                        pos: node.pos,
                    }),
                    _ => {
                        self.error(
                            node.pos,
                            format!(
                                "a {kind} written as a mapping needs `name:` (and usually `args:`)"
                            ),
                        );
                        None
                    }
                }
            }
            _ => {
                self.error(node.pos, format!("a {kind} must be `Name=value` or a mapping with `name:` and `args:`, found {}", node.kind()));
                None
            }
        }
    }

    fn flatten_arg(&mut self, key: &str, value: &Node, out: &mut Vec<(String, String)>) {
        match &value.value {
            Value::Null => out.push((key.to_string(), String::new())),
            Value::Scalar(_) => {
                if let Some(text) = self.text(value, key) {
                    out.push((key.to_string(), text));
                }
            }
            Value::Seq(items) => {
                for item in items {
                    self.flatten_arg(key, item, out);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    self.flatten_arg(&format!("{key}.{}", k.as_str().unwrap_or_default()), v, out);
                }
            }
        }
    }

    /// Gives every route without an id one (`route-N`, N its position).
    fn assign_ids(&mut self, routes: &mut [RouteDef]) {
        for (i, route) in routes.iter_mut().enumerate() {
            if route.id.is_empty() {
                let mut id = format!("route-{}", i + 1);
                while self.ids.contains(&id) {
                    id.push('_');
                }
                self.ids.insert(id.clone());
                self.route = Some(id.clone());
                self.warn(route.pos, format!("the route has no `id`; it is called `{id}`. Give it an id so that metrics, logs and state stay attached to it"));
                route.id = id;
            }
        }
        self.route = None;
    }
}

/// Parses a route uri; returns it and, for http(s), a non-trivial path that SCG ignores.
fn parse_uri(text: &str) -> Result<(RouteUri, Option<String>), String> {
    let text = text.trim();
    // SCG writes a balanced WebSocket route `lb:ws://NAME`: the same as `lb://NAME` here.
    if let Some(name) = text
        .strip_prefix("lb://")
        .or_else(|| text.strip_prefix("lb:ws://"))
    {
        let name = name.trim_end_matches('/');
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!(
                "`{text}`: the service name after `lb://` may hold letters, digits, `-` and `.`"
            ));
        }
        return Ok((RouteUri::Lb(name.to_string()), None));
    }
    if let Some(path) = text.strip_prefix("forward:") {
        let path = path.trim_start_matches("//");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        return Ok((RouteUri::Forward(path), None));
    }
    if text == "queue:" || text == "queue://" {
        return Ok((RouteUri::Queue, None));
    }
    if text == "no://op" {
        return Ok((RouteUri::NoOp, None));
    }
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("`{text}` is not a valid uri; write e.g. `http://127.0.0.1:8081`"))?;
    // SCG's `ws://` and `wss://` are `http://` and `https://`: a route forwards WebSocket
    // and plain requests alike.
    let tls = match uri.scheme_str() {
        Some("http" | "ws") => false,
        Some("https" | "wss") => true,
        Some(other) => {
            return Err(format!(
                "unsupported uri scheme `{other}` in `{text}`; weir forwards to `http://`, `https://` (or `ws://`, `wss://`), `lb://NAME`, `forward:/path` or `no://op`"
            ))
        }
        None => return Err(format!("`{text}` has no scheme; write `http://{text}`")),
    };
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| format!("`{text}` has no host"))?;
    let authority = match authority.port() {
        Some(_) => authority,
        None => format!("{authority}:{}", if tls { 443 } else { 80 })
            .parse()
            .map_err(|_| format!("`{text}` has an invalid host"))?,
    };
    let path = uri.path();
    let ignored = (path != "/" && !path.is_empty()).then(|| path.to_string());
    Ok((RouteUri::Http { tls, authority }, ignored))
}

/// Loads a config. `env` looks up placeholders (`std::env::var` in the binary; a map in
/// tests). Returns every error found, not just the first.
pub fn load(source: &Source, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let (config, errors) = load_partial(source, env);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Loads as much of a config as is valid, and every error: the routes that loaded can still
/// be compiled, so that one run reports the errors of every route.
pub fn load_partial(
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Config, Vec<ConfigError>) {
    let mut loader = Loader {
        file: source.name.clone(),
        env,
        route: None,
        ids: HashSet::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let root = yaml::parse(&source.text).unwrap_or_else(|e| {
        loader.error(e.pos, format!("invalid YAML: {}", e.message));
        Node {
            value: Value::Null,
            pos: e.pos,
        }
    });
    let mut config = loader.load(&root);
    config.warnings = loader.warnings;
    (config, loader.errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str) -> Result<Config, ConfigErrors> {
        load(
            &Source {
                name: Arc::from("routes.yaml"),
                text: text.to_string(),
            },
            &|n| (n == "UP").then(|| "127.0.0.1:9000".to_string()),
        )
    }

    #[test]
    fn scg_and_weir_roots() {
        let c = load_str(
            "spring:\n  cloud:\n    gateway:\n      routes:\n      - id: a\n        uri: http://${UP}\n        predicates:\n        - Path=/a/**\n\
             gateway:\n  routes:\n  - id: b\n    uri: forward:/x\n",
        )
        .unwrap();
        assert_eq!(c.routes.len(), 2);
        assert_eq!(c.routes[0].uri.to_string(), "http://127.0.0.1:9000");
        assert_eq!(
            c.routes[0].predicates[0].args,
            RawArgs::Shortcut(vec!["/a/**".into()])
        );
        assert_eq!(c.routes[1].uri, RouteUri::Forward("/x".into()));
    }

    #[test]
    fn misspelled_route_key_is_an_error_with_a_suggestion() {
        let e = load_str(
            "gateway:\n  routes:\n  - id: r1\n    uri: http://a:1\n    predicate:\n    - Path=/\n",
        )
        .unwrap_err();
        let e = e.first().unwrap();
        assert_eq!((e.pos.line, e.pos.col), (5, 5));
        assert_eq!(e.route.as_deref(), Some("r1"));
        assert!(
            e.message.contains("did you mean `predicates`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn every_error_is_reported() {
        let e = load_str("gateway:\n  routes:\n  - id: a\n  - id: b\n    uri: ftp://x\n  - id: a\n    uri: http://x\n").unwrap_err();
        assert_eq!(e.0.len(), 3, "{e}");
    }

    #[test]
    fn ids_are_generated_and_paths_warned() {
        let c = load_str("gateway:\n  routes:\n  - uri: http://x/api\n").unwrap();
        assert_eq!(c.routes[0].id, "route-1");
        assert_eq!(c.warnings.len(), 2);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.message.contains("PrefixPath=/api")));
    }

    #[test]
    fn expanded_args_flatten_lists_and_nested_keys() {
        let c = load_str(
            "gateway:\n  routes:\n  - id: r\n    uri: no://op\n    filters:\n    - name: Retry\n      args:\n        statuses: [500, 502]\n        backoff:\n          firstBackoff: 10ms\n",
        )
        .unwrap();
        assert_eq!(
            c.routes[0].filters[0].args,
            RawArgs::Expanded(vec![
                ("statuses".into(), "500".into()),
                ("statuses".into(), "502".into()),
                ("backoff.firstBackoff".into(), "10ms".into())
            ])
        );
    }

    #[test]
    fn scg_websocket_uris_are_http_ones() {
        let http = |text| match parse_uri(text) {
            Ok((RouteUri::Http { tls, authority }, _)) => (tls, authority.to_string()),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(http("ws://echo:3001"), (false, "echo:3001".into()));
        assert_eq!(http("wss://echo"), (true, "echo:443".into()));
        assert_eq!(
            parse_uri("lb:ws://chat").unwrap().0,
            RouteUri::Lb("chat".into())
        );
        assert!(parse_uri("gopher://x").unwrap_err().contains("ws://"));
    }

    #[test]
    fn server_ssl_reads_spring_boot_pem_settings() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/certs");
        let pair = format!(
            "server:\n  ssl:\n    certificate: {dir}/localhost-1.crt\n    certificate-private-key: {dir}/localhost-1.key\n"
        );
        let c = load_str(&pair).unwrap();
        let ssl = c.server.ssl.expect("TLS settings");
        assert!(ssl.certificate.ends_with("localhost-1.crt"));
        // The same files read twice are the same settings: a reload is not a renewal.
        assert_eq!(Some(ssl), load_str(&pair).unwrap().server.ssl);
        let off = format!("{pair}    enabled: false\n");
        assert_eq!(load_str(&off).unwrap().server.ssl, None);
        let e = load_str(&format!("{pair}    client-auth: need\n")).unwrap_err();
        assert!(
            e.to_string()
                .contains("does not verify client certificates"),
            "{e}"
        );
        let spring = pair
            .replace("certificate: ", "certificate: file:")
            .replace("private-key: ", "private-key: file:");
        assert!(load_str(&spring).unwrap().server.ssl.is_some());
        let e = load_str(&pair.replace("certificate: ", "certificate: classpath:")).unwrap_err();
        assert!(e.to_string().contains("write the file's path"), "{e}");
        let e = load_str(&format!(
            "{pair}    certificate-private-key-password: secret\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("openssl pkey"), "{e}");
        let e = load_str("server:\n  ssl:\n    enabled: yes\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("must be `true` or `false`, found `yes`"),
            "{e}"
        );
    }

    #[test]
    fn server_timeouts_and_pool_limits() {
        let c = load_str("gateway:\n  routes: []\n").unwrap();
        assert_eq!(c.server.read_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.server.write_timeout, None);
        assert_eq!(c.client.pool, PoolLimits::default());
        let c = load_str("server:\n  read-timeout: 5s\n  write-timeout: 1m\ngateway:\n  httpclient:\n    pool:\n      max-idle-time: 10s\n      max-idle-per-host: 0\n      max-idle: 8\n").unwrap();
        assert_eq!(c.server.read_timeout, Some(Duration::from_secs(5)));
        assert_eq!(c.server.write_timeout, Some(Duration::from_secs(60)));
        assert_eq!(
            c.client.pool,
            PoolLimits {
                max_idle_time: Duration::from_secs(10),
                max_idle_per_host: 0,
                max_idle: 8,
            }
        );
        let e = load_str("gateway:\n  httpclient:\n    pool:\n      max-idle: lots\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("routes.yaml:4:17: `httpclient.pool.max-idle` must be a whole number"),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_default_reads_openfaas_timeouts_and_pool_sizes() {
        let env = |name: &str| match name {
            "write_timeout" => Some("7".to_string()),
            "max_idle_conns" => Some("300".to_string()),
            "max_idle_conns_per_host" => Some("20".to_string()),
            _ => None,
        };
        let c = load(&Source::embedded(), &env).unwrap();
        assert_eq!(c.server.write_timeout, Some(Duration::from_secs(7)));
        assert_eq!(c.client.pool.max_idle, 300);
        assert_eq!(c.client.pool.max_idle_per_host, 20);
        let c = load(&Source::embedded(), &|_| None).unwrap();
        assert_eq!(c.server.write_timeout, Some(Duration::from_secs(60)));
        assert_eq!(c.client.pool.max_idle, 1024);
        let e = load(&Source::embedded(), &|n| {
            (n == "max_idle_conns").then(|| "many".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`httpclient.pool.max-idle` must be a whole number, found `many`"),
            "{e}"
        );
    }

    #[test]
    fn settings() {
        let c = load_str("server:\n  port: 9090\n  trusted-proxies: [10.0.0.0/8, 127.0.0.1]\nadmin:\n  listen: 127.0.0.1:0\ngateway:\n  httpclient:\n    connect-timeout: 250\n    response-timeout: 2s\n").unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(c.server.trusted_proxies.len(), 2);
        assert_eq!(c.client.connect_timeout, Duration::from_millis(250));
        assert_eq!(c.client.response_timeout, Some(Duration::from_secs(2)));
        assert!(load_str("admin:\n  lisen: x\n")
            .unwrap_err()
            .to_string()
            .contains("did you mean `listen`"));
    }

    #[test]
    fn missing_placeholder_names_the_variable_and_position() {
        let e = load_str("gateway:\n  routes:\n  - id: r\n    uri: http://${NOPE}\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("routes.yaml:4:10: route `r`: environment variable `NOPE` is not set"),
            "{s}"
        );
    }
}
