//! How routes are chosen and built: order, first match, catch-all routes, the two written
//! forms of predicates and filters, default filters, and placeholders.

use http::StatusCode;

use crate::support::*;

async fn route_of(gw: &Gw, path: &str) -> String {
    let resp = get(gw.addr, path).await;
    assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text());
    resp.header("x-route")
        .unwrap_or_else(|| panic!("{path}: no X-Route header"))
}

#[tokio::test]
async fn order_ties_first_match_and_catch_all() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: late
    uri: http://${ORIGIN}
    order: 10
    predicates:
    - Path=/o/**
    filters:
    - SetResponseHeader=X-Route, late
  - id: early
    uri: http://${ORIGIN}
    order: -1
    predicates:
    - Path=/o/**
    filters:
    - SetResponseHeader=X-Route, early
  - id: tie-first
    uri: http://${ORIGIN}
    order: 5
    predicates:
    - Path=/t/**
    filters:
    - SetResponseHeader=X-Route, tie-first
  - id: tie-second
    uri: http://${ORIGIN}
    order: 5
    predicates:
    - Path=/t/**
    filters:
    - SetResponseHeader=X-Route, tie-second
  - id: general
    uri: http://${ORIGIN}
    predicates:
    - Path=/f/**
    filters:
    - SetResponseHeader=X-Route, general
  - id: specific
    uri: http://${ORIGIN}
    predicates:
    - Path=/f/special
    filters:
    - SetResponseHeader=X-Route, specific
  - id: specific-first
    uri: http://${ORIGIN}
    predicates:
    - Path=/g/special
    filters:
    - SetResponseHeader=X-Route, specific-first
  - id: general-second
    uri: http://${ORIGIN}
    predicates:
    - Path=/g/**
    filters:
    - SetResponseHeader=X-Route, general-second
  - id: catch-all
    uri: http://${ORIGIN}
    order: 100
    filters:
    - SetResponseHeader=X-Route, catch-all
"#,
    )
    .await;
    // Lower order first, whatever the file order.
    assert_eq!(route_of(&gw, "/o/x").await, "early");
    // Equal orders keep file order.
    assert_eq!(route_of(&gw, "/t/x").await, "tie-first");
    // The first route that matches wins, even when a later one is more specific.
    assert_eq!(route_of(&gw, "/f/special").await, "general");
    assert_eq!(route_of(&gw, "/g/special").await, "specific-first");
    assert_eq!(route_of(&gw, "/g/other").await, "general-second");
    // A route with no predicates matches everything the others leave.
    assert_eq!(route_of(&gw, "/anything/else").await, "catch-all");
    assert_eq!(route_of(&gw, "/").await, "catch-all");

    // The actuator lists the routes in matching order.
    let routes = admin_get(&gw, "/actuator/gateway/routes").await.json();
    let ids: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["route_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "early",
            "general",
            "specific",
            "specific-first",
            "general-second",
            "tie-first",
            "tie-second",
            "late",
            "catch-all"
        ]
    );
}

const SHORTCUT: &str = r#"
gateway:
  routes:
  - id: both-ways
    uri: http://${ORIGIN}
    predicates:
    - Path=/a/{seg}/**,/b/{seg},false
    - Header=X-Id, \d+
    filters:
    - RewritePath=/(?<first>[ab])/(?<rest>.*), /x/$\{rest}
    - AddRequestHeader=X-Seg, seg-{seg}
  - id: redirect
    uri: http://${ORIGIN}
    predicates:
    - Path=/redirect
    filters:
    - AddResponseHeader=X-Powered-By, weir, false
    - RedirectTo=302, http://example.org/new, true
"#;

const EXPANDED: &str = r#"
gateway:
  routes:
  - id: both-ways
    uri: http://${ORIGIN}
    predicates:
    - name: Path
      args:
        patterns:
        - /a/{seg}/**
        - /b/{seg}
        match-trailing-slash: false
    - name: Header
      args:
        header: X-Id
        regexp: \d+
    filters:
    - name: RewritePath
      args:
        regexp: /(?<first>[ab])/(?<rest>.*)
        replacement: /x/$\{rest}
    - name: AddRequestHeader
      args:
        name: X-Seg
        value: seg-{seg}
  - id: redirect
    uri: http://${ORIGIN}
    predicates:
    - name: Path
      args:
        patterns: /redirect
    filters:
    - name: AddResponseHeader
      args:
        name: X-Powered-By
        value: weir
        Override: false
    - name: RedirectTo
      args:
        status: 302
        url: http://example.org/new
        include-request-params: true
"#;

async fn behaviour(gw: &Gw) -> Vec<String> {
    let mut seen = Vec::new();
    for (path, id) in [
        ("/a/1/z", Some("7")),
        ("/b/2", Some("8")),
        ("/b/2/", Some("8")),
        ("/a/1/z", None),
        ("/a/1/z", Some("x")),
        ("/c/1", Some("7")),
    ] {
        let mut req = Req::get(gw.addr, path);
        if let Some(id) = id {
            req = req.header("X-Id", id);
        }
        let resp = req.send().await;
        let line = if resp.status == StatusCode::OK {
            format!(
                "{path} {id:?} -> {} {:?}",
                resp.echoed_uri(),
                resp.echoed("x-seg")
            )
        } else {
            format!("{path} {id:?} -> {}", resp.status)
        };
        seen.push(line);
    }
    let resp = get(gw.addr, "/redirect?q=1&r=%20").await;
    seen.push(format!(
        "redirect -> {} {:?} {:?}",
        resp.status,
        resp.header("location"),
        resp.header_all("x-powered-by")
    ));
    seen
}

#[tokio::test]
async fn shortcut_and_expanded_forms_are_the_same_route() {
    let origin = origin().await;
    let short = gateway(SHORTCUT, Some(&origin), &[]).await;
    let long = gateway(EXPANDED, Some(&origin), &[]).await;

    let expected = [
        r#"/a/1/z Some("7") -> /x/1/z ["seg-1"]"#,
        r#"/b/2 Some("8") -> /x/2 ["seg-2"]"#,
        r#"/b/2/ Some("8") -> 404 Not Found"#,
        r#"/a/1/z None -> 404 Not Found"#,
        r#"/a/1/z Some("x") -> 404 Not Found"#,
        r#"/c/1 Some("7") -> 404 Not Found"#,
        r#"redirect -> 302 Found Some("http://example.org/new?q=1&r=%20") ["weir"]"#,
    ];
    assert_eq!(behaviour(&short).await, expected);
    assert_eq!(behaviour(&long).await, expected);

    // The actuator describes both identically.
    let a = admin_get(&short, "/actuator/gateway/routes").await.json();
    let b = admin_get(&long, "/actuator/gateway/routes").await.json();
    assert_eq!(a, b);
    assert_eq!(
        a[0]["predicate"],
        r"Path(patterns=[/a/{seg}/**, /b/{seg}], matchTrailingSlash=false) && Header(header=X-Id, regexp=\d+)"
    );

    // So does `weir check`, file name aside.
    let env = [("ORIGIN", "127.0.0.1:9")];
    let short_file = write_config("short.yaml", SHORTCUT);
    let long_file = write_config("long.yaml", EXPANDED);
    let short_out = run_weir(&["check", short_file.to_str().unwrap()], &env);
    let long_out = run_weir(&["check", long_file.to_str().unwrap()], &env);
    assert_eq!(short_out.code, 0, "{}", short_out.stderr);
    assert_eq!(long_out.code, 0, "{}", long_out.stderr);
    let short_text = short_out
        .stdout
        .replace(short_file.to_str().unwrap(), "FILE");
    let long_text = long_out.stdout.replace(long_file.to_str().unwrap(), "FILE");
    assert_eq!(short_text, long_text);
    assert!(
        short_text.contains("filter:    RedirectTo(status=302, url=http://example.org/new, includeRequestParams=true)"),
        "{short_text}"
    );
}

#[tokio::test]
async fn default_filters_interleave_with_route_filters() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  default-filters:
  - AddRequestHeader=X-Order, d1
  - AddRequestHeader=X-Order, d2
  - AddRequestHeader=X-Order, d3
  routes:
  - id: r
    uri: http://${ORIGIN}
    filters:
    - AddRequestHeader=X-Order, r1
    - AddRequestHeader=X-Order, r2
  - id: replaced
    uri: http://${ORIGIN}
    order: -1
    predicates:
    - Path=/replaced
    filters:
    - SetRequestHeader=X-Order, r1
"#,
    )
    .await;
    // SCG ranks each filter by its position in its own list, default first on a tie.
    let resp = get(gw.addr, "/x").await;
    assert_eq!(resp.echoed("x-order"), ["d1", "r1", "d2", "r2", "d3"]);
    // With d1, r1 (set), d2, d3: the route's SetRequestHeader replaces only d1.
    let resp = get(gw.addr, "/replaced").await;
    assert_eq!(resp.echoed("x-order"), ["r1", "d2", "d3"]);

    let route = admin_get(&gw, "/actuator/gateway/routes/r").await.json();
    assert_eq!(
        route["filters"],
        serde_json::json!([
            "[AddRequestHeader(name=X-Order, value=d1), order = 1]",
            "[AddRequestHeader(name=X-Order, value=r1), order = 2]",
            "[AddRequestHeader(name=X-Order, value=d2), order = 3]",
            "[AddRequestHeader(name=X-Order, value=r2), order = 4]",
            "[AddRequestHeader(name=X-Order, value=d3), order = 5]",
        ])
    );
}

#[tokio::test]
async fn placeholders() {
    let origin = origin().await;
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: placeholders
    uri: http://${ORIGIN}
    predicates:
    - Path=/ph/**
    filters:
    - AddRequestHeader=X-Set, ${GREETING}
    - AddRequestHeader=X-Default, ${WEIR_E2E_UNSET_VARIABLE:fallback}
    - AddRequestHeader=X-Empty-Default, pre${WEIR_E2E_UNSET_VARIABLE:}post
    - RewritePath=/ph/(?<rest>.*), /rewritten/$\{rest}
"#,
        Some(&origin),
        &[("GREETING", "hello")],
    )
    .await;
    let resp = get(gw.addr, "/ph/a/b?x=1").await;
    assert_eq!(resp.echoed("x-set"), ["hello"]);
    assert_eq!(resp.echoed("x-default"), ["fallback"]);
    assert_eq!(resp.echoed("x-empty-default"), ["prepost"]);
    assert_eq!(resp.echoed_uri(), "/rewritten/a/b?x=1");

    // A variable that is not set and has no default is an error naming it.
    let err = try_gateway(
        "gateway:\n  routes:\n  - id: r\n    uri: http://${WEIR_E2E_MISSING}\n",
        None,
        &[],
    )
    .await
    .err()
    .expect("a missing variable must fail the start");
    let text = err.to_string();
    assert!(
        text.contains(
            "routes.yaml:4:10: route `r`: environment variable `WEIR_E2E_MISSING` is not set"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn disabled_routes_and_scg_roots() {
    let (_origin, gw) = origin_and_gateway(
        r#"
spring:
  cloud:
    gateway:
      server:
        webflux:
          routes:
          - id: scg-webflux
            uri: http://${ORIGIN}
            predicates:
            - Path=/webflux/**
      routes:
      - id: scg
        uri: http://${ORIGIN}
        predicates:
        - Path=/scg/**
      - id: off
        uri: http://${ORIGIN}
        enabled: false
        predicates:
        - Path=/off/**
"#,
    )
    .await;
    assert_eq!(get(gw.addr, "/scg/x").await.status, StatusCode::OK);
    assert_eq!(get(gw.addr, "/webflux/x").await.status, StatusCode::OK);
    assert_eq!(get(gw.addr, "/off/x").await.status, StatusCode::NOT_FOUND);
    let routes = admin_get(&gw, "/actuator/gateway/routes").await.json();
    let ids: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["route_id"].as_str())
        .collect();
    assert!(
        ids.contains(&"scg") && ids.contains(&"scg-webflux"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"off"), "{ids:?}");
}
