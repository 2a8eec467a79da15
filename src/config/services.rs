//! `services:`: the instances behind `lb://NAME` routes.
//!
//! ```yaml
//! services:
//!   backend:                          # lb://backend
//!     instances:
//!       - http://127.0.0.1:9001
//!       - uri: http://127.0.0.1:9002
//!         weight: 3
//!     health:
//!       passive: { consecutive-failures: 5, base-ejection: 10s, max-ejection: 5m }
//!       active: { path: /healthz, interval: 5s, healthy-threshold: 2, unhealthy-threshold: 3, timeout: 2s }
//!   cluster:
//!     dns: backend.default.svc.cluster.local:8080   # every A/AAAA record is an instance
//!     resolve-interval: 5s
//!     scheme: http
//! ```

use std::hash::{Hash, Hasher};
use std::time::Duration;

use http::uri::Authority;

use super::yaml::{Node, Value};
use super::{key_is, suggestion, Config, Loader, Pos};

/// One service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDef {
    /// The name `lb://NAME` refers to.
    pub name: String,
    /// Static instances.
    pub instances: Vec<InstanceDef>,
    /// A DNS name whose every address is an instance.
    pub dns: Option<DnsDef>,
    /// Ejection of instances that keep failing.
    pub passive: PassiveHealth,
    /// Periodic health checks, when configured.
    pub active: Option<ActiveHealth>,
    /// Where the service is defined.
    pub pos: Pos,
}

impl ServiceDef {
    /// A hash of everything but the position, so that a service keeps its state (positions,
    /// ejections) across a reload that does not change it.
    pub fn fingerprint(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.name.hash(&mut hasher);
        self.instances.hash(&mut hasher);
        self.dns.hash(&mut hasher);
        self.passive.hash(&mut hasher);
        self.active.hash(&mut hasher);
        hasher.finish()
    }
}

/// One static instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceDef {
    /// `https` rather than `http`.
    pub tls: bool,
    /// Host and port.
    pub authority: Authority,
    /// Its share for the `weighted` strategy (default 1).
    pub weight: u32,
}

/// A DNS-resolved service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DnsDef {
    /// The name to resolve.
    pub host: String,
    /// The port of every instance.
    pub port: u16,
    /// `https` rather than `http`.
    pub tls: bool,
    /// How often the name is resolved again (default 5 s).
    pub interval: Duration,
}

/// Passive health: an instance that fails this many times in a row (no connection, or a 5xx)
/// is ejected for `base_ejection`, doubling each time it fails again after coming back, up to
/// `max_ejection`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PassiveHealth {
    /// Failures in a row that eject (default 5).
    pub consecutive_failures: u32,
    /// The first ejection's length (default 10 s).
    pub base_ejection: Duration,
    /// The longest ejection (default 5 min).
    pub max_ejection: Duration,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(300),
        }
    }
}

/// Active health: every `interval`, `GET path` on each instance; a 2xx within `timeout` is a
/// pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActiveHealth {
    /// The path to request.
    pub path: String,
    /// How often (default 5 s).
    pub interval: Duration,
    /// Passes in a row that make an unhealthy instance healthy (default 2).
    pub healthy_threshold: u32,
    /// Failures in a row that make a healthy instance unhealthy (default 3).
    pub unhealthy_threshold: u32,
    /// How long one check may take (default 2 s).
    pub timeout: Duration,
}

/// Parses `http://host:port` or `https://host:port` (a missing port is 80 or 443).
pub fn parse_instance_uri(text: &str) -> Result<(bool, Authority), String> {
    let uri: http::Uri = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a valid uri; write e.g. `http://127.0.0.1:9001`"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "`{text}`: an instance uri starts with `http://` or `https://`"
            ))
        }
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
    Ok((tls, authority))
}

impl Loader<'_> {
    pub(super) fn services(&mut self, node: &Node, config: &mut Config) {
        for (key, value) in self.entries(node, "services") {
            let Some(name) = key.as_str().map(str::to_string) else {
                self.error(key.pos, "a service name must be text");
                continue;
            };
            if config.services.iter().any(|s| s.name == name) {
                self.error(key.pos, format!("service `{name}` is defined twice"));
                continue;
            }
            if let Some(service) = self.service(&name, value, key.pos) {
                config.services.push(service);
            }
        }
    }

    fn count(&mut self, node: &Node, what: &str) -> Option<u32> {
        let text = self.text(node, what)?;
        match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.error(
                    node.pos,
                    format!("`{what}` must be a whole number of 1 or more, found `{text}`"),
                );
                None
            }
        }
    }

    fn service(&mut self, name: &str, node: &Node, pos: Pos) -> Option<ServiceDef> {
        const KEYS: &[&str] = &["instances", "dns", "resolve-interval", "scheme", "health"];
        let errors_before = self.errors.len();
        let mut service = ServiceDef {
            name: name.to_string(),
            instances: Vec::new(),
            dns: None,
            passive: PassiveHealth::default(),
            active: None,
            pos,
        };
        let mut dns: Option<(String, u16, Pos)> = None;
        let mut interval = Duration::from_secs(5);
        let mut tls = false;
        for (key, value) in self.entries(node, "service") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "instances") {
                for item in self.items(value, "instances") {
                    if let Some(instance) = self.instance(item) {
                        service.instances.push(instance);
                    }
                }
            } else if key_is(k, "dns") {
                if let Some(text) = self.text(value, "dns") {
                    match text.trim().rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                        Some((host, Ok(port))) if !host.is_empty() => dns = Some((host.to_string(), port, value.pos)),
                        _ => self.error(value.pos, format!("`dns` must be HOST:PORT, such as `backend.default.svc.cluster.local:8080`; found `{text}`")),
                    }
                }
            } else if key_is(k, "resolve-interval") {
                if let Some(d) = self.duration(value, "resolve-interval") {
                    interval = d.max(Duration::from_millis(10));
                }
            } else if key_is(k, "scheme") {
                match self.text(value, "scheme").as_deref().map(str::trim) {
                    Some("http") => tls = false,
                    Some("https") => tls = true,
                    Some(other) => self.error(
                        value.pos,
                        format!("`scheme` must be `http` or `https`, found `{other}`"),
                    ),
                    None => {}
                }
            } else if key_is(k, "health") {
                self.health(value, &mut service);
            } else {
                let hint = suggestion(k, KEYS);
                self.error(
                    key.pos,
                    format!("unknown key `{k}` in service `{name}`{hint}"),
                );
            }
        }
        if let Some((host, port, _)) = dns {
            service.dns = Some(DnsDef {
                host,
                port,
                tls,
                interval,
            });
        }
        if service.instances.is_empty() && service.dns.is_none() {
            self.error(
                pos,
                format!("service `{name}` has no `instances` and no `dns`; give it one of them"),
            );
        }
        (self.errors.len() == errors_before).then_some(service)
    }

    fn instance(&mut self, node: &Node) -> Option<InstanceDef> {
        let (uri_node, weight) = match &node.value {
            Value::Scalar(_) => (node, 1),
            Value::Map(entries) => {
                let mut uri = None;
                let mut weight = 1;
                for (key, value) in entries {
                    let k = key.as_str().unwrap_or_default();
                    if k == "uri" {
                        uri = Some(value);
                    } else if k == "weight" {
                        weight = self.count(value, "weight")?;
                    } else {
                        let hint = suggestion(k, &["uri", "weight"]);
                        self.error(key.pos, format!("unknown key `{k}` in an instance{hint}"));
                    }
                }
                match uri {
                    Some(uri) => (uri, weight),
                    None => {
                        self.error(node.pos, "an instance needs `uri:`");
                        return None;
                    }
                }
            }
            _ => {
                self.error(
                    node.pos,
                    "an instance is a uri, or a mapping with `uri:` and `weight:`",
                );
                return None;
            }
        };
        let text = self.text(uri_node, "uri")?;
        match parse_instance_uri(&text) {
            Ok((tls, authority)) => Some(InstanceDef {
                tls,
                authority,
                weight,
            }),
            Err(e) => {
                self.error(uri_node.pos, e);
                None
            }
        }
    }

    fn health(&mut self, node: &Node, service: &mut ServiceDef) {
        for (key, value) in self.entries(node, "health") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "passive") {
                for (key, value) in self.entries(value, "passive") {
                    let k = key.as_str().unwrap_or_default();
                    if key_is(k, "consecutive-failures") {
                        if let Some(n) = self.count(value, "consecutive-failures") {
                            service.passive.consecutive_failures = n;
                        }
                    } else if key_is(k, "base-ejection") {
                        if let Some(d) = self.duration(value, "base-ejection") {
                            service.passive.base_ejection = d;
                        }
                    } else if key_is(k, "max-ejection") {
                        if let Some(d) = self.duration(value, "max-ejection") {
                            service.passive.max_ejection = d;
                        }
                    } else {
                        let hint = suggestion(
                            k,
                            &["consecutive-failures", "base-ejection", "max-ejection"],
                        );
                        self.error(key.pos, format!("unknown key `{k}` in `passive`{hint}"));
                    }
                }
            } else if key_is(k, "active") {
                let mut active = ActiveHealth {
                    path: String::new(),
                    interval: Duration::from_secs(5),
                    healthy_threshold: 2,
                    unhealthy_threshold: 3,
                    timeout: Duration::from_secs(2),
                };
                for (key, value) in self.entries(value, "active") {
                    let k = key.as_str().unwrap_or_default();
                    if key_is(k, "path") {
                        active.path = self.text(value, "path").unwrap_or_default();
                    } else if key_is(k, "interval") {
                        if let Some(d) = self.duration(value, "interval") {
                            active.interval = d.max(Duration::from_millis(10));
                        }
                    } else if key_is(k, "healthy-threshold") {
                        if let Some(n) = self.count(value, "healthy-threshold") {
                            active.healthy_threshold = n;
                        }
                    } else if key_is(k, "unhealthy-threshold") {
                        if let Some(n) = self.count(value, "unhealthy-threshold") {
                            active.unhealthy_threshold = n;
                        }
                    } else if key_is(k, "timeout") {
                        if let Some(d) = self.duration(value, "timeout") {
                            active.timeout = d;
                        }
                    } else {
                        let hint = suggestion(
                            k,
                            &[
                                "path",
                                "interval",
                                "healthy-threshold",
                                "unhealthy-threshold",
                                "timeout",
                            ],
                        );
                        self.error(key.pos, format!("unknown key `{k}` in `active`{hint}"));
                    }
                }
                if !active.path.starts_with('/') {
                    self.error(
                        value.pos,
                        "active health checks need a `path` starting with `/`, such as `/healthz`",
                    );
                } else {
                    service.active = Some(active);
                }
            } else {
                let hint = suggestion(k, &["passive", "active"]);
                self.error(key.pos, format!("unknown key `{k}` in `health`{hint}"));
            }
        }
    }
}
