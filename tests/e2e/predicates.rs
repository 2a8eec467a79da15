//! Every built-in predicate, through a running gateway: a request that matches reaches the
//! origin (200 with the echo), one that does not gets weir's 404.

use http::{Method, StatusCode};

use crate::support::*;

/// Asserts that `path` reached the origin and returns the response.
async fn hit(req: Req) -> Resp {
    let resp = req.send().await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "expected a match: {}",
        resp.text()
    );
    assert!(
        resp.json().get("uri").is_some(),
        "not the origin's echo: {}",
        resp.text()
    );
    resp
}

/// Asserts that no route took the request.
async fn miss(req: Req) {
    let resp = req.send().await;
    assert_eq!(
        resp.status,
        StatusCode::NOT_FOUND,
        "expected no match: {}",
        resp.text()
    );
    assert!(resp.json().get("route").is_none(), "{}", resp.text());
}

#[tokio::test]
async fn path_patterns() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: literal
    uri: http://${ORIGIN}
    predicates:
    - Path=/lit
  - id: var
    uri: http://${ORIGIN}
    predicates:
    - Path=/var/{seg}
    filters:
    - AddRequestHeader=X-Seg, {seg}
  - id: regex-var
    uri: http://${ORIGIN}
    predicates:
    - Path=/num/{id:\d+}
    filters:
    - AddRequestHeader=X-Id, {id}
  - id: star
    uri: http://${ORIGIN}
    predicates:
    - Path=/star/*/end
  - id: double-star
    uri: http://${ORIGIN}
    predicates:
    - Path=/ds/**
  - id: rest
    uri: http://${ORIGIN}
    predicates:
    - Path=/rest/{*rest}
    filters:
    - AddRequestHeader=X-Rest, {rest}
  - id: strict
    uri: http://${ORIGIN}
    predicates:
    - Path=/strict,false
"#,
    )
    .await;
    let a = gw.addr;

    // Literal, with the trailing slash matched by default.
    assert_eq!(hit(Req::get(a, "/lit")).await.echoed_uri(), "/lit");
    assert_eq!(hit(Req::get(a, "/lit/")).await.echoed_uri(), "/lit/");
    miss(Req::get(a, "/lit/x")).await;
    miss(Req::get(a, "/litx")).await;
    miss(Req::get(a, "/LIT")).await;

    // {var} captures one segment, and filters see it.
    assert_eq!(hit(Req::get(a, "/var/abc")).await.echoed("x-seg"), ["abc"]);
    miss(Req::get(a, "/var/a/b")).await;
    miss(Req::get(a, "/var/")).await;

    // {var:regex} must match the regex in full.
    assert_eq!(hit(Req::get(a, "/num/42")).await.echoed("x-id"), ["42"]);
    miss(Req::get(a, "/num/4x")).await;

    // * is exactly one segment.
    hit(Req::get(a, "/star/anything/end")).await;
    miss(Req::get(a, "/star/a/b/end")).await;

    // /ds/** also matches /ds itself, and any depth below it, but not /dsx.
    hit(Req::get(a, "/ds")).await;
    hit(Req::get(a, "/ds/")).await;
    hit(Req::get(a, "/ds/a/b/c")).await;
    miss(Req::get(a, "/dsx")).await;

    // {*rest} captures the rest with its leading slash.
    assert_eq!(
        hit(Req::get(a, "/rest/a/b")).await.echoed("x-rest"),
        ["/a/b"]
    );
    miss(Req::get(a, "/resta/b")).await;

    // matchTrailingSlash=false: /strict/ is not /strict.
    hit(Req::get(a, "/strict")).await;
    miss(Req::get(a, "/strict/")).await;
}

#[tokio::test]
async fn header_predicate() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: presence
    uri: http://${ORIGIN}
    predicates:
    - Path=/h/presence
    - Header=X-Present
  - id: regex
    uri: http://${ORIGIN}
    predicates:
    - Path=/h/regex
    - Header=X-Id, \d+
  - id: case
    uri: http://${ORIGIN}
    predicates:
    - Path=/h/case
    - Header=x-MiXeD-CaSe, yes
"#,
    )
    .await;
    let a = gw.addr;
    hit(Req::get(a, "/h/presence").header("X-Present", "")).await;
    hit(Req::get(a, "/h/presence").header("x-present", "1")).await;
    miss(Req::get(a, "/h/presence").header("X-Absent", "1")).await;

    hit(Req::get(a, "/h/regex").header("X-Id", "123")).await;
    miss(Req::get(a, "/h/regex").header("X-Id", "12a")).await;
    miss(Req::get(a, "/h/regex")).await;
    // A comma-separated header matches when any one value does.
    hit(Req::get(a, "/h/regex").header("X-Id", "abc, 42")).await;
    miss(Req::get(a, "/h/regex").header("X-Id", "abc, def")).await;

    // The header name in the config and in the request compare case-insensitively.
    hit(Req::get(a, "/h/case").header("X-MIXED-case", "yes")).await;
    miss(Req::get(a, "/h/case").header("X-Mixed-Case", "no")).await;
}

#[tokio::test]
async fn query_predicate() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: presence
    uri: http://${ORIGIN}
    predicates:
    - Path=/q/presence
    - Query=flag
  - id: regex
    uri: http://${ORIGIN}
    predicates:
    - Path=/q/regex
    - Query=color, gree.
"#,
    )
    .await;
    let a = gw.addr;
    hit(Req::get(a, "/q/presence?flag")).await;
    hit(Req::get(a, "/q/presence?flag=")).await;
    hit(Req::get(a, "/q/presence?a=1&flag=x")).await;
    miss(Req::get(a, "/q/presence?flags=1")).await;
    miss(Req::get(a, "/q/presence")).await;

    hit(Req::get(a, "/q/regex?color=green")).await;
    // Values are percent-decoded before matching.
    hit(Req::get(a, "/q/regex?color=gre%65n")).await;
    miss(Req::get(a, "/q/regex?color=greenish")).await;
    miss(Req::get(a, "/q/regex?colour=green")).await;
}

#[tokio::test]
async fn number_predicate_never_fails_the_request() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: number
    uri: http://${ORIGIN}
    predicates:
    - Number=1,3
"#,
    )
    .await;
    let a = gw.addr;
    assert_eq!(
        hit(Req::get(a, "/n?number=3")).await.echoed_uri(),
        "/n?number=3"
    );
    hit(Req::get(a, "/n?number=1")).await;
    for path in [
        "/n?number=2",
        "/n?number=abc",
        "/n",
        "/n?number=",
        "/n?number=99999999999999999999",
    ] {
        let resp = get(a, path).await;
        assert_error_body(&resp, 404, "/n", None);
    }
}

#[tokio::test]
async fn method_predicate() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: writes
    uri: http://${ORIGIN}
    predicates:
    - Method=POST,put
"#,
    )
    .await;
    let a = gw.addr;
    let resp = hit(Req::new(Method::POST, a, "/m").body("hello")).await;
    assert_eq!(resp.json()["method"], "POST");
    assert_eq!(resp.json()["body"], "hello");
    hit(Req::new(Method::PUT, a, "/m")).await;
    miss(Req::get(a, "/m")).await;
    miss(Req::new(Method::DELETE, a, "/m")).await;
}

#[tokio::test]
async fn host_predicate() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: any-sub
    uri: http://${ORIGIN}
    predicates:
    - Host=**.example.org
  - id: captured
    uri: http://${ORIGIN}
    predicates:
    - Host={sub}.example.com
    filters:
    - AddRequestHeader=X-Sub, sub-{sub}
"#,
    )
    .await;
    let a = gw.addr;
    hit(Req::get(a, "/").header("Host", "a.b.example.org")).await;
    // The port is ignored.
    hit(Req::get(a, "/").header("Host", "www.example.org:8080")).await;
    hit(Req::get(a, "/").header("Host", "example.org")).await;
    miss(Req::get(a, "/").header("Host", "example.net")).await;
    miss(Req::get(a, "/").header("Host", "evilexample.org")).await;

    let resp = hit(Req::get(a, "/").header("Host", "shop.example.com:9999")).await;
    assert_eq!(resp.echoed("x-sub"), ["sub-shop"]);
    miss(Req::get(a, "/").header("Host", "a.b.example.com")).await;
}

#[tokio::test]
async fn cookie_predicate() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: cookie
    uri: http://${ORIGIN}
    predicates:
    - Cookie=chocolate, ch.p
"#,
    )
    .await;
    let a = gw.addr;
    hit(Req::get(a, "/").header("Cookie", "chocolate=chip")).await;
    hit(Req::get(a, "/").header("Cookie", "a=b; chocolate=chop; c=d")).await;
    miss(Req::get(a, "/").header("Cookie", "chocolate=mint")).await;
    miss(Req::get(a, "/").header("Cookie", "vanilla=chip")).await;
    miss(Req::get(a, "/")).await;
}

#[tokio::test]
async fn remote_addr_predicate() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: loopback
    uri: http://${ORIGIN}
    predicates:
    - Path=/ra/loopback
    - RemoteAddr=127.0.0.1/32
  - id: ten
    uri: http://${ORIGIN}
    predicates:
    - Path=/ra/ten
    - RemoteAddr=10.0.0.0/8
"#,
    )
    .await;
    hit(Req::get(gw.addr, "/ra/loopback")).await;
    miss(Req::get(gw.addr, "/ra/ten")).await;
}

#[tokio::test]
async fn after_before_between() {
    // Past and future moments, as ISO-8601 with an offset (SCG's zone suffix included) and as
    // epoch milliseconds.
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: after-past
    uri: http://${ORIGIN}
    predicates:
    - Path=/after/past
    - After=2017-01-20T17:42:47.789-07:00[America/Denver]
  - id: after-future
    uri: http://${ORIGIN}
    predicates:
    - Path=/after/future
    - After=32503680000000
  - id: before-future
    uri: http://${ORIGIN}
    predicates:
    - Path=/before/future
    - Before=2999-01-20T17:42:47.789+02:00
  - id: before-past
    uri: http://${ORIGIN}
    predicates:
    - Path=/before/past
    - Before=1484959367789
  - id: between-now
    uri: http://${ORIGIN}
    predicates:
    - Path=/between/now
    - Between=1484959367789, 2999-01-20T17:42:47.789+02:00
  - id: between-past
    uri: http://${ORIGIN}
    predicates:
    - Path=/between/past
    - Between=2017-01-20T17:42:47.789-07:00, 2017-01-21T17:42:47.789-07:00
  - id: between-future
    uri: http://${ORIGIN}
    predicates:
    - Path=/between/future
    - Between=2998-01-20T00:00:00Z, 32503680000000
"#,
    )
    .await;
    let a = gw.addr;
    hit(Req::get(a, "/after/past")).await;
    miss(Req::get(a, "/after/future")).await;
    hit(Req::get(a, "/before/future")).await;
    miss(Req::get(a, "/before/past")).await;
    hit(Req::get(a, "/between/now")).await;
    miss(Req::get(a, "/between/past")).await;
    miss(Req::get(a, "/between/future")).await;
}

#[tokio::test]
async fn weight_splits_traffic_80_20() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: weight-high
    uri: http://${ORIGIN}
    predicates:
    - Path=/w
    - Weight=group1, 8
    filters:
    - AddResponseHeader=X-Route, high
  - id: weight-low
    uri: http://${ORIGIN}
    predicates:
    - Path=/w
    - Weight=group1, 2
    filters:
    - AddResponseHeader=X-Route, low
"#,
    )
    .await;
    let client = client();
    let (mut high, mut low) = (0u32, 0u32);
    for _ in 0..1000 {
        let resp = Req::get(gw.addr, "/w").send_with(&client).await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        match resp.header("x-route").as_deref() {
            Some("high") => high += 1,
            Some("low") => low += 1,
            other => panic!("unexpected route {other:?}"),
        }
    }
    assert_eq!(high + low, 1000);
    // Binomial(1000, 0.8) has a standard deviation of about 13: 700..=900 is ~8 of them.
    assert!(
        (700..=900).contains(&high),
        "expected about 800 of 1000 on the weight-8 route, got {high} (low {low})"
    );
}
