//! `ValidateScaleRequest`: checks the body of an OpenFaaS scale request
//! (`POST /system/scale-function/{name}`) before it goes to the provider.
//!
//! ```yaml
//! - ValidateScaleRequest
//! ```
//! The body must be a JSON object; `replicas`, when present, a whole number of zero or more;
//! `serviceName` and `namespace`, when present, strings. Otherwise the request is answered 400
//! and the provider never sees it. A valid body is forwarded byte for byte: the replica count
//! is not clamped (the OpenFaaS CE gateway clamps it to 1..5, so it cannot scale to zero).

use std::sync::Arc;

use http::StatusCode;
use serde_json::Value;

use crate::{
    read_replayable, ArgError, Args, Body, Exchange, Filter, FilterContext, FilterFactory,
    HttpService, LayerFilter, Replay, Shortcut,
};

/// The largest scale request read.
const MAX_BODY: usize = 64 * 1024;

/// Builds [`ValidateScaleRequest`].
pub struct ValidateScaleRequestFactory;

impl FilterFactory for ValidateScaleRequestFactory {
    fn name(&self) -> &'static str {
        "ValidateScaleRequest"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&[])
    }

    fn build(&self, _: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        Ok(Filter::Layer(Arc::new(ValidateScaleRequest)))
    }
}

/// What is wrong with a scale request, if anything.
pub fn problem(body: &[u8]) -> Option<String> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(format!("the body is not valid JSON: {e}")),
    };
    let Some(object) = value.as_object() else {
        return Some(
            "the body must be a JSON object such as {\"serviceName\":\"f\",\"replicas\":2}".into(),
        );
    };
    if let Some(replicas) = object.get("replicas") {
        if replicas.as_u64().is_none() {
            return Some(format!(
                "`replicas` must be a whole number of zero or more, found {replicas}"
            ));
        }
    }
    for key in ["serviceName", "namespace"] {
        if let Some(v) = object.get(key) {
            if !v.is_string() {
                return Some(format!("`{key}` must be a string, found {v}"));
            }
        }
    }
    None
}

/// The layer.
pub struct ValidateScaleRequest;

impl LayerFilter for ValidateScaleRequest {
    fn layer(&self, inner: HttpService) -> HttpService {
        HttpService::from_fn(move |mut exchange: Exchange| {
            let inner = inner.clone();
            async move {
                let body = std::mem::take(exchange.request.body_mut());
                match read_replayable(body, MAX_BODY).await {
                    Replay::Kept(bytes) => match problem(&bytes) {
                        Some(message) => exchange.error(StatusCode::BAD_REQUEST, &message),
                        None => {
                            *exchange.request.body_mut() = Body::full(bytes);
                            inner.handle(exchange).await
                        }
                    },
                    Replay::TooLarge(_) => exchange.error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "a scale request is at most 64 KiB",
                    ),
                    Replay::Failed => exchange.error(
                        StatusCode::BAD_REQUEST,
                        "the request body could not be read",
                    ),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::problem;

    #[test]
    fn scale_requests() {
        assert_eq!(problem(br#"{"serviceName":"f","replicas":0}"#), None);
        assert_eq!(problem(br#"{"serviceName":"f","replicas":50}"#), None);
        assert_eq!(problem(b"{}"), None);
        assert!(problem(b"not json").unwrap().contains("not valid JSON"));
        assert!(problem(b"[1]").is_some());
        assert!(problem(br#"{"replicas":-1}"#).is_some());
        assert!(problem(br#"{"replicas":"2"}"#).is_some());
        assert!(problem(br#"{"replicas":1.5}"#).is_some());
        assert!(problem(br#"{"serviceName":3}"#).is_some());
    }
}
