//! `Retry`: sends a request again when the upstream fails or answers with a retryable status.
//!
//! ```yaml
//! - Retry=3, BAD_GATEWAY, GET, 10ms, 500ms, 2, false
//! - name: Retry
//!   args:
//!     retries: 3
//!     series: SERVER_ERROR          # 5xx (default); or statuses: [502, 503]
//!     methods: GET                  # default GET only; POST is retried only when listed
//!     exceptions: connect, timeout  # upstream failures that are retried (default both)
//!     backoff: { firstBackoff: 10ms, maxBackoff: 500ms, factor: 2, basedOnPreviousValue: true }
//!     jitter: { randomFactor: 0.5 }
//!     timeout: 2s                   # per attempt
//!     max-replay-body: 64KiB        # larger bodies are streamed once, never retried
//! ```
//! A retry re-runs every filter after `Retry` in the chain. Behind `lb://`, a retry goes to
//! another instance when there is one. A request body is kept for replay only up to
//! `max-replay-body`; a larger one is streamed to the upstream and not retried.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::Body as _;

use crate::service::{BoxFuture, Erased};
use crate::set_status::parse_status;
use crate::{
    read_replayable, ArgError, Args, Body, Exchange, Filter, FilterContext, FilterFactory,
    HttpService, LayerFilter, Replay, Shortcut, TriedInstances, UpstreamFailure,
};

/// Builds [`Retry`].
pub struct RetryFactory;

/// Which upstream failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exception {
    /// Could not connect, or the connection closed before a response.
    Connect,
    /// Connecting or the response took too long.
    Timeout,
}

/// The retry policy.
#[derive(Debug, Clone)]
pub struct Policy {
    retries: u32,
    statuses: Vec<StatusCode>,
    series: Vec<u16>,
    methods: Vec<Method>,
    exceptions: Vec<Exception>,
    first_backoff: Option<Duration>,
    max_backoff: Option<Duration>,
    factor: f64,
    based_on_previous: bool,
    jitter: f64,
    timeout: Option<Duration>,
    max_replay_body: usize,
}

fn series_of(text: &str) -> Option<u16> {
    match text.trim().to_ascii_uppercase().replace('-', "_").as_str() {
        "INFORMATIONAL" | "1XX" => Some(1),
        "SUCCESSFUL" | "2XX" => Some(2),
        "REDIRECTION" | "3XX" => Some(3),
        "CLIENT_ERROR" | "4XX" => Some(4),
        "SERVER_ERROR" | "5XX" => Some(5),
        _ => None,
    }
}

fn exception_of(text: &str) -> Option<Exception> {
    let t = text.trim();
    let simple = t.rsplit('.').next().unwrap_or(t).to_ascii_lowercase();
    match simple.as_str() {
        "connect" | "ioexception" | "connectexception" | "prematurecloseexception" => {
            Some(Exception::Connect)
        }
        "timeout" | "timeoutexception" => Some(Exception::Timeout),
        _ => None,
    }
}

impl FilterFactory for RetryFactory {
    fn name(&self) -> &'static str {
        "Retry"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&[
            "retries",
            "statuses",
            "methods",
            "backoff.firstBackoff",
            "backoff.maxBackoff",
            "backoff.factor",
            "backoff.basedOnPreviousValue",
            "jitter.randomFactor",
            "timeout",
        ])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let retries = args
            .parse::<u32>("retries", "a whole number of retries")?
            .unwrap_or(3);
        let statuses = args
            .list("statuses")
            .into_iter()
            .map(|s| parse_status("statuses", s))
            .collect::<Result<Vec<_>, _>>()?;
        let series = args
            .list("series")
            .into_iter()
            .map(|s| series_of(s).ok_or_else(|| ArgError::for_arg("series", format!("`{s}` is not a status series; write SERVER_ERROR, CLIENT_ERROR, ... or 5xx"))))
            .collect::<Result<Vec<_>, _>>()?;
        let series = if series.is_empty() && statuses.is_empty() {
            vec![5]
        } else {
            series
        };
        let methods = args.methods("methods")?;
        let methods = if methods.is_empty() {
            vec![Method::GET]
        } else {
            methods
        };
        let exceptions = args
            .list("exceptions")
            .into_iter()
            .map(|e| exception_of(e).ok_or_else(|| ArgError::for_arg("exceptions", format!("`{e}` is not a retryable failure; write `connect` or `timeout` (Java's IOException and TimeoutException are accepted)"))))
            .collect::<Result<Vec<_>, _>>()?;
        let exceptions = if exceptions.is_empty() {
            vec![Exception::Connect, Exception::Timeout]
        } else {
            exceptions
        };
        let first_backoff = args.duration("backoff.firstBackoff")?;
        let max_backoff = args.duration("backoff.maxBackoff")?;
        let factor = args
            .parse::<f64>("backoff.factor", "a number such as 2")?
            .unwrap_or(2.0);
        let based_on_previous = args.flag("backoff.basedOnPreviousValue", true)?;
        let jitter = args
            .parse::<f64>("jitter.randomFactor", "a number from 0 to 1")?
            .unwrap_or(0.0);
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ArgError::for_arg(
                "jitter.randomFactor",
                "must be from 0 to 1",
            ));
        }
        if factor < 1.0 {
            return Err(ArgError::for_arg("backoff.factor", "must be 1 or more"));
        }
        let timeout = args.duration("timeout")?;
        let max_replay_body = args.size("max-replay-body")?.unwrap_or(64 * 1024);
        if retries > 0 && statuses.is_empty() && series.is_empty() && exceptions.is_empty() {
            return Err(ArgError::new(
                "nothing would be retried: give statuses, series or exceptions",
            ));
        }
        let policy = Policy {
            retries,
            statuses,
            series,
            methods,
            exceptions,
            first_backoff,
            max_backoff,
            factor,
            based_on_previous,
            jitter,
            timeout,
            max_replay_body,
        };
        Ok(Filter::Layer(Arc::new(Retry {
            policy: Arc::new(policy),
        })))
    }
}

/// Wraps the rest of the chain and repeats failed calls.
pub struct Retry {
    policy: Arc<Policy>,
}

impl LayerFilter for Retry {
    fn layer(&self, next: HttpService) -> HttpService {
        HttpService::erased(Retrying {
            policy: self.policy.clone(),
            next,
        })
    }
}

/// The rest of the chain, called again while the policy says so.
struct Retrying {
    policy: Arc<Policy>,
    next: HttpService,
}

impl Erased for Retrying {
    fn call(&self, mut exchange: Exchange) -> BoxFuture {
        let policy = &self.policy;
        // A request that may switch protocols is sent once, as one never retried.
        if policy.retries == 0
            || !policy.methods.contains(exchange.request.method())
            || exchange.may_switch_protocols()
        {
            // Never retried: straight on, with nothing of this layer's in the way.
            return policy.attempt(&self.next, exchange);
        }
        if exchange.request.body().is_end_stream() {
            return Box::pin(Attempts::new(
                policy.clone(),
                self.next.clone(),
                exchange,
                Bytes::new(),
            ));
        }
        // A body is kept for replay first, when it is small enough.
        let (policy, next) = (policy.clone(), self.next.clone());
        Box::pin(async move {
            let body = std::mem::take(exchange.request.body_mut());
            match read_replayable(body, policy.max_replay_body).await {
                Replay::Kept(body) => Attempts::new(policy, next, exchange, body).await,
                Replay::TooLarge(body) => {
                    *exchange.request.body_mut() = body;
                    policy.attempt(&next, exchange).await
                }
                Replay::Failed => exchange.error(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ),
            }
        })
    }
}

/// The attempts at one request: each lends `original` to the rest of the chain or sends a
/// copy of it (and `body`) on ([`Policy::attempt_with`]), until one is not retryable or the
/// retries run out, with the policy's backoff in between.
///
/// Written by hand rather than as an `async` block, which would keep room for the exchange
/// twice and copy it at every step; this holds it once, and each attempt's future is boxed
/// apart.
struct Attempts {
    policy: Arc<Policy>,
    next: HttpService,
    /// The request as it came to this layer, without its body.
    original: Exchange,
    body: Bytes,
    /// Retries made so far.
    retried: u32,
    /// The last backoff delay.
    delay: Duration,
    step: Step,
}

enum Step {
    Calling(BoxFuture),
    Waiting(Pin<Box<tokio::time::Sleep>>),
}

impl Attempts {
    fn new(policy: Arc<Policy>, next: HttpService, mut original: Exchange, body: Bytes) -> Self {
        // Shared by every attempt: the balancer records the instances it picks there.
        original.tried_instances.get_or_insert_with(|| {
            TriedInstances::new((policy.retries as usize).saturating_add(1))
        });
        let call = policy.attempt_with(&next, &original, &body);
        Self {
            policy,
            next,
            original,
            body,
            retried: 0,
            delay: Duration::ZERO,
            step: Step::Calling(call),
        }
    }

    /// The next attempt: the original lent, or a copy of it sent on.
    fn call(&self) -> Step {
        Step::Calling(
            self.policy
                .attempt_with(&self.next, &self.original, &self.body),
        )
    }
}

impl Future for Attempts {
    type Output = Response<Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let this = &mut *self;
        loop {
            match &mut this.step {
                Step::Calling(call) => {
                    let response = ready!(call.as_mut().poll(cx));
                    if this.retried == this.policy.retries || !this.policy.retryable(&response) {
                        return Poll::Ready(response);
                    }
                    this.retried += 1;
                    this.delay = this.policy.backoff(this.retried, this.delay);
                    tracing::debug!(
                        route = %this.original.route_id,
                        attempt = this.retried,
                        status = response.status().as_u16(),
                        delay_ms = this.delay.as_millis() as u64,
                        "retrying"
                    );
                    drop(response);
                    this.step = if this.delay.is_zero() {
                        this.call()
                    } else {
                        Step::Waiting(Box::pin(tokio::time::sleep(this.delay)))
                    };
                }
                Step::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    this.step = this.call();
                }
            }
        }
    }
}

impl Policy {
    /// One attempt: `exchange` sent to the rest of the chain, within the per-attempt timeout.
    fn attempt(&self, next: &HttpService, exchange: Exchange) -> BoxFuture {
        next.call_within(exchange, self.timeout, "")
    }

    /// One attempt at `original` with `body`: lent to the rest of the chain when it can send
    /// it without taking it (the forwarder, with no filter after Retry, for a request without
    /// a body and no per-attempt timeout, which marks the exchange it times), else a copy.
    fn attempt_with(&self, next: &HttpService, original: &Exchange, body: &Bytes) -> BoxFuture {
        if body.is_empty() && self.timeout.is_none() {
            if let Some(call) = next.call_borrowed(original) {
                return call;
            }
        }
        self.attempt(next, original.replay(body.clone()))
    }

    /// The delay before retry number `attempt` (1-based).
    fn backoff(&self, attempt: u32, previous: Duration) -> Duration {
        let Some(first) = self.first_backoff else {
            return Duration::ZERO;
        };
        let base = if attempt <= 1 {
            first
        } else if self.based_on_previous {
            previous.mul_f64(self.factor)
        } else {
            first.mul_f64(self.factor.powi(attempt as i32 - 1))
        };
        let base = self.max_backoff.map_or(base, |max| base.min(max));
        if self.jitter == 0.0 {
            return base;
        }
        // Uniform in [base × (1 − jitter), base × (1 + jitter)].
        let unit = (crate::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - self.jitter + 2.0 * self.jitter * unit)
    }

    fn retryable(&self, response: &Response<Body>) -> bool {
        if let Some(failure) = response.extensions().get::<UpstreamFailure>() {
            return match failure {
                UpstreamFailure::Connect | UpstreamFailure::Closed => {
                    self.exceptions.contains(&Exception::Connect)
                }
                UpstreamFailure::Timeout => self.exceptions.contains(&Exception::Timeout),
            };
        }
        let status = response.status();
        self.statuses.contains(&status) || self.series.contains(&(status.as_u16() / 100))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::Request;

    use super::*;

    fn policy(timeout: Option<Duration>) -> Arc<Policy> {
        Arc::new(Policy {
            retries: 3,
            statuses: Vec::new(),
            series: vec![5],
            methods: vec![Method::GET],
            exceptions: vec![Exception::Connect, Exception::Timeout],
            first_backoff: None,
            max_backoff: None,
            factor: 2.0,
            based_on_previous: true,
            jitter: 0.0,
            timeout,
            max_replay_body: 64 * 1024,
        })
    }

    fn failure() -> Response<Body> {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    }

    /// Sends a GET with `body` through Retry (three retries of a service that always fails
    /// with 502) in front of a service that takes lent exchanges when `lends`; returns how many
    /// attempts were taken and how many lent.
    async fn attempts(
        timeout: Option<Duration>,
        body: &'static str,
        lends: bool,
    ) -> (usize, usize) {
        let taken = Arc::new(AtomicUsize::new(0));
        let lent = Arc::new(AtomicUsize::new(0));
        let owned = {
            let taken = taken.clone();
            move |_: Exchange| {
                taken.fetch_add(1, Ordering::Relaxed);
                std::future::ready(failure())
            }
        };
        let next = if lends {
            let lent = lent.clone();
            HttpService::from_fns(
                move |e| Box::pin(owned(e)) as BoxFuture,
                move |_: &Exchange| {
                    lent.fetch_add(1, Ordering::Relaxed);
                    Some(Box::pin(std::future::ready(failure())) as BoxFuture)
                },
            )
        } else {
            HttpService::from_fn(owned)
        };
        let retrying = Retrying {
            policy: policy(timeout),
            next,
        };
        let body = if body.is_empty() {
            Body::Empty
        } else {
            Body::full(Bytes::from_static(body.as_bytes()))
        };
        let request = Request::get("/").body(body).unwrap();
        let response = retrying.call(Exchange::internal(request, "r".into())).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        (taken.load(Ordering::Relaxed), lent.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_request_is_lent_only_when_nothing_needs_a_copy() {
        // No body, no per-attempt timeout, a service that takes lent exchanges: no copy.
        assert_eq!(attempts(None, "", true).await, (0, 4));
        // A per-attempt timeout marks the exchange it times: copies.
        assert_eq!(
            attempts(Some(Duration::from_secs(5)), "", true).await,
            (4, 0)
        );
        // A body kept for replay goes with each copy.
        assert_eq!(attempts(None, "body", true).await, (4, 0));
        // Anything else after Retry (a filter, a breaker) takes copies.
        assert_eq!(attempts(None, "", false).await, (4, 0));
    }
}
