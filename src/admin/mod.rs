//! The admin API, on its own listener (loopback by default): SCG's actuator routes, the
//! running config and its reloads, health and Prometheus metrics.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use weir_filters::{error_response, Body};

use std::sync::Arc;

use crate::compile::Route;
use crate::reload::Reloader;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut response = Response::new(Body::full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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

/// Handles one admin request.
pub async fn handle(reloader: &Arc<Reloader>, request: Request<Incoming>) -> Response<Body> {
    let shared = reloader.shared();
    let path = request.uri().path();
    let method = request.method();
    let snapshot = shared.snapshot.load();
    match (method, path) {
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
            let mut response = Response::new(Body::full(shared.metrics.encode()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
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
