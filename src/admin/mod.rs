//! The admin API, on its own listener (loopback by default): SCG's actuator routes, health
//! and Prometheus metrics.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use weir_filters::{error_response, Body};

use crate::compile::Route;
use crate::gateway::Shared;

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
pub async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    let method = request.method();
    let snapshot = shared.snapshot.load();
    match (method, path) {
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
