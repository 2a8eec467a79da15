//! `CircuitBreaker`: stops calling an upstream that keeps failing, and answers with a fallback
//! or 503 until it recovers.
//!
//! ```yaml
//! - CircuitBreaker=backend, forward:/fallback
//! - name: CircuitBreaker
//!   args:
//!     name: backend                       # breakers are keyed by name (default: the route id)
//!     fallback-uri: forward:/fallback     # or http(s)://host:port; default: answer 503
//!     status-codes: [500, BAD_GATEWAY]    # upstream statuses that count as failures
//!     sliding-window-type: count          # or time
//!     sliding-window-size: 100            # calls, or seconds for a time window
//!     minimum-number-of-calls: 100
//!     failure-rate-threshold: 50          # percent
//!     wait-duration-in-open-state: 60s
//!     permitted-number-of-calls-in-half-open-state: 10
//!     slow-call-duration-threshold: 2s    # default: no call is slow
//!     slow-call-rate-threshold: 100       # percent
//!     time-limit: 5s                      # default: none (SCG's 1 s default is not copied)
//! ```
//! A call fails when the upstream cannot be reached or times out (weir's 502/504), when it
//! answers one of `status-codes`, or when it exceeds `time-limit` (then 504). While the breaker
//! is open, requests are answered without touching the upstream: 503, or the fallback. The
//! fallback request carries SCG's `Execution-Exception-Type` and
//! `Execution-Exception-Message` headers. The breaker's state machine is in [`breaker`].

pub mod breaker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderValue, Response, StatusCode};

use crate::service::{BoxFuture, Erased};
use crate::set_status::parse_status;
use crate::{
    fallback_service, read_replayable, ArgError, Args, Body, Exchange, Filter, FilterContext,
    FilterFactory, HttpService, LayerFilter, Replay, Shortcut, UpstreamFailure,
};
use breaker::{Breaker, Permit, Settings, Window};

/// Builds [`CircuitBreaker`].
pub struct CircuitBreakerFactory;

impl FilterFactory for CircuitBreakerFactory {
    fn name(&self) -> &'static str {
        "CircuitBreaker"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "fallbackUri"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let name = match args.get("name").map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => ctx.route_id().to_string(),
        };
        let fallback = match args
            .get("fallbackUri")
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(uri) => Some(
                fallback_service(ctx.upstreams(), uri)
                    .map_err(|e| ArgError::for_arg("fallbackUri", e))?,
            ),
        };
        let status_codes = args
            .list("statusCodes")
            .into_iter()
            .map(|s| parse_status("statusCodes", s))
            .collect::<Result<Vec<_>, _>>()?;
        let size = args
            .parse::<u32>("slidingWindowSize", "a whole number")?
            .unwrap_or(100)
            .max(1);
        let window = match args
            .get("slidingWindowType")
            .map(|t| t.trim().to_ascii_lowercase())
        {
            None => Window::Count(size),
            Some(t) if t == "count" || t == "count_based" || t == "count-based" => {
                Window::Count(size)
            }
            Some(t) if t == "time" || t == "time_based" || t == "time-based" => Window::Time(size),
            Some(t) => {
                return Err(ArgError::for_arg(
                    "slidingWindowType",
                    format!("`{t}` is not a window type; write `count` or `time`"),
                ))
            }
        };
        let percent = |arg: &str, default: f64| -> Result<f64, ArgError> {
            let v = args
                .parse::<f64>(arg, "a percentage from 0 to 100")?
                .unwrap_or(default);
            if (0.0..=100.0).contains(&v) && v > 0.0 {
                Ok(v)
            } else {
                Err(ArgError::for_arg(
                    arg,
                    format!("must be more than 0 and at most 100, found {v}"),
                ))
            }
        };
        let settings = Settings {
            window,
            minimum_calls: args
                .parse::<u32>("minimumNumberOfCalls", "a whole number")?
                .unwrap_or(100),
            failure_rate_threshold: percent("failureRateThreshold", 50.0)?,
            wait_in_open: args
                .duration("waitDurationInOpenState")?
                .unwrap_or(Duration::from_secs(60)),
            half_open_calls: args
                .parse::<u32>("permittedNumberOfCallsInHalfOpenState", "a whole number")?
                .unwrap_or(10)
                .max(1),
            slow_call_duration: args.duration("slowCallDurationThreshold")?,
            slow_call_rate_threshold: percent("slowCallRateThreshold", 100.0)?,
        };
        let time_limit = args.duration("timeLimit")?;
        let max_replay_body = args.size("maxReplayBody")?.unwrap_or(64 * 1024);
        let breaker = ctx.named_state(&name, args, || Breaker::new(&name, settings));
        Ok(Filter::Layer(Arc::new(CircuitBreaker {
            inner: Arc::new(Inner {
                breaker,
                fallback,
                status_codes,
                time_limit,
                max_replay_body,
            }),
        })))
    }
}

/// The layer: asks the breaker before each call and tells it how the call went.
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

struct Inner {
    breaker: Arc<Breaker>,
    fallback: Option<HttpService>,
    status_codes: Vec<StatusCode>,
    time_limit: Option<Duration>,
    max_replay_body: usize,
}

impl LayerFilter for CircuitBreaker {
    fn layer(&self, next: HttpService) -> HttpService {
        HttpService::erased(Guarded {
            inner: self.inner.clone(),
            next,
        })
    }
}

/// The breaker around the rest of the chain.
struct Guarded {
    inner: Arc<Inner>,
    next: HttpService,
}

impl Erased for Guarded {
    // Without a fallback the exchange goes straight on to the rest of the chain, and this
    // layer's own future is only [`Recorded`]: a few words, where an `async` block would hold
    // room for the whole exchange and copy it on every request.
    fn call(&self, exchange: Exchange) -> BoxFuture {
        if let Some(fallback) = &self.inner.fallback {
            let (inner, next, fallback) = (self.inner.clone(), self.next.clone(), fallback.clone());
            return Box::pin(
                async move { inner.run_with_fallback(exchange, &next, &fallback).await },
            );
        }
        match self.inner.acquire() {
            Some(permit) => Box::pin(self.inner.call(permit, exchange, &self.next)),
            None => Box::pin(std::future::ready(exchange.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Upstream service is temporarily unavailable",
            ))),
        }
    }
}

/// A permit from the breaker, until its call's outcome is recorded; given back unreported if
/// dropped first (the client went away while its body was read, or mid-call).
struct Held {
    inner: Arc<Inner>,
    permit: Option<Permit>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.inner.breaker.cancel(permit);
        }
    }
}

/// A call the breaker permitted: tells the breaker how it went when it ends.
struct Recorded {
    held: Held,
    /// When the call started; read only when a slow-call threshold needs it.
    started: Option<Instant>,
    call: BoxFuture,
}

impl Future for Recorded {
    type Output = Response<Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let response = ready!(self.call.as_mut().poll(cx));
        let this = &mut *self;
        let held = &mut this.held;
        if let Some(permit) = held.permit.take() {
            let breaker = &held.inner.breaker;
            breaker.record(
                permit,
                breaker.outcome(held.inner.failed(&response), elapsed(this.started)),
            );
        }
        Poll::Ready(response)
    }
}

/// Why the fallback is used, in SCG's exception names.
fn reason(failure: Option<UpstreamFailure>, status: StatusCode) -> (&'static str, String) {
    match failure {
        Some(UpstreamFailure::Timeout) => (
            "java.util.concurrent.TimeoutException",
            "the upstream timed out".into(),
        ),
        Some(UpstreamFailure::Connect) => (
            "java.net.ConnectException",
            "the upstream could not be reached".into(),
        ),
        Some(UpstreamFailure::Closed) => (
            "reactor.netty.http.client.PrematureCloseException",
            "the upstream closed the connection before responding".into(),
        ),
        None => (
            "org.springframework.cloud.gateway.support.CircuitBreakerStatusCodeException",
            format!("the upstream answered {}", status.as_u16()),
        ),
    }
}

impl Inner {
    /// A permit for one call, unless the breaker is open (or half-open with no probe left).
    fn acquire(self: &Arc<Self>) -> Option<Held> {
        let permit = self.breaker.try_acquire()?;
        Some(Held {
            inner: self.clone(),
            permit: Some(permit),
        })
    }

    /// Sends `exchange` on under the permit `held`.
    fn call(&self, held: Held, exchange: Exchange, next: &HttpService) -> Recorded {
        // Read the clock only when a slow-call threshold needs the call's duration.
        let started = self.breaker.times_calls().then(Instant::now);
        Recorded {
            held,
            started,
            call: next.call_within(exchange, self.time_limit, "the time limit of "),
        }
    }

    /// Whether `response` counts as a failed call.
    fn failed(&self, response: &Response<Body>) -> bool {
        response.extensions().get::<UpstreamFailure>().is_some()
            || self.status_codes.contains(&response.status())
    }

    /// A breaker with a fallback: the request is kept (whole when its body is small enough,
    /// else its head) so that it can be sent to the fallback when the call fails.
    async fn run_with_fallback(
        self: &Arc<Self>,
        mut exchange: Exchange,
        next: &HttpService,
        fallback: &HttpService,
    ) -> Response<Body> {
        // Held across the body read too: if the client goes away meanwhile, it goes back.
        let Some(held) = self.acquire() else {
            let message = format!("circuit breaker `{}` is open", self.breaker.name());
            return Self::to_fallback(
                fallback,
                exchange,
                "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
                &message,
            )
            .await;
        };
        let (call, template, body) = match read_replayable(
            std::mem::take(exchange.request.body_mut()),
            self.max_replay_body,
        )
        .await
        {
            Replay::Kept(body) => {
                // The call takes the request itself, with its extensions (a WebSocket's means
                // to switch among them); the fallback gets a copy.
                let template = exchange.replay(body.clone());
                if !body.is_empty() {
                    *exchange.request.body_mut() = Body::full(body.clone());
                }
                (exchange, template, body)
            }
            Replay::TooLarge(body) => {
                // The body is streamed to the upstream once; a fallback gets the head.
                let mut head = exchange.replay(bytes::Bytes::new());
                let headers = head.request.headers_mut();
                headers.remove(http::header::CONTENT_LENGTH);
                headers.remove(http::header::TRANSFER_ENCODING);
                *exchange.request.body_mut() = body;
                (exchange, head, bytes::Bytes::new())
            }
            Replay::Failed => {
                return exchange.error(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                );
            }
        };
        let response = self.call(held, call, next).await;
        if !self.failed(&response) {
            return response;
        }
        let failure = response.extensions().get::<UpstreamFailure>().copied();
        let (kind, message) = reason(failure, response.status());
        drop(response);
        Self::to_fallback(fallback, template.replay(body), kind, &message).await
    }

    async fn to_fallback(
        fallback: &HttpService,
        mut exchange: Exchange,
        kind: &str,
        message: &str,
    ) -> Response<Body> {
        let headers = exchange.request.headers_mut();
        headers.insert(
            "execution-exception-type",
            HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("unknown")),
        );
        if let Ok(value) = HeaderValue::from_str(message) {
            headers.insert("execution-exception-message", value);
        }
        fallback.handle(exchange).await
    }
}

/// How long a timed call took; zero for one that was not timed.
fn elapsed(started: Option<Instant>) -> Duration {
    started.map_or(Duration::ZERO, |at| at.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// A request body that never arrives.
    struct Stalled;

    impl http_body::Body for Stalled {
        type Data = bytes::Bytes;
        type Error = crate::BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, crate::BoxError>>> {
            Poll::Pending
        }
    }

    fn answer(status: StatusCode) -> HttpService {
        HttpService::from_fn(move |_: Exchange| async move {
            let mut response = Response::new(Body::Empty);
            *response.status_mut() = status;
            response
        })
    }

    #[test]
    fn a_half_open_probe_comes_back_when_the_client_leaves_mid_body() {
        let breaker = Arc::new(Breaker::new(
            "t",
            Settings {
                window: Window::Count(10),
                minimum_calls: 1,
                wait_in_open: Duration::ZERO,
                half_open_calls: 1,
                ..Settings::default()
            },
        ));
        // One failed call opens it; with no wait, the next call is the one half-open probe.
        let permit = breaker.try_acquire().unwrap();
        breaker.record(permit, breaker.outcome(true, Duration::ZERO));
        let inner = Arc::new(Inner {
            breaker: breaker.clone(),
            fallback: Some(answer(StatusCode::OK)),
            status_codes: Vec::new(),
            time_limit: None,
            max_replay_body: 1024,
        });
        let request = http::Request::new(Body::boxed(Stalled));
        let exchange = Exchange::internal(request, "r".into());
        let (next, fallback) = (answer(StatusCode::OK), answer(StatusCode::OK));
        let mut call = Box::pin(inner.run_with_fallback(exchange, &next, &fallback));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(call.as_mut().poll(&mut cx).is_pending());
        drop(call);
        assert!(
            breaker.try_acquire().is_some(),
            "the probe was not given back"
        );
    }
}
