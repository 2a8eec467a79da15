//! How a route's filters wrap the forwarder.
//!
//! ```text
//! request  ─► f1.request ─► f2.request ─► ... ─► forwarder ─► upstream
//! response ◄─ f1.response ◄─ f2.response ◄─ ... ◄─ forwarder ◄─┘
//! ```
//! Filters run in their configured order on the way in and in reverse on the way out. A
//! filter that answers the request itself skips the later filters and the upstream; its
//! response still passes back through the filters before it. Runs of consecutive
//! [`EditFilter`]s share one layer; each [`LayerFilter`] wraps everything after it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use pin_project::pin_project;
use tower::Service;

use crate::service::ResponseFuture;
use crate::{Body, Captures, EditFilter, Exchange, Filter, HttpService};

/// Wraps `inner` (the forwarder) in `filters`, the first filter outermost.
pub fn chain(filters: &[Filter], inner: HttpService) -> HttpService {
    let mut service = inner;
    let mut run: Vec<Arc<dyn EditFilter>> = Vec::new();
    for filter in filters.iter().rev() {
        match filter {
            Filter::Edit(edit) => run.push(edit.clone()),
            Filter::Layer(layer) => {
                service = edits(&mut run, service);
                service = layer.layer(service);
            }
        }
    }
    edits(&mut run, service)
}

/// Wraps `inner` in the edit filters collected (in reverse) in `run`, and empties `run`.
fn edits(run: &mut Vec<Arc<dyn EditFilter>>, inner: HttpService) -> HttpService {
    if run.is_empty() {
        return inner;
    }
    run.reverse();
    let filters: Arc<[Arc<dyn EditFilter>]> = std::mem::take(run).into();
    let keep_vars = filters.iter().any(|f| f.needs_vars_on_response());
    HttpService::new(EditChain {
        filters,
        inner,
        keep_vars,
    })
}

#[derive(Clone)]
struct EditChain {
    filters: Arc<[Arc<dyn EditFilter>]>,
    inner: HttpService,
    keep_vars: bool,
}

impl Service<Exchange> for EditChain {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = EditFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut exchange: Exchange) -> EditFuture {
        for (i, filter) in self.filters.iter().enumerate() {
            if let Err(mut response) = filter.request(&mut exchange) {
                for earlier in self.filters[..i].iter().rev() {
                    earlier.response(&mut response, &exchange.vars);
                }
                return EditFuture {
                    state: State::Answered(Some(response)),
                    filters: self.filters.clone(),
                    vars: Captures::default(),
                };
            }
        }
        let vars = if self.keep_vars {
            exchange.vars.clone()
        } else {
            Captures::default()
        };
        EditFuture {
            state: State::Inner(self.inner.call(exchange)),
            filters: self.filters.clone(),
            vars,
        }
    }
}

#[pin_project(project = StateProj)]
enum State {
    Answered(Option<Response<Body>>),
    Inner(#[pin] ResponseFuture),
}

#[pin_project]
struct EditFuture {
    #[pin]
    state: State,
    filters: Arc<[Arc<dyn EditFilter>]>,
    vars: Captures,
}

impl Future for EditFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProj::Answered(response) => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            StateProj::Inner(fut) => {
                let Ok(mut response) = std::task::ready!(fut.poll(cx));
                for filter in this.filters.iter().rev() {
                    filter.response(&mut response, this.vars);
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}
