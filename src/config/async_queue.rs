//! `async:`: the queue behind `uri: queue:` routes (`/async-function/{name}`) and its worker.
//!
//! ```yaml
//! async:
//!   queue: embedded            # or nats; or openfaas: nats when faas_nats_address and
//!                              # faas_nats_port are both set, embedded otherwise
//!   capacity: 10000            # embedded queue bound
//!   max-body: 1MiB
//!   provider: http://127.0.0.1:8081/   # where the worker invokes functions
//!   nats: { url: "nats://127.0.0.1:4222", subject: faas-request, stream: faas-request, ack-wait: 30s, max-deliver: 10 }
//!   worker: { enabled: true, max-inflight: 8, max-retry-attempts: 5, retry-http-codes: [429, 502, 503, 504],
//!             initial-backoff: 1s, max-backoff: 30s, callback-retries: 3 }
//! ```

use std::time::Duration;

use super::yaml::{Node, Value};
use super::{key_is, suggestion, Config, Loader};

/// Which queue holds accepted work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueKind {
    /// In process and bounded; lost if weir crashes.
    Embedded,
    /// A NATS JetStream stream, shared by every weir that uses it.
    Nats,
}

/// `async.nats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// The server (`nats://host:port`).
    pub url: String,
    /// The subject requests are published on (OpenFaaS: `faas-request`).
    pub subject: String,
    /// The JetStream stream holding them.
    pub stream: String,
    /// The durable consumer the workers share.
    pub consumer: String,
    /// How long a delivered message may go without an ack or a progress heartbeat before it is
    /// delivered again.
    pub ack_wait: Duration,
    /// How many times a message is delivered at most.
    pub max_deliver: i64,
}

/// `async.worker`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Run the worker inside weir.
    pub enabled: bool,
    /// Invocations under way at once.
    pub max_inflight: usize,
    /// Attempts at invoking a function, the first included.
    pub max_retry_attempts: u32,
    /// Function statuses that are retried (connection errors always are).
    pub retry_http_codes: Vec<u16>,
    /// The first retry's delay; doubled each time, with jitter.
    pub initial_backoff: Duration,
    /// The longest delay.
    pub max_backoff: Duration,
    /// Extra attempts at posting a callback.
    pub callback_retries: u32,
}

/// `async:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncSettings {
    /// The backend.
    pub queue: QueueKind,
    /// The embedded queue's bound.
    pub capacity: usize,
    /// The largest request body accepted.
    pub max_body: usize,
    /// Where the worker invokes functions: `{provider}/function/{name}{path}`.
    pub provider: String,
    /// NATS settings (used when `queue: nats`).
    pub nats: NatsSettings,
    /// The worker.
    pub worker: WorkerSettings,
}

impl Default for AsyncSettings {
    fn default() -> Self {
        Self {
            queue: QueueKind::Embedded,
            capacity: 10_000,
            max_body: 1 << 20,
            provider: "http://127.0.0.1:8081/".into(),
            nats: NatsSettings {
                url: "nats://127.0.0.1:4222".into(),
                subject: "faas-request".into(),
                stream: "faas-request".into(),
                consumer: "weir-queue-worker".into(),
                ack_wait: Duration::from_secs(30),
                max_deliver: 10,
            },
            worker: WorkerSettings {
                enabled: true,
                max_inflight: 8,
                max_retry_attempts: 5,
                retry_http_codes: vec![429, 502, 503, 504],
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(30),
                callback_retries: 3,
            },
        }
    }
}

impl Loader<'_> {
    pub(super) fn async_settings(&mut self, node: &Node, config: &mut Config) {
        const KEYS: &[&str] = &[
            "queue", "capacity", "max-body", "provider", "nats", "worker",
        ];
        let settings = &mut config.async_queue;
        for (key, value) in self.entries(node, "async") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "queue") {
                match self.text(value, "queue").as_deref().map(str::trim) {
                    Some("embedded") => settings.queue = QueueKind::Embedded,
                    Some("nats") => settings.queue = QueueKind::Nats,
                    // As the OpenFaaS gateway decides: NATS when both variables are set.
                    Some("openfaas") => {
                        let address = (self.env)("faas_nats_address");
                        let port = (self.env)("faas_nats_port");
                        settings.queue = match (&address, &port) {
                            (Some(a), Some(p)) if !a.is_empty() && !p.is_empty() => {
                                settings.nats.url = format!("nats://{a}:{p}");
                                QueueKind::Nats
                            }
                            _ => QueueKind::Embedded,
                        };
                    }
                    Some(other) => self.error(
                        value.pos,
                        format!("`queue` is `embedded`, `nats` or `openfaas`, found `{other}`"),
                    ),
                    None => {}
                }
            } else if key_is(k, "capacity") {
                if let Some(n) = self.number::<usize>(value, "capacity") {
                    settings.capacity = n.max(1);
                }
            } else if key_is(k, "max-body") {
                if let Some(text) = self.text(value, "max-body") {
                    match weir_predicates::parse_size(&text) {
                        Ok(n) => settings.max_body = n,
                        Err(e) => self.error(value.pos, format!("`max-body`: {e}")),
                    }
                }
            } else if key_is(k, "provider") {
                if let Some(text) = self.text(value, "provider") {
                    settings.provider = text.trim().to_string();
                }
            } else if key_is(k, "nats") {
                self.nats(value, &mut settings.nats);
            } else if key_is(k, "worker") {
                self.worker(value, &mut settings.worker);
            } else {
                let hint = suggestion(k, KEYS);
                self.error(key.pos, format!("unknown key `{k}` in `async`{hint}"));
            }
        }
    }

    fn nats(&mut self, node: &Node, nats: &mut NatsSettings) {
        const KEYS: &[&str] = &[
            "url",
            "subject",
            "stream",
            "consumer",
            "ack-wait",
            "max-deliver",
        ];
        for (key, value) in self.entries(node, "nats") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "url") {
                nats.url = self
                    .text(value, "url")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            } else if key_is(k, "subject") {
                nats.subject = self
                    .text(value, "subject")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            } else if key_is(k, "stream") {
                nats.stream = self
                    .text(value, "stream")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            } else if key_is(k, "consumer") {
                nats.consumer = self
                    .text(value, "consumer")
                    .unwrap_or_default()
                    .trim()
                    .to_string();
            } else if key_is(k, "ack-wait") {
                if let Some(d) = self.duration(value, "ack-wait") {
                    nats.ack_wait = d.max(Duration::from_secs(1));
                }
            } else if key_is(k, "max-deliver") {
                if let Some(n) = self.number::<i64>(value, "max-deliver") {
                    nats.max_deliver = n.max(1);
                }
            } else {
                let hint = suggestion(k, KEYS);
                self.error(key.pos, format!("unknown key `{k}` in `nats`{hint}"));
            }
        }
    }

    fn worker(&mut self, node: &Node, worker: &mut WorkerSettings) {
        const KEYS: &[&str] = &[
            "enabled",
            "max-inflight",
            "max-retry-attempts",
            "retry-http-codes",
            "initial-backoff",
            "max-backoff",
            "callback-retries",
        ];
        for (key, value) in self.entries(node, "worker") {
            let k = key.as_str().unwrap_or_default();
            if key_is(k, "enabled") {
                worker.enabled = self.boolean(value, "enabled").unwrap_or(worker.enabled);
            } else if key_is(k, "max-inflight") {
                if let Some(n) = self.number::<usize>(value, "max-inflight") {
                    worker.max_inflight = n.max(1);
                }
            } else if key_is(k, "max-retry-attempts") {
                if let Some(n) = self.number::<u32>(value, "max-retry-attempts") {
                    worker.max_retry_attempts = n.max(1);
                }
            } else if key_is(k, "retry-http-codes") {
                let items: Vec<Node> = match &value.value {
                    Value::Seq(items) => items.clone(),
                    _ => vec![value.clone()],
                };
                worker.retry_http_codes.clear();
                for item in &items {
                    for part in self
                        .text(item, "retry-http-codes")
                        .unwrap_or_default()
                        .split(',')
                    {
                        match part.trim().parse::<u16>() {
                            Ok(code) if (100..600).contains(&code) => {
                                worker.retry_http_codes.push(code)
                            }
                            _ if part.trim().is_empty() => {}
                            _ => {
                                self.error(item.pos, format!("`{part}` is not an HTTP status code"))
                            }
                        }
                    }
                }
            } else if key_is(k, "initial-backoff") {
                if let Some(d) = self.duration(value, "initial-backoff") {
                    worker.initial_backoff = d;
                }
            } else if key_is(k, "max-backoff") {
                if let Some(d) = self.duration(value, "max-backoff") {
                    worker.max_backoff = d;
                }
            } else if key_is(k, "callback-retries") {
                if let Some(n) = self.number::<u32>(value, "callback-retries") {
                    worker.callback_retries = n;
                }
            } else {
                let hint = suggestion(k, KEYS);
                self.error(key.pos, format!("unknown key `{k}` in `worker`{hint}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::{load, Source};

    fn settings(yaml: &str, env: &[(&str, &str)]) -> AsyncSettings {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let source = Source {
            name: Arc::from("t.yaml"),
            text: yaml.to_string(),
        };
        load(&source, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .expect("loads")
        .async_queue
    }

    #[test]
    fn openfaas_picks_nats_only_when_both_variables_are_set() {
        let yaml = "async:\n  queue: openfaas\n";
        assert_eq!(settings(yaml, &[]).queue, QueueKind::Embedded);
        assert_eq!(
            settings(yaml, &[("faas_nats_address", "nats")]).queue,
            QueueKind::Embedded
        );
        let nats = settings(
            yaml,
            &[("faas_nats_address", "nats"), ("faas_nats_port", "4222")],
        );
        assert_eq!(nats.queue, QueueKind::Nats);
        assert_eq!(nats.nats.url, "nats://nats:4222");
    }

    #[test]
    fn worker_settings_and_errors() {
        let s = settings(
            "async:\n  max-body: 64KiB\n  worker: { max-inflight: 3, retry-http-codes: [500, 503], initial-backoff: 10ms }\n",
            &[],
        );
        assert_eq!(s.max_body, 64 * 1024);
        assert_eq!(s.worker.max_inflight, 3);
        assert_eq!(s.worker.retry_http_codes, vec![500, 503]);
        assert_eq!(s.worker.initial_backoff, Duration::from_millis(10));
        let source = Source {
            name: Arc::from("t.yaml"),
            text: "async:\n  wroker: {}\n".into(),
        };
        let e = load(&source, &|_| None).unwrap_err().to_string();
        assert!(e.contains("did you mean `worker`"), "{e}");
    }
}
