//! What weir answers itself when it cannot forward: 404 without a route, 502 when the
//! upstream cannot be reached, 504 when it does not answer in time. Each is a JSON body with
//! status, error, message, path, route (when known) and requestId.

use http::{Method, StatusCode};

use crate::support::*;

#[tokio::test]
async fn no_route_is_a_json_404() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: only
    uri: http://${ORIGIN}
    predicates:
    - Path=/only
"#,
    )
    .await;
    let resp = get(gw.addr, "/nowhere/x?q=1").await;
    assert_error_body(&resp, 404, "/nowhere/x", None);
    let resp = Req::new(Method::DELETE, gw.addr, "/elsewhere").send().await;
    assert_error_body(&resp, 404, "/elsewhere", None);
    assert!(resp.json()["message"]
        .as_str()
        .unwrap()
        .contains("/elsewhere"));
}

#[tokio::test]
async fn refused_connection_is_a_json_502() {
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: down
    uri: http://${REFUSED}
"#,
        None,
        &[],
    )
    .await;
    let resp = get(gw.addr, "/down/x?y=1").await;
    assert_error_body(&resp, 502, "/down/x", Some("down"));
    let message = resp.json()["message"].as_str().unwrap().to_string();
    assert!(message.contains("could not be reached"), "{message}");
    let resp = Req::new(Method::POST, gw.addr, "/down")
        .body("data")
        .send()
        .await;
    assert_error_body(&resp, 502, "/down", Some("down"));
}

#[tokio::test]
async fn route_response_timeout_is_a_json_504() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: slow
    uri: http://${ORIGIN}
    predicates:
    - Path=/delay/**
    metadata:
      response-timeout: 200
"#,
    )
    .await;
    let resp = get(gw.addr, "/delay/5000").await;
    assert_error_body(&resp, 504, "/delay/5000", Some("slow"));
    assert!(
        resp.json()["message"].as_str().unwrap().contains("200 ms"),
        "{}",
        resp.text()
    );
    // Fast answers are not affected.
    assert_eq!(get(gw.addr, "/delay/0").await.status, StatusCode::OK);
}

#[tokio::test]
async fn global_response_timeout_and_per_route_overrides() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  httpclient:
    response-timeout: 200ms
  routes:
  - id: patient
    uri: http://${ORIGIN}
    predicates:
    - Path=/patient/**
    filters:
    - StripPrefix=1
    metadata:
      response-timeout: 10000
  - id: unlimited
    uri: http://${ORIGIN}
    predicates:
    - Path=/unlimited/**
    filters:
    - StripPrefix=1
    metadata:
      response-timeout: -1
  - id: global
    uri: http://${ORIGIN}
"#,
    )
    .await;
    let resp = get(gw.addr, "/delay/5000").await;
    assert_error_body(&resp, 504, "/delay/5000", Some("global"));
    // A route's own timeout replaces the global one; a negative one disables it.
    let resp = get(gw.addr, "/patient/delay/400").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.echoed_uri(), "/delay/400");
    let resp = get(gw.addr, "/unlimited/delay/400").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
}
