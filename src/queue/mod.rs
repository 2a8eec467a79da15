//! Async invocations: `queue:` routes accept a request into a queue and answer 202 at once;
//! the worker ([`worker`]) invokes the function later and posts the result to the caller's
//! `X-Callback-Url`.
//!
//! ```text
//! POST /async-function/f ─► validate (callback url, body size) ─► publish ─► 202 + X-Call-Id
//!                                                                     │ (durably accepted first)
//! worker ◄── take ◄──────────────────────────────────────────────────┘
//!   └─► POST {provider}/function/f{path} (retries with backoff) ─► callback ─► ack
//! ```
//! Backends: the embedded queue (in process, bounded; lost if weir crashes) and NATS
//! JetStream (a stream and a durable consumer shared by every weir that uses them; a message is
//! acknowledged only when it is finished, and in-progress heartbeats keep a slow function from
//! being delivered twice).

pub mod message;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::sync::{mpsc, Mutex};
use weir_filters::{Body, Exchange, HttpService};

use crate::config::{AsyncSettings, QueueKind};
use crate::metrics::QueueMetrics;
use message::QueueRequest;

/// Why work could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The embedded queue is full.
    #[error("the queue is full")]
    Full,
    /// The backend cannot accept work now.
    #[error("the queue cannot accept work: {0}")]
    Unavailable(String),
}

/// One message taken from the queue by the worker.
pub enum Delivery {
    /// From the embedded queue.
    Embedded(Bytes),
    /// From NATS JetStream.
    Nats(Box<async_nats::jetstream::Message>),
}

impl Delivery {
    /// The message's bytes.
    pub fn payload(&self) -> &[u8] {
        match self {
            Delivery::Embedded(bytes) => bytes,
            Delivery::Nats(message) => &message.payload,
        }
    }

    /// Tells the queue the message is still being worked on.
    pub async fn progress(&self) {
        if let Delivery::Nats(message) = self {
            if let Err(e) = message
                .ack_with(async_nats::jetstream::AckKind::Progress)
                .await
            {
                tracing::debug!(error = %e, "progress heartbeat failed");
            }
        }
    }

    /// Tells the queue the message is finished.
    pub async fn ack(&self) {
        if let Delivery::Nats(message) = self {
            if let Err(e) = message.double_ack().await {
                tracing::warn!(error = %e, "ack failed; the message may be delivered again");
            }
        }
    }
}

enum Backend {
    Embedded {
        sender: mpsc::Sender<Bytes>,
        receiver: Mutex<mpsc::Receiver<Bytes>>,
    },
    Nats(Box<NatsBackend>),
}

struct NatsBackend {
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    stream: async_nats::jetstream::stream::Stream,
}

/// A running queue.
pub struct Queue {
    /// Its settings.
    pub settings: AsyncSettings,
    backend: Backend,
    metrics: QueueMetrics,
    /// The OpenFaaS function metrics, when the config records them (`FunctionMetrics`): async
    /// invocations are counted there too.
    pub faas_metrics: Option<Arc<weir_filters::function_metrics::FaasMetrics>>,
}

impl Queue {
    /// Opens the queue: the embedded one at once; for NATS, connects and opens the stream
    /// (creating it if it does not exist), retrying both until the server answers.
    pub async fn open(settings: AsyncSettings, metrics: QueueMetrics) -> Result<Self, String> {
        let backend = match settings.queue {
            QueueKind::Embedded => {
                let (sender, receiver) = mpsc::channel(settings.capacity);
                Backend::Embedded {
                    sender,
                    receiver: Mutex::new(receiver),
                }
            }
            QueueKind::Nats => {
                let client = async_nats::ConnectOptions::new()
                    .retry_on_initial_connect()
                    .connect(settings.nats.url.as_str())
                    .await
                    .map_err(|e| format!("cannot connect to NATS at {}: {e}", settings.nats.url))?;
                let jetstream = async_nats::jetstream::new(client.clone());
                let stream = open_stream(&jetstream, &settings).await?;
                Backend::Nats(Box::new(NatsBackend {
                    client,
                    jetstream,
                    stream,
                }))
            }
        };
        Ok(Self {
            settings,
            backend,
            metrics,
            faas_metrics: None,
        })
    }

    /// Accepts one message; returns once the backend holds it durably (for NATS, once the
    /// server acknowledged the publish).
    pub async fn publish(&self, payload: Bytes) -> Result<(), EnqueueError> {
        match &self.backend {
            Backend::Embedded { sender, .. } => sender.try_send(payload).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EnqueueError::Full,
                mpsc::error::TrySendError::Closed(_) => {
                    EnqueueError::Unavailable("the queue is closed".into())
                }
            })?,
            Backend::Nats(nats) => {
                let NatsBackend {
                    client, jetstream, ..
                } = nats.as_ref();
                // While disconnected the client would buffer the message and confirm it only
                // after reconnecting: refuse at once instead.
                if client.connection_state() != async_nats::connection::State::Connected {
                    return Err(EnqueueError::Unavailable("not connected to NATS".into()));
                }
                let ack = jetstream
                    .publish(self.settings.nats.subject.clone(), payload)
                    .await
                    .map_err(|e| EnqueueError::Unavailable(e.to_string()))?;
                tokio::time::timeout(Duration::from_secs(5), ack)
                    .await
                    .map_err(|_| {
                        EnqueueError::Unavailable("NATS did not confirm the message in time".into())
                    })?
                    .map_err(|e| EnqueueError::Unavailable(e.to_string()))?;
            }
        }
        self.metrics.queued.inc();
        self.metrics.depth.set(self.depth());
        Ok(())
    }

    /// Messages waiting in the embedded queue (0 for NATS, whose depth is the server's).
    pub fn depth(&self) -> i64 {
        match &self.backend {
            Backend::Embedded { sender, .. } => (sender.max_capacity() - sender.capacity()) as i64,
            Backend::Nats(_) => 0,
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &QueueMetrics {
        &self.metrics
    }
}

/// Opens the JetStream stream, creating it if it does not exist. A failure that may pass (the
/// server busy or restarting, a request timed out, another gateway creating the same stream
/// at the same moment) is retried, from 100 ms doubling up to 5 s, and logged; a stream name
/// the server can never accept is an error.
async fn open_stream(
    jetstream: &async_nats::jetstream::Context,
    settings: &AsyncSettings,
) -> Result<async_nats::jetstream::stream::Stream, String> {
    use async_nats::jetstream::context::CreateStreamErrorKind;
    let config = async_nats::jetstream::stream::Config {
        name: settings.nats.stream.clone(),
        subjects: vec![settings.nats.subject.clone()],
        retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    };
    let mut delay = Duration::from_millis(100);
    loop {
        match jetstream.get_or_create_stream(config.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    CreateStreamErrorKind::EmptyStreamName
                        | CreateStreamErrorKind::InvalidStreamName
                        | CreateStreamErrorKind::DomainAndExternalSet
                ) =>
            {
                return Err(format!(
                    "cannot create JetStream stream `{}`: {e}",
                    settings.nats.stream
                ));
            }
            Err(e) => {
                tracing::warn!(
                    stream = %settings.nats.stream,
                    error = %e,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "the JetStream stream cannot be opened yet; retrying"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The queue the compiled `queue:` routes use, set once it is open.
pub type QueueSlot = Arc<ArcSwapOption<Queue>>;

/// The innermost service of a `queue:` route: validates the request, queues it, answers 202.
pub fn enqueue_service(slot: QueueSlot) -> HttpService {
    HttpService::from_fn(move |exchange| {
        let slot = slot.clone();
        async move { enqueue(slot, exchange).await }
    })
}

async fn enqueue(slot: QueueSlot, mut exchange: Exchange) -> Response<Body> {
    let Some(queue) = slot.load_full() else {
        return exchange.error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the async queue is not running yet",
        );
    };
    let Some(function) = exchange.vars.get("name").map(str::to_string) else {
        return exchange.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the route does not capture `{name}`",
        );
    };
    let callback_url = match exchange.request.headers().get("x-callback-url") {
        None => None,
        Some(value) => {
            let valid = value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<http::Uri>().ok())
                .filter(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
                });
            match valid {
                Some(uri) => Some(uri.to_string()),
                None => {
                    return exchange.error(
                        StatusCode::BAD_REQUEST,
                        "X-Callback-Url must be an absolute http:// or https:// URL",
                    )
                }
            }
        }
    };
    let limit = queue.settings.max_body;
    let too_large = || format!("the request body is larger than the async limit of {limit} bytes");
    let mut body = std::mem::take(exchange.request.body_mut());
    if body.size_hint().lower() > limit as u64 {
        return exchange.error(StatusCode::PAYLOAD_TOO_LARGE, &too_large());
    }
    let mut kept = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return exchange.error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            );
        };
        if let Some(data) = frame.data_ref() {
            if kept.len() + data.len() > limit {
                return exchange.error(StatusCode::PAYLOAD_TOO_LARGE, &too_large());
            }
            kept.extend_from_slice(data);
        }
    }
    let headers = exchange.request.headers_mut();
    let call_id = match headers.get("x-call-id").and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            let id = weir_filters::call_id::uuid_v4();
            headers.insert(
                "x-call-id",
                HeaderValue::from_str(&id).expect("a uuid is a header value"),
            );
            id
        }
    };
    let mut header = std::collections::BTreeMap::new();
    for name in headers.keys() {
        if name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        let values = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        header.insert(canonical_header(name.as_str()), values);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let path = exchange.path();
    let rest = path
        .split_once(&format!("/{function}"))
        .map_or("", |(_, rest)| rest)
        .to_string();
    let request = QueueRequest {
        header,
        host,
        body: kept.to_vec(),
        method: "POST".into(),
        path: rest,
        query_string: exchange.query().unwrap_or_default().to_string(),
        function,
        queue_name: String::new(),
        callback_url,
    };
    let payload = match serde_json::to_vec(&request) {
        Ok(json) => Bytes::from(json),
        Err(e) => {
            return exchange.error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot encode the request: {e}"),
            )
        }
    };
    match queue.publish(payload).await {
        Ok(()) => {
            let mut response = Response::new(Body::Empty);
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(
                "x-call-id",
                HeaderValue::from_str(&call_id).expect("checked above"),
            );
            response
        }
        Err(EnqueueError::Full) => {
            let mut response = exchange.error(
                StatusCode::TOO_MANY_REQUESTS,
                "the async queue is full; try again later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        Err(EnqueueError::Unavailable(e)) => {
            tracing::warn!(route = %exchange.route_id, error = %e, "async request not accepted");
            exchange.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the async queue cannot accept work now",
            )
        }
    }
}

/// `x-call-id` as Go writes it: `X-Call-Id`.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_names_are_written_as_go_writes_them() {
        assert_eq!(super::canonical_header("x-call-id"), "X-Call-Id");
        assert_eq!(super::canonical_header("content-type"), "Content-Type");
    }
}
