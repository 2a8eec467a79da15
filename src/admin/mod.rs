//! The admin API, on its own listener (loopback by default): SCG's actuator routes, the
//! running config and its reloads, health and Prometheus metrics.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use weir_filters::{error_response, json_response, Body};

use std::sync::Arc;

use weir_filters::circuit_breaker::breaker::{Breaker, Window};

use crate::compile::Route;
use crate::reload::Reloader;

/// A circuit breaker's state, counters and settings.
fn breaker_json(breaker: &Breaker) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &breaker.counters;
    let s = breaker.settings();
    json!({
        "name": breaker.name(),
        "state": breaker.state().name(),
        "calls": {
            "successful": c.successful.load(Relaxed),
            "failed": c.failed.load(Relaxed),
            "slow": c.slow.load(Relaxed),
            "rejected": c.rejected.load(Relaxed),
        },
        "settings": {
            "sliding_window": match s.window {
                Window::Count(n) => format!("count {n}"),
                Window::Time(n) => format!("time {n}s"),
            },
            "minimum_number_of_calls": s.minimum_calls,
            "failure_rate_threshold": s.failure_rate_threshold,
            "wait_duration_in_open_state_ms": s.wait_in_open.as_millis() as u64,
            "permitted_number_of_calls_in_half_open_state": s.half_open_calls,
            "slow_call_duration_threshold_ms": s.slow_call_duration.map(|d| d.as_millis() as u64),
            "slow_call_rate_threshold": s.slow_call_rate_threshold,
        },
    })
}

/// A route in SCG's actuator shape.
fn route_json(route: &Route) -> Value {
    let mut value = json!({
        "route_id": &*route.id,
        "uri": route.uri.to_string(),
        "order": route.order,
        "predicate": route.predicate_text.join(" && "),
        "filters": route.filter_text.iter().enumerate().map(|(i, f)| format!("[{f}, order = {}]", i + 1)).collect::<Vec<_>>(),
    });
    if !route.metadata.is_empty() {
        value["metadata"] = Value::Object(route.metadata.clone());
    }
    value
}

/// Whether `headers` carry `Authorization: Bearer <token>` (one such header, scheme in any
/// case).
fn authorized(headers: &http::HeaderMap, token: &crate::config::Secret) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let value = value.as_bytes();
    match value.split_at_checked(7) {
        Some((scheme, offered)) if scheme.eq_ignore_ascii_case(b"bearer ") => {
            token.matches(offered.trim_ascii())
        }
        _ => false,
    }
}

/// The 401 for a request without the admin token (or with a wrong one).
fn unauthorized(path: &str) -> Response<Body> {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        "the admin API needs `Authorization: Bearer <admin.token>`",
        path,
        None,
        0,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"weir admin\""),
    );
    response
}

/// Handles one admin request. With `admin.token` set, every endpoint but `/actuator/health`
/// needs it as a bearer token.
pub async fn handle(reloader: &Arc<Reloader>, request: Request<Body>) -> Response<Body> {
    let shared = reloader.shared();
    let path = request.uri().path();
    let method = request.method();
    let snapshot = shared.snapshot.load();
    if let Some(token) = &snapshot.config.admin.token {
        if path != "/actuator/health" && !authorized(request.headers(), token) {
            return unauthorized(path);
        }
    }
    match (method, path) {
        (&Method::GET, "/actuator/gateway/circuitbreakers") => {
            let mut breakers: Vec<Value> = shared
                .resources
                .state
                .values::<Breaker>()
                .iter()
                .map(|(_, b)| breaker_json(b))
                .collect();
            breakers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            json_response(StatusCode::OK, &Value::Array(breakers))
        }
        (&Method::GET, "/actuator/gateway/services") => {
            let services: Vec<Value> = shared
                .resources
                .services()
                .iter()
                .map(|s| {
                    json!({
                        "name": s.name(),
                        "dns": s.def.dns.as_ref().map(|d| format!("{}:{}", d.host, d.port)),
                        "instances": s.status(),
                    })
                })
                .collect();
            json_response(StatusCode::OK, &Value::Array(services))
        }
        (&Method::GET, "/actuator/gateway/config") => json_response(
            StatusCode::OK,
            &serde_json::to_value(reloader.status()).unwrap_or_default(),
        ),
        (&Method::POST, "/actuator/gateway/refresh") => match reloader.reload("admin API").await {
            Ok(status) => json_response(
                StatusCode::OK,
                &serde_json::to_value(status).unwrap_or_default(),
            ),
            Err(errors) => json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "status": 422,
                    "error": "config not reloaded; the previous config keeps serving",
                    "errors": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
            ),
        },
        (&Method::GET, "/actuator/health") => {
            json_response(StatusCode::OK, &json!({"status": "UP"}))
        }
        (&Method::GET, "/actuator/gateway/routes") => {
            let routes: Vec<Value> = snapshot
                .table
                .routes()
                .iter()
                .map(|r| route_json(r))
                .collect();
            json_response(StatusCode::OK, &Value::Array(routes))
        }
        (&Method::GET, p) if p.starts_with("/actuator/gateway/routes/") => {
            let id = &p["/actuator/gateway/routes/".len()..];
            let id = weir_predicates::percent::decode(id);
            match snapshot.table.get(&id) {
                Some(route) => json_response(StatusCode::OK, &route_json(route)),
                None => error_response(
                    StatusCode::NOT_FOUND,
                    &format!("no route with id `{id}`"),
                    p,
                    None,
                    0,
                ),
            }
        }
        (&Method::GET, "/metrics") => {
            // The same text as the metrics listener's: OpenFaaS's function metrics, then weir's.
            let text = crate::metrics::prometheus_text(&shared.metrics, &shared.resources.state);
            let mut response = Response::new(Body::full(text));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::PROMETHEUS_TEXT),
            );
            response
        }
        _ => error_response(
            StatusCode::NOT_FOUND,
            "no such admin endpoint",
            path,
            None,
            0,
        ),
    }
}
