//! The admin listener: SCG's actuator routes, health and Prometheus metrics.

use http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

const CONFIG: &str = r#"
gateway:
  default-filters:
  - AddResponseHeader=X-Gateway, weir
  routes:
  - id: users
    uri: http://${ORIGIN}
    order: 2
    predicates:
    - Path=/users/{id}
    - Method=GET,POST
    filters:
    - SetPath=/u/{id}
    metadata:
      response-timeout: 5000
      team: accounts
  - id: everything
    uri: no://op
    order: 3
"#;

#[tokio::test]
async fn actuator_routes() {
    let (origin, gw) = origin_and_gateway(CONFIG).await;
    let resp = admin_get(&gw, "/actuator/gateway/routes").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let users = json!({
        "route_id": "users",
        "uri": format!("http://{}", origin.addr),
        "order": 2,
        "predicate": "Path(patterns=/users/{id}) && Method(methods=[GET, POST])",
        "filters": [
            "[AddResponseHeader(name=X-Gateway, value=weir), order = 1]",
            "[SetPath(template=/u/{id}), order = 2]",
        ],
        "metadata": {"response-timeout": "5000", "team": "accounts"},
    });
    let everything = json!({
        "route_id": "everything",
        "uri": "no://op",
        "order": 3,
        "predicate": "",
        "filters": ["[AddResponseHeader(name=X-Gateway, value=weir), order = 1]"],
    });
    assert_eq!(resp.json(), json!([users, everything]));

    let one = admin_get(&gw, "/actuator/gateway/routes/users").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json(), users);

    let missing = admin_get(&gw, "/actuator/gateway/routes/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let body = missing.json();
    assert_eq!(body["status"], 404);
    assert!(body["message"].as_str().unwrap().contains("nope"), "{body}");

    // The admin API is not on the main listener, and the main routes are not on the admin one.
    let resp = get(gw.addr, "/actuator/gateway/routes").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(
        resp.body.is_empty(),
        "the no://op route should take it: {}",
        resp.text()
    );
    assert_eq!(
        admin_get(&gw, "/users/1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn health() {
    let (_origin, gw) = origin_and_gateway(CONFIG).await;
    let resp = admin_get(&gw, "/actuator/health").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.json(), json!({"status": "UP"}));
}

/// The value of the sample line starting with `prefix` (name and labels), if there is one.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_method_and_status() {
    let origin = origin().await;
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: api
    uri: http://${ORIGIN}
    predicates:
    - Path=/api/**
    filters:
    - StripPrefix=1
  - id: broken
    uri: http://${REFUSED}
    predicates:
    - Path=/broken/**
"#,
        Some(&origin),
        &[],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/api/x").await.status, StatusCode::OK);
    }
    for _ in 0..2 {
        let resp = Req::new(Method::POST, gw.addr, "/api/status/201")
            .send()
            .await;
        assert_eq!(resp.status, StatusCode::CREATED);
    }
    assert_eq!(
        get(gw.addr, "/broken").await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        get(gw.addr, "/unrouted").await.status,
        StatusCode::NOT_FOUND
    );

    let resp = admin_get(&gw, "/metrics").await;
    assert_eq!(resp.status, StatusCode::OK);
    let text = resp.text();
    let count = |labels: &str| sample(&text, &format!("weir_requests_total{{{labels}}} "));
    assert_eq!(
        count(r#"route="api",method="GET",status="200""#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        count(r#"route="api",method="POST",status="201""#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count(r#"route="broken",method="GET",status="502""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count(r#"route="unmatched",method="GET",status="404""#),
        Some(1.0),
        "{text}"
    );

    assert!(
        text.contains("# TYPE weir_request_duration_seconds histogram"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"weir_request_duration_seconds_count{route="api"} "#
        ),
        Some(5.0),
        "{text}"
    );
    assert!(
        sample(&text, r#"weir_request_duration_seconds_sum{route="api"} "#)
            .is_some_and(|s| s > 0.0),
        "{text}"
    );
    let inf = text
        .lines()
        .find(|l| {
            l.starts_with("weir_request_duration_seconds_bucket{")
                && l.contains(r#"le="+Inf""#)
                && l.contains(r#"route="api""#)
        })
        .unwrap_or_else(|| panic!("no +Inf bucket for api:\n{text}"));
    assert!(inf.ends_with(" 5"), "{inf}");
    // The buckets are cumulative and end at the count.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| {
            l.starts_with("weir_request_duration_seconds_bucket{") && l.contains(r#"route="api""#)
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(buckets.len() > 2, "{text}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
}
