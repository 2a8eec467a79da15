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
    let edits_response = filters.iter().any(|f| f.edits_response());
    HttpService::erased(EditChain {
        filters,
        inner,
        keep_vars,
        edits_response,
    })
}

struct EditChain {
    filters: Arc<[Arc<dyn EditFilter>]>,
    inner: HttpService,
    keep_vars: bool,
    /// Whether any filter of the run has a response half to run.
    edits_response: bool,
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
        if !self.edits_response {
            return self.inner.call_within(exchange, None, "");
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Request};

    /// Marks the request, or the response, with its name.
    struct Mark {
        name: &'static str,
        on_response: bool,
    }

    impl EditFilter for Mark {
        fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
            if !self.on_response {
                let headers = exchange.request.headers_mut();
                headers.append("x-in", HeaderValue::from_static(self.name));
            }
            Ok(())
        }

        fn response(&self, response: &mut Response<Body>, _: &Captures) {
            if self.on_response {
                let headers = response.headers_mut();
                headers.append("x-out", HeaderValue::from_static(self.name));
            }
        }

        fn edits_response(&self) -> bool {
            self.on_response
        }
    }

    fn mark(name: &'static str, on_response: bool) -> Filter {
        Filter::Edit(Arc::new(Mark { name, on_response }))
    }

    /// The forwarder's stand-in: echoes the request's `x-in` values as `x-seen`.
    fn echo() -> HttpService {
        HttpService::from_fn(|exchange: Exchange| async move {
            let mut response = Response::new(Body::Empty);
            for value in exchange.request.headers().get_all("x-in") {
                response.headers_mut().append("x-seen", value.clone());
            }
            response
        })
    }

    async fn run(filters: &[Filter]) -> Response<Body> {
        let exchange = Exchange::internal(Request::new(Body::Empty), "r".into());
        chain(filters, echo()).handle(exchange).await
    }

    fn values(response: &Response<Body>, name: &str) -> Vec<String> {
        let all = response.headers().get_all(name);
        all.iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn request_only_runs_pass_straight_on_and_mixed_runs_keep_both_halves() {
        let only = run(&[mark("a", false), mark("b", false)]).await;
        assert_eq!(values(&only, "x-seen"), ["a", "b"]);
        assert!(values(&only, "x-out").is_empty());

        let mixed = run(&[mark("a", false), mark("b", true), mark("c", false)]).await;
        assert_eq!(values(&mixed, "x-seen"), ["a", "c"]);
        assert_eq!(values(&mixed, "x-out"), ["b"]);
    }
}
