//! `AlertScaling`: scales functions from AlertManager's webhook, as OpenFaaS's
//! `POST /system/alert` does.
//!
//! ```yaml
//! - name: AlertScaling
//!   args:
//!     provider: http://127.0.0.1:8081/
//!     namespace: openfaas-fn                # for names without a dot
//!     basic-auth: true                      # send the credentials to the provider
//!     user-file: /run/secrets/basic-auth-user
//!     password-file: /run/secrets/basic-auth-password
//! ```
//! The body is AlertManager's webhook JSON. Each alert with a `function_name` label scales that
//! function, read from the provider with its labels `com.openfaas.scale.min` (default 1),
//! `com.openfaas.scale.max` (default 20) and `com.openfaas.scale.factor` (default 20, a
//! percentage from 0 to 100):
//! - firing: up by a step of ceil(max × factor / 100), to at most max (never down);
//! - resolved: back to min;
//! - factor 0: no scaling at all.
//!
//! There is no five-replica cap (the OpenFaaS CE gateway has one). An unknown function is
//! skipped. The answer is 200 with what was done; 400 for a body that is not a webhook; 500
//! listing every provider error.

use std::sync::Arc;

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::faas::{metric_name, split_name, Provider, Status};
use crate::{
    error_response, json_response, read_replayable, ArgError, Args, Body, Exchange, Filter,
    FilterContext, FilterFactory, HttpService, LayerFilter, Replay, Shortcut,
};

/// The largest webhook body read.
const MAX_BODY: usize = 1 << 20;

/// Default `com.openfaas.scale.min`.
pub const DEFAULT_MIN: u64 = 1;
/// Default `com.openfaas.scale.max`.
pub const DEFAULT_MAX: u64 = 20;
/// Default `com.openfaas.scale.factor`.
pub const DEFAULT_FACTOR: u64 = 20;

/// The replicas a function should have after an alert, or `None` for no change.
/// `firing` is false for a resolved alert.
pub fn target_replicas(firing: bool, current: u64, min: u64, max: u64, factor: u64) -> Option<u64> {
    if factor == 0 {
        return None;
    }
    let target = if firing {
        let step = (max.saturating_mul(factor)).div_ceil(100);
        current.saturating_add(step).min(max).max(current)
    } else {
        min
    };
    (target != current).then_some(target)
}

/// Builds [`AlertScaling`].
pub struct AlertScalingFactory;

impl FilterFactory for AlertScalingFactory {
    fn name(&self) -> &'static str {
        "AlertScaling"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["provider", "namespace"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        Ok(Filter::Layer(Arc::new(AlertScaling {
            provider: Arc::new(Provider::from_args(args, ctx)?),
        })))
    }
}

/// The layer: answers without calling the rest of the chain.
pub struct AlertScaling {
    provider: Arc<Provider>,
}

async fn handle(provider: &Provider, mut exchange: Exchange) -> Response<Body> {
    let body = std::mem::take(exchange.request.body_mut());
    let bytes = match read_replayable(body, MAX_BODY).await {
        Replay::Kept(bytes) => bytes,
        Replay::TooLarge(_) => {
            return exchange.error(StatusCode::PAYLOAD_TOO_LARGE, "an alert is at most 1 MiB")
        }
        Replay::Failed => {
            return exchange.error(StatusCode::BAD_REQUEST, "the alert could not be read")
        }
    };
    let webhook: Value = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => {
            return exchange.error(
                StatusCode::BAD_REQUEST,
                "Unable to parse alert, bad format: expected AlertManager's webhook JSON",
            )
        }
    };
    let overall = webhook.get("status").and_then(Value::as_str).unwrap_or("");
    let alerts = webhook
        .get("alerts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (mut scaled, mut skipped, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for alert in &alerts {
        let Some(full) = alert
            .pointer("/labels/function_name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        let status = alert
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or(overall);
        let firing = status.eq_ignore_ascii_case("firing");
        let (name, ns) = split_name(full, &provider.namespace);
        let key = metric_name(name, ns);
        let current = match provider.function(name, ns).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                skipped.push(json!({"function": key, "reason": "not found"}));
                continue;
            }
            Err(e) => {
                tracing::warn!(function = %key, "[Alert] {e}");
                errors.push(format!("{key}: {}", e.short()));
                continue;
            }
        };
        let (min, max, factor) = limits(&current);
        match target_replicas(firing, current.replicas, min, max, factor) {
            None => skipped.push(json!({
                "function": key,
                "reason": if factor == 0 { "scaling factor 0" } else { "already at its target" },
                "replicas": current.replicas,
            })),
            Some(to) => match provider.scale(name, ns, to).await {
                Ok(()) => {
                    tracing::info!(function = %key, from = current.replicas, to, status, "[Alert] scaled");
                    scaled.push(json!({"function": key, "from": current.replicas, "to": to}));
                }
                Err(e) => {
                    tracing::warn!(function = %key, "[Alert] scaling to {to}: {e}");
                    errors.push(format!("{key}: scaling to {to} failed: {}", e.short()));
                }
            },
        }
    }
    if !errors.is_empty() {
        let message = errors
            .iter()
            .enumerate()
            .map(|(i, e)| format!("[{i}] {e}"))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::warn!("[Alert] {message}");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &message,
            exchange.path(),
            Some(&exchange.route_id),
            exchange.request_id,
        );
    }
    json_response(
        StatusCode::OK,
        &json!({"scaled": scaled, "skipped": skipped}),
    )
}

/// A function's min, max and factor labels, with OpenFaaS's meaning and weir's defaults.
fn limits(status: &Status) -> (u64, u64, u64) {
    let min = status.label_u64("com.openfaas.scale.min", DEFAULT_MIN);
    let max = status
        .label_u64("com.openfaas.scale.max", DEFAULT_MAX)
        .max(min);
    let factor = status.label_u64("com.openfaas.scale.factor", DEFAULT_FACTOR);
    let factor = if factor > 100 { DEFAULT_FACTOR } else { factor };
    (min, max, factor)
}

impl LayerFilter for AlertScaling {
    fn layer(&self, _inner: HttpService) -> HttpService {
        let provider = self.provider.clone();
        HttpService::from_fn(move |exchange: Exchange| {
            let provider = provider.clone();
            async move { handle(&provider, exchange).await }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::target_replicas;

    #[test]
    fn the_formula_and_its_edges() {
        // step = ceil(20 * 20 / 100) = 4
        assert_eq!(target_replicas(true, 1, 1, 20, 20), Some(5));
        assert_eq!(target_replicas(true, 18, 1, 20, 20), Some(20));
        assert_eq!(target_replicas(true, 20, 1, 20, 20), None);
        assert_eq!(
            target_replicas(true, 25, 1, 20, 20),
            None,
            "firing never scales down"
        );
        // ceil: 5 * 10 / 100 = 0.5 -> 1
        assert_eq!(target_replicas(true, 1, 1, 5, 10), Some(2));
        assert_eq!(target_replicas(true, 1, 1, 3, 1), Some(2));
        assert_eq!(target_replicas(true, 1, 1, 100, 100), Some(100));
        // no cap at five
        assert_eq!(target_replicas(true, 5, 1, 50, 20), Some(15));
        assert_eq!(target_replicas(false, 8, 1, 20, 20), Some(1));
        assert_eq!(target_replicas(false, 1, 1, 20, 20), None);
        assert_eq!(target_replicas(false, 8, 0, 20, 20), Some(0));
        assert_eq!(target_replicas(true, 1, 1, 20, 0), None);
        assert_eq!(target_replicas(false, 8, 1, 20, 0), None);
        assert_eq!(target_replicas(true, 0, 0, 0, 50), None);
    }
}
