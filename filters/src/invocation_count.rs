//! `InvocationCount`: adds each function's `invocationCount` to the provider's answer to
//! `GET /system/functions`, from weir's own counters.
//!
//! ```yaml
//! - InvocationCount=openfaas-fn      # namespace: for functions whose entry has none
//! ```
//! The count is the number of finished invocations of `name.namespace` that a
//! `FunctionMetrics` filter recorded in this process (`gateway_function_invocation_total`
//! summed over codes). Unlike the OpenFaaS gateway, which asks Prometheus (and fails when it is
//! down), this never depends on a Prometheus server. Every other field of the provider's
//! answer is kept as it was; an answer that is not a JSON list, or not a 200, is passed on
//! untouched. Requests other than GET pass through.

use std::sync::Arc;

use http::{header, Method, StatusCode};
use serde_json::Value;

use crate::faas::{metric_name, MAX_ANSWER};
use crate::function_metrics::{FaasMetrics, METRICS_STATE};
use crate::{
    read_replayable, ArgError, Args, Body, Exchange, Filter, FilterContext, FilterFactory,
    HttpService, LayerFilter, Replay, Shortcut,
};

/// Builds [`InvocationCount`].
pub struct InvocationCountFactory;

impl FilterFactory for InvocationCountFactory {
    fn name(&self) -> &'static str {
        "InvocationCount"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["namespace"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        Ok(Filter::Layer(Arc::new(InvocationCount {
            metrics: ctx.global_state(METRICS_STATE, FaasMetrics::default),
            namespace: Arc::from(args.get("namespace").unwrap_or_default().trim()),
        })))
    }
}

/// The layer.
pub struct InvocationCount {
    metrics: Arc<FaasMetrics>,
    namespace: Arc<str>,
}

/// Adds `invocationCount` to every entry of a function list; `None` when `body` is not one.
pub fn enrich(body: &[u8], default_ns: &str, count: impl Fn(&str) -> u64) -> Option<Vec<u8>> {
    let mut list: Vec<Value> = serde_json::from_slice(body).ok()?;
    for function in &mut list {
        let Some(object) = function.as_object_mut() else {
            continue;
        };
        let Some(name) = object.get("name").and_then(Value::as_str) else {
            continue;
        };
        let ns = object
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(default_ns);
        let n = count(&metric_name(name, ns));
        object.insert("invocationCount".into(), Value::from(n));
    }
    serde_json::to_vec(&list).ok()
}

impl LayerFilter for InvocationCount {
    fn layer(&self, inner: HttpService) -> HttpService {
        let metrics = self.metrics.clone();
        let namespace = self.namespace.clone();
        HttpService::from_fn(move |exchange: Exchange| {
            let inner = inner.clone();
            let metrics = metrics.clone();
            let namespace = namespace.clone();
            async move {
                if exchange.request.method() != Method::GET {
                    return inner.handle(exchange).await;
                }
                let mut exchange = exchange;
                // The list is read and rewritten here: ask the provider for it uncompressed.
                exchange
                    .request
                    .headers_mut()
                    .remove(header::ACCEPT_ENCODING);
                let route = exchange.route_id.clone();
                let (path, request_id) = (exchange.path().to_string(), exchange.request_id);
                let response = inner.handle(exchange).await;
                if response.status() != StatusCode::OK {
                    return response;
                }
                let (mut parts, body) = response.into_parts();
                match read_replayable(body, MAX_ANSWER).await {
                    Replay::Kept(bytes) => {
                        let body = match enrich(&bytes, &namespace, |f| metrics.invocations(f)) {
                            Some(enriched) => {
                                parts.headers.remove(header::CONTENT_LENGTH);
                                parts.headers.insert(
                                    header::CONTENT_TYPE,
                                    http::HeaderValue::from_static("application/json"),
                                );
                                Body::full(enriched)
                            }
                            None => Body::full(bytes),
                        };
                        http::Response::from_parts(parts, body)
                    }
                    Replay::TooLarge(body) => http::Response::from_parts(parts, body),
                    Replay::Failed => crate::error_response(
                        StatusCode::BAD_GATEWAY,
                        "the provider's function list broke off",
                        &path,
                        Some(&route),
                        request_id,
                    ),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::enrich;

    #[test]
    fn adds_counts_and_keeps_other_fields() {
        let body = br#"[{"name":"a","namespace":"fn","image":"i","extra":1},{"name":"b"},3]"#;
        let out = enrich(body, "dflt", |f| match f {
            "a.fn" => 7,
            "b.dflt" => 2,
            _ => 0,
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["invocationCount"], 7);
        assert_eq!(v[0]["extra"], 1);
        assert_eq!(v[1]["invocationCount"], 2);
        assert_eq!(v[2], 3);
        assert!(enrich(b"{\"not\":\"a list\"}", "", |_| 0).is_none());
    }
}
