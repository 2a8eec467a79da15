//! The queue worker: takes messages, invokes the function through the provider, posts the
//! result to the callback URL, and only then acknowledges the message.
//!
//! - Up to `max-inflight` invocations run at once.
//! - A function answering one of `retry-http-codes` (429, 502, 503, 504 by default), or that
//!   cannot be reached, is invoked again after `initial-backoff`, doubling up to `max-backoff`,
//!   with jitter, until `max-retry-attempts` attempts were made; the last outcome is final.
//! - The callback gets the function's response body and headers, plus `X-Call-Id`,
//!   `X-Function-Status`, `X-Function-Name` and `X-Duration-Seconds`; a failed callback is
//!   retried `callback-retries` times.
//! - With NATS, a progress heartbeat goes out every third of `ack-wait` while the message is
//!   worked on, so a slow function is not delivered (and executed) twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::{watch, Semaphore};
use weir_filters::Body;

use super::message::QueueRequest;
use super::{Backend, Delivery, Queue};
use crate::proxy::headers::remove_hop_by_hop;
use crate::proxy::HttpClient;

/// A function response larger than this is cut short before the callback.
const MAX_RESULT: usize = 64 << 20;

/// Opens the queue (for NATS, retrying until the server answers), makes it available to the
/// `queue:` routes, and runs the worker when it is enabled, until `shutdown` turns true.
pub async fn open_and_run(
    settings: crate::config::AsyncSettings,
    shared: Arc<crate::Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let backend = format!("{:?}", settings.queue).to_lowercase();
    let queue = match Queue::open(settings, shared.metrics.queue.clone()).await {
        Ok(mut queue) => {
            queue.faas_metrics = shared
                .resources
                .state
                .values::<weir_filters::function_metrics::FaasMetrics>()
                .into_iter()
                .next()
                .map(|(_, metrics)| metrics);
            Arc::new(queue)
        }
        Err(e) => {
            tracing::error!(error = %e, "the async queue could not be opened; async requests get 503");
            return;
        }
    };
    shared.resources.queue.store(Some(queue.clone()));
    tracing::info!(
        backend,
        worker = queue.settings.worker.enabled,
        "async queue open"
    );
    if queue.settings.worker.enabled {
        let client = shared
            .resources
            .upstream
            .client(Duration::from_secs(5), Default::default());
        run(queue, client, shutdown).await;
    }
}

/// Runs the worker until `shutdown` turns true.
pub async fn run(queue: Arc<Queue>, client: HttpClient, mut shutdown: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(queue.settings.worker.max_inflight));
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    match &queue.backend {
        Backend::Embedded { receiver, .. } => loop {
            let message = tokio::select! {
                message = async { receiver.lock().await.recv().await } => message,
                _ = &mut stop => return,
            };
            let Some(payload) = message else { return };
            dispatch(&queue, &client, &permits, Delivery::Embedded(payload)).await;
        },
        Backend::Nats(nats_backend) => loop {
            let stream = &nats_backend.stream;
            let nats = &queue.settings.nats;
            let consumer = stream
                .get_or_create_consumer(
                    &nats.consumer,
                    async_nats::jetstream::consumer::pull::Config {
                        durable_name: Some(nats.consumer.clone()),
                        ack_wait: nats.ack_wait,
                        max_deliver: nats.max_deliver,
                        ..Default::default()
                    },
                )
                .await;
            let messages = match consumer {
                Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let mut messages = match messages {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot consume from NATS yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = &mut stop => return,
                    }
                }
            };
            loop {
                let next = tokio::select! {
                    next = messages.next() => next,
                    _ = &mut stop => return,
                };
                match next {
                    Some(Ok(message)) => {
                        dispatch(&queue, &client, &permits, Delivery::Nats(Box::new(message))).await
                    }
                    Some(Err(e)) => tracing::debug!(error = %e, "NATS consumer hiccup"),
                    None => break, // the subscription ended: create it again
                }
            }
        },
    }
}

/// Waits for a free slot, then works on the message in its own task.
async fn dispatch(
    queue: &Arc<Queue>,
    client: &HttpClient,
    permits: &Arc<Semaphore>,
    delivery: Delivery,
) {
    let Ok(permit) = permits.clone().acquire_owned().await else {
        return;
    };
    let (queue, client) = (queue.clone(), client.clone());
    queue.metrics.depth.set(queue.depth());
    tokio::spawn(async move {
        let heartbeat = queue.settings.nats.ack_wait / 3;
        let work = process(&queue, &client, &delivery);
        tokio::pin!(work);
        loop {
            tokio::select! {
                () = &mut work => break,
                _ = tokio::time::sleep(heartbeat) => delivery.progress().await,
            }
        }
        delivery.ack().await;
        drop(permit);
    });
}

/// Invokes, calls back, and records metrics. Never fails: a message that cannot be handled
/// is logged and finished, so that it is not retried forever.
async fn process(queue: &Queue, client: &HttpClient, delivery: &Delivery) {
    let started = Instant::now();
    let request: QueueRequest = match serde_json::from_slice(delivery.payload()) {
        Ok(request) => request,
        Err(e) => {
            tracing::error!(error = %e, "an async message is not a valid queue request; dropping it");
            return;
        }
    };
    queue.metrics.started.inc();
    let invocation = queue
        .faas_metrics
        .as_ref()
        .map(|faas| faas.started(&request.function));
    let invoked = Instant::now();
    let (status, headers, body) = invoke(queue, client, &request).await;
    if let Some(invocation) = invocation {
        invocation.finished(status, invoked.elapsed());
    }
    queue
        .metrics
        .completed
        .get_or_create(&crate::metrics::StatusLabels {
            status: status.as_u16(),
        })
        .inc();
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        function = %request.function,
        call_id = request.call_id().unwrap_or(""),
        status = status.as_u16(),
        seconds,
        "async invocation finished"
    );
    if let Some(url) = &request.callback_url {
        callback(queue, client, &request, url, status, headers, body, seconds).await;
    }
}

fn backoff(queue: &Queue, attempt: u32) -> Duration {
    let worker = &queue.settings.worker;
    let base = worker
        .initial_backoff
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(worker.max_backoff);
    // Jitter: between half and all of the delay.
    let unit = (weir_filters::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.5 + unit / 2.0)
}

/// Sends `request` to the function, retrying as configured; returns the final status,
/// headers and body (503 with no body when the function could never be reached).
async fn invoke(
    queue: &Queue,
    client: &HttpClient,
    request: &QueueRequest,
) -> (StatusCode, HeaderMap, Bytes) {
    let provider = queue.settings.provider.trim_end_matches('/');
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path.as_str()
    };
    let query = if request.query_string.is_empty() {
        String::new()
    } else {
        format!("?{}", request.query_string)
    };
    let url = format!(
        "{provider}/function/{}{path}{query}",
        request.function.trim_matches('/')
    );
    let worker = &queue.settings.worker;
    let mut attempt = 1;
    loop {
        let outcome = send(
            client,
            Method::POST,
            &url,
            &request.header,
            Bytes::from(request.body.clone()),
        )
        .await;
        let retryable = match &outcome {
            Ok((status, _, _)) => worker.retry_http_codes.contains(&status.as_u16()),
            Err(_) => true,
        };
        if !retryable || attempt >= worker.max_retry_attempts {
            return outcome.unwrap_or_else(|e| {
                tracing::warn!(function = %request.function, error = %e, "the function could not be reached");
                (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), Bytes::new())
            });
        }
        queue.metrics.retried.inc();
        let delay = backoff(queue, attempt);
        tracing::debug!(function = %request.function, attempt, delay_ms = delay.as_millis() as u64, "retrying the async invocation");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[allow(clippy::too_many_arguments)]
async fn callback(
    queue: &Queue,
    client: &HttpClient,
    request: &QueueRequest,
    url: &str,
    status: StatusCode,
    mut headers: HeaderMap,
    body: Bytes,
    seconds: f64,
) {
    remove_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::HOST);
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("x-function-status", &status.as_u16().to_string());
    set("x-function-name", &request.function);
    set("x-duration-seconds", &format!("{seconds:.6}"));
    if let Some(id) = request.call_id() {
        set("x-call-id", id);
    }
    let as_map: std::collections::BTreeMap<String, Vec<String>> = headers
        .keys()
        .map(|k| {
            let values = headers
                .get_all(k)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect();
            (k.to_string(), values)
        })
        .collect();
    let worker = &queue.settings.worker;
    for attempt in 0..=worker.callback_retries {
        match send(client, Method::POST, url, &as_map, body.clone()).await {
            Ok((status, _, _)) if !status.is_server_error() => return,
            Ok((status, _, _)) => {
                tracing::warn!(url, status = status.as_u16(), attempt, "callback failed")
            }
            Err(e) => tracing::warn!(url, error = %e, attempt, "callback failed"),
        }
        if attempt < worker.callback_retries {
            tokio::time::sleep(backoff(queue, attempt + 1)).await;
        }
    }
    queue.metrics.callback_failures.inc();
}

/// One HTTP call with a body in memory; reads the response body (up to [`MAX_RESULT`]).
async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &std::collections::BTreeMap<String, Vec<String>>,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad url {url}: {e}"))?;
    let mut request = Request::new(if body.is_empty() {
        Body::Empty
    } else {
        Body::full(body)
    });
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, values) in headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        for value in values {
            if let Ok(value) = HeaderValue::from_str(value) {
                request.headers_mut().append(name.clone(), value);
            }
        }
    }
    remove_hop_by_hop(request.headers_mut());
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let (parts, mut incoming) = response.into_parts();
    let mut body = bytes::BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Some(data) = frame.data_ref() {
            let room = MAX_RESULT.saturating_sub(body.len());
            body.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok((parts.status, parts.headers, body.freeze()))
}
