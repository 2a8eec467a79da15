use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use tower::{Service, ServiceExt};

use crate::{Body, Exchange};

/// The future of an erased service: a response, boxed.
pub type BoxFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// A service behind [`HttpService`]: any tower service, a plain async function, or a type of
/// this crate that implements it directly (with one allocation per call, the boxed future).
pub(crate) trait Erased: Send + Sync {
    fn call(&self, exchange: Exchange) -> BoxFuture;

    /// Sends `exchange` on without taking it, when this service can: the future returned
    /// needs nothing more of it. `None` when it needs the exchange itself ([`Erased::call`]).
    fn call_borrowed(&self, _exchange: &Exchange) -> Option<BoxFuture> {
        None
    }
}

impl<S> Erased for S
where
    S: Service<Exchange, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    fn call(&self, exchange: Exchange) -> BoxFuture {
        let service = self.clone();
        Box::pin(async move {
            match service.oneshot(exchange).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    }
}

struct FnService<F>(F);

/// A function for exchanges taken and one for exchanges lent, each returning its future boxed.
struct LendingFnService<F, G> {
    owned: F,
    borrowed: G,
}

impl<F, G> Erased for LendingFnService<F, G>
where
    F: Fn(Exchange) -> BoxFuture + Send + Sync,
    G: Fn(&Exchange) -> Option<BoxFuture> + Send + Sync,
{
    fn call(&self, exchange: Exchange) -> BoxFuture {
        (self.owned)(exchange)
    }

    fn call_borrowed(&self, exchange: &Exchange) -> Option<BoxFuture> {
        (self.borrowed)(exchange)
    }
}

impl<F, Fut> Erased for FnService<F>
where
    F: Fn(Exchange) -> Fut + Send + Sync,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    fn call(&self, exchange: Exchange) -> BoxFuture {
        Box::pin((self.0)(exchange))
    }
}

/// A route's chain, or any part of it: a type-erased tower service from [`Exchange`] to a
/// response.
///
/// Cloning is an `Arc` clone, so one compiled chain serves every request concurrently. It is
/// always ready. Errors are responses (a 502 is a response), so the error type is
/// [`Infallible`].
#[derive(Clone)]
pub struct HttpService(Arc<dyn Erased>);

impl HttpService {
    /// Erases a tower service. Cloning `service` should be cheap (a few `Arc`s): it is cloned
    /// once per request.
    pub fn new<S>(service: S) -> Self
    where
        S: Service<Exchange, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send,
    {
        Self(Arc::new(service))
    }

    /// A service of this crate that implements [`Erased`] itself.
    pub(crate) fn erased(service: impl Erased + 'static) -> Self {
        Self(Arc::new(service))
    }

    /// A service from an async function, for layers written as plain code.
    pub fn from_fn<F, Fut>(f: F) -> Self
    where
        F: Fn(Exchange) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        Self(Arc::new(FnService(f)))
    }

    /// A service from two functions: `owned` takes the exchange; `borrowed` sends a lent one
    /// when it can, returning a future that needs nothing more of the exchange, and returns
    /// `None` when it cannot. A layer that would otherwise copy an exchange it keeps (Retry)
    /// lends it instead. Both return their future boxed: a service that does its work before
    /// its first await boxes only what it awaits. Work done before the future is returned
    /// happens when the chain is called; the future may still be dropped unpolled (the client
    /// gone), so anything taken for it (a pooled connection, a permit) must be given back
    /// when it is dropped.
    pub fn from_fns<F, G>(owned: F, borrowed: G) -> Self
    where
        F: Fn(Exchange) -> BoxFuture + Send + Sync + 'static,
        G: Fn(&Exchange) -> Option<BoxFuture> + Send + Sync + 'static,
    {
        Self(Arc::new(LendingFnService { owned, borrowed }))
    }

    /// Sends a lent exchange on, if the service can ([`HttpService::from_fns`]).
    pub(crate) fn call_borrowed(&self, exchange: &Exchange) -> Option<BoxFuture> {
        self.0.call_borrowed(exchange)
    }

    /// Wraps `inner` in a tower layer and erases the result.
    pub fn layered<L>(layer: &L, inner: HttpService) -> Self
    where
        L: tower::Layer<HttpService>,
        L::Service: Service<Exchange, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<Exchange>>::Future: Send,
    {
        Self::new(layer.layer(inner))
    }

    /// Handles one exchange, but past `limit` gives up: the call is dropped (which cancels the
    /// upstream request) and answered 504, marked [`crate::UpstreamFailure::Timeout`]. The
    /// message reads "the upstream did not respond within {what}N ms".
    ///
    /// Without a limit this is [`HttpService::handle`]; with one, the timed call is a future of
    /// its own, boxed, so that callers' futures stay small either way.
    pub fn handle_within(
        &self,
        exchange: Exchange,
        limit: Option<std::time::Duration>,
        what: &'static str,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        self.call_within(exchange, limit, what)
    }

    /// [`HttpService::handle_within`] as the boxed future it is, for this crate's hand-written
    /// futures to hold.
    pub(crate) fn call_within(
        &self,
        exchange: Exchange,
        limit: Option<std::time::Duration>,
        what: &'static str,
    ) -> BoxFuture {
        match limit {
            None => self.0.call(exchange),
            Some(limit) => Box::pin(self.clone().timed(exchange, limit, what)),
        }
    }

    async fn timed(
        self,
        mut exchange: Exchange,
        limit: std::time::Duration,
        what: &'static str,
    ) -> Response<Body> {
        let (path, route, id) = (
            exchange.path().to_string(),
            exchange.route_id.clone(),
            exchange.request_id,
        );
        let cut_off = crate::CutOff::within(exchange.cut_off.take());
        exchange.cut_off = Some(cut_off.clone());
        // Pinned here, the call outlives the timeout: it is dropped (and the upstream request
        // cancelled) only after the flag is raised.
        let call = self.handle(exchange);
        tokio::pin!(call);
        match tokio::time::timeout(limit, call.as_mut()).await {
            Ok(response) => response,
            Err(_) => {
                cut_off.raise();
                let message = format!(
                    "the upstream did not respond within {what}{} ms",
                    limit.as_millis()
                );
                let mut error = crate::error_response(
                    http::StatusCode::GATEWAY_TIMEOUT,
                    &message,
                    &path,
                    Some(&route),
                    id,
                );
                error
                    .extensions_mut()
                    .insert(crate::UpstreamFailure::Timeout);
                error
            }
        }
    }

    /// [`HttpService::handle`] as the boxed future it is, for a layer whose paths return
    /// different futures (boxing each, through [`HttpService::from_fns`]).
    pub(crate) fn call_boxed(&self, exchange: Exchange) -> BoxFuture {
        self.0.call(exchange)
    }

    /// Handles one exchange.
    pub fn handle(
        &self,
        exchange: Exchange,
    ) -> impl Future<Output = Response<Body>> + Send + 'static {
        self.0.call(exchange)
    }
}

impl Service<Exchange> for HttpService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, exchange: Exchange) -> Self::Future {
        ResponseFuture(self.0.call(exchange))
    }
}

/// The future of [`HttpService`] as a tower service.
pub struct ResponseFuture(BoxFuture);

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx).map(Ok)
    }
}
