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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::service::{BoxFuture, Erased};
use crate::{Body, Captures, EditFilter, Exchange, Filter, HttpService};
use http::Response;
use pin_project::pin_project;

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
    HttpService::erased(EditChain {
        filters,
        inner,
        keep_vars,
    })
}

struct EditChain {
    filters: Arc<[Arc<dyn EditFilter>]>,
    inner: HttpService,
    keep_vars: bool,
}

impl Erased for EditChain {
    fn call(&self, mut exchange: Exchange) -> BoxFuture {
        for (i, filter) in self.filters.iter().enumerate() {
            if let Err(mut response) = filter.request(&mut exchange) {
                for earlier in self.filters[..i].iter().rev() {
                    earlier.response(&mut response, &exchange.vars);
                }
                return Box::pin(std::future::ready(response));
            }
        }
        let vars = if self.keep_vars {
            exchange.vars.clone()
        } else {
            Captures::default()
        };
        Box::pin(EditFuture {
            inner: self.inner.handle(exchange),
            filters: self.filters.clone(),
            vars,
        })
    }
}

/// The rest of the chain's future, then the edit filters' response halves.
#[pin_project]
struct EditFuture<F> {
    #[pin]
    inner: F,
    filters: Arc<[Arc<dyn EditFilter>]>,
    vars: Captures,
}

impl<F: Future<Output = Response<Body>>> Future for EditFuture<F> {
    type Output = Response<Body>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx));
        for filter in this.filters.iter().rev() {
            filter.response(&mut response, this.vars);
        }
        Poll::Ready(response)
    }
}
