//! Every built-in filter, each with an effect the origin sees or the client gets back, plus the
//! `forward:` and `no://op` uris.

use http::{Method, StatusCode};

use crate::support::*;

#[tokio::test]
async fn path_filters() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: rewrite
    uri: http://${ORIGIN}
    predicates:
    - Path=/red/**
    filters:
    - RewritePath=/red/?(?<segment>.*), /$\{segment}
  - id: strip
    uri: http://${ORIGIN}
    predicates:
    - Path=/strip/**
    filters:
    - StripPrefix=2
  - id: prefix
    uri: http://${ORIGIN}
    predicates:
    - Path=/pp/**
    filters:
    - PrefixPath=/api
  - id: set-path
    uri: http://${ORIGIN}
    predicates:
    - Path=/sp/{segment}
    filters:
    - SetPath=/set/{segment}/end
"#,
    )
    .await;
    let a = gw.addr;
    assert_eq!(
        get(a, "/red/blue/green?x=1").await.echoed_uri(),
        "/blue/green?x=1"
    );
    assert_eq!(get(a, "/red").await.echoed_uri(), "/");
    // Encoded characters stay encoded, never encoded twice.
    assert_eq!(get(a, "/red/a%20b").await.echoed_uri(), "/a%20b");

    let resp = get(a, "/strip/two/rest/x?q=%2F").await;
    assert_eq!(resp.echoed_uri(), "/rest/x?q=%2F");
    assert_eq!(resp.echoed("x-forwarded-prefix"), ["/strip/two"]);
    let resp = get(a, "/strip/two").await;
    assert_eq!(resp.echoed_uri(), "/");

    assert_eq!(get(a, "/pp/x?y=2").await.echoed_uri(), "/api/pp/x?y=2");
    assert!(get(a, "/pp/x")
        .await
        .echoed("x-forwarded-prefix")
        .is_empty());

    assert_eq!(get(a, "/sp/abc?k=v").await.echoed_uri(), "/set/abc/end?k=v");
}

#[tokio::test]
async fn request_header_filters() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: add
    uri: http://${ORIGIN}
    predicates:
    - Path=/add/{v}
    filters:
    - AddRequestHeader=X-Add, val-{v}
  - id: set
    uri: http://${ORIGIN}
    predicates:
    - Path=/set
    filters:
    - SetRequestHeader=X-Set, replaced
  - id: remove
    uri: http://${ORIGIN}
    predicates:
    - Path=/remove
    filters:
    - RemoveRequestHeader=X-Remove
"#,
    )
    .await;
    let a = gw.addr;
    // Appends: the client's value stays, the filter's comes after it.
    let resp = Req::get(a, "/add/abc")
        .header("X-Add", "client")
        .send()
        .await;
    assert_eq!(resp.echoed("x-add"), ["client", "val-abc"]);
    let resp = get(a, "/add/xyz").await;
    assert_eq!(resp.echoed("x-add"), ["val-xyz"]);

    // Replaces every value.
    let resp = Req::get(a, "/set")
        .header("X-Set", "one")
        .header("X-Set", "two")
        .send()
        .await;
    assert_eq!(resp.echoed("x-set"), ["replaced"]);
    assert_eq!(get(a, "/set").await.echoed("x-set"), ["replaced"]);

    // Removes that header only.
    let resp = Req::get(a, "/remove")
        .header("X-Remove", "gone")
        .header("X-Other", "kept")
        .send()
        .await;
    assert!(resp.echoed("x-remove").is_empty(), "{}", resp.text());
    assert_eq!(resp.echoed("x-other"), ["kept"]);
}

#[tokio::test]
async fn request_parameter_filters() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: add
    uri: http://${ORIGIN}
    predicates:
    - Path=/add/{v}
    filters:
    - AddRequestParameter=red, blue-{v}
  - id: remove
    uri: http://${ORIGIN}
    predicates:
    - Path=/remove
    filters:
    - RemoveRequestParameter=drop
"#,
    )
    .await;
    let a = gw.addr;
    // The existing query is kept byte for byte; the new parameter is appended.
    assert_eq!(
        get(a, "/add/x?a=1%202&b=%2f&c").await.echoed_uri(),
        "/add/x?a=1%202&b=%2f&c&red=blue-x"
    );
    assert_eq!(get(a, "/add/y").await.echoed_uri(), "/add/y?red=blue-y");

    assert_eq!(
        get(a, "/remove?keep=1%2F&drop=2&keep2=x&drop")
            .await
            .echoed_uri(),
        "/remove?keep=1%2F&keep2=x"
    );
    assert_eq!(get(a, "/remove?drop=1").await.echoed_uri(), "/remove");
    assert_eq!(
        get(a, "/remove?other=%zz").await.echoed_uri(),
        "/remove?other=%zz"
    );
}

#[tokio::test]
async fn response_header_filters() {
    // Each route sends its request to /hop, which answers with `X-Kept: 1`.
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: add-no-override
    uri: http://${ORIGIN}
    predicates:
    - Path=/add/keep
    filters:
    - SetPath=/hop
    - AddResponseHeader=X-Kept, 2, false
    - AddResponseHeader=X-New, 3, false
  - id: set
    uri: http://${ORIGIN}
    predicates:
    - Path=/set
    filters:
    - SetPath=/hop
    - SetResponseHeader=X-Kept, set
  - id: remove
    uri: http://${ORIGIN}
    predicates:
    - Path=/remove
    filters:
    - SetPath=/hop
    - RemoveResponseHeader=X-Kept
"#,
    )
    .await;
    let a = gw.addr;
    let resp = get(a, "/add/keep").await;
    assert_eq!(resp.echoed_uri(), "/hop");
    assert_eq!(resp.header_all("x-kept"), ["1"]);
    assert_eq!(resp.header_all("x-new"), ["3"]);

    assert_eq!(get(a, "/set").await.header_all("x-kept"), ["set"]);

    let resp = get(a, "/remove").await;
    assert!(resp.header_all("x-kept").is_empty(), "{:?}", resp.headers);
    assert_eq!(resp.status, StatusCode::OK);
}

#[tokio::test]
async fn add_response_header_with_override_appends() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: add-override
    uri: http://${ORIGIN}
    predicates:
    - Path=/add/{x}
    filters:
    - SetPath=/hop
    - AddResponseHeader=X-Kept, 2
    - AddResponseHeader=X-New, new-{x}
"#,
    )
    .await;
    let resp = get(gw.addr, "/add/abc").await;
    assert_eq!(resp.header_all("x-kept"), ["1", "2"]);
    assert_eq!(resp.header_all("x-new"), ["new-abc"]);
}

#[tokio::test]
async fn host_header_filters() {
    let (origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: default
    uri: http://${ORIGIN}
    predicates:
    - Path=/default
  - id: preserve
    uri: http://${ORIGIN}
    predicates:
    - Path=/preserve
    filters:
    - PreserveHostHeader
  - id: set-host
    uri: http://${ORIGIN}
    predicates:
    - Path=/set-host/{name}
    filters:
    - SetRequestHostHeader={name}.internal.example
"#,
    )
    .await;
    let a = gw.addr;
    let client_host = "client.example:1234";
    // By default the upstream sees its own authority.
    let resp = Req::get(a, "/default")
        .header("Host", client_host)
        .send()
        .await;
    assert_eq!(resp.echoed("host"), [origin.addr.to_string()]);
    assert_eq!(resp.echoed("x-forwarded-host"), [client_host]);

    let resp = Req::get(a, "/preserve")
        .header("Host", client_host)
        .send()
        .await;
    assert_eq!(resp.echoed("host"), [client_host]);

    let resp = Req::get(a, "/set-host/api")
        .header("Host", client_host)
        .send()
        .await;
    assert_eq!(resp.echoed("host"), ["api.internal.example"]);
}

#[tokio::test]
async fn set_status() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: number
    uri: http://${ORIGIN}
    predicates:
    - Path=/number
    filters:
    - SetStatus=401
  - id: name
    uri: http://${ORIGIN}
    predicates:
    - Path=/name/**
    filters:
    - SetStatus=BAD_REQUEST
  - id: teapot
    uri: http://${ORIGIN}
    predicates:
    - Path=/teapot
    filters:
    - SetStatus=I_AM_A_TEAPOT
"#,
    )
    .await;
    let resp = get(gw.addr, "/number").await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    // The origin's body still comes through.
    assert_eq!(resp.echoed_uri(), "/number");
    // Whatever the upstream answered.
    let resp = get(gw.addr, "/name/status/503").await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(resp.echoed_uri(), "/name/status/503");
    assert_eq!(get(gw.addr, "/teapot").await.status.as_u16(), 418);
}

#[tokio::test]
async fn redirect_to() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: plain
    uri: http://${ORIGIN}
    predicates:
    - Path=/old
    filters:
    - RedirectTo=302, https://acme.example/new
  - id: with-params
    uri: http://${ORIGIN}
    predicates:
    - Path=/old-params
    filters:
    - RedirectTo=301, https://acme.example/new?fixed=1, true
"#,
    )
    .await;
    let resp = get(gw.addr, "/old?a=1").await;
    assert_eq!(resp.status, StatusCode::FOUND);
    assert_eq!(
        resp.header("location").as_deref(),
        Some("https://acme.example/new")
    );
    assert!(resp.body.is_empty(), "{}", resp.text());

    let resp = get(gw.addr, "/old-params?a=1&b=%20").await;
    assert_eq!(resp.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        resp.header("location").as_deref(),
        Some("https://acme.example/new?fixed=1&a=1&b=%20")
    );
    let resp = get(gw.addr, "/old-params").await;
    assert_eq!(
        resp.header("location").as_deref(),
        Some("https://acme.example/new?fixed=1")
    );
}

#[tokio::test]
async fn forward_and_no_op_uris() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: entry
    uri: forward:/target/inner
    predicates:
    - Path=/entry/**
    filters:
    - AddRequestHeader=X-Via, entry
  - id: target
    uri: http://${ORIGIN}
    predicates:
    - Path=/target/**
    filters:
    - AddRequestHeader=X-Via, target
  - id: noop
    uri: no://op
    predicates:
    - Path=/noop
  - id: loop
    uri: forward:/loop
    predicates:
    - Path=/loop
"#,
    )
    .await;
    // The entry route's filters run, then the request is dispatched again with the new path
    // (query kept) and the target route's filters run.
    let resp = Req::new(Method::POST, gw.addr, "/entry/x?q=1")
        .body("payload")
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.echoed_uri(), "/target/inner?q=1");
    assert_eq!(resp.echoed("x-via"), ["entry", "target"]);
    assert_eq!(resp.json()["body"], "payload");

    let resp = get(gw.addr, "/noop").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert!(resp.body.is_empty(), "{}", resp.text());

    // A forward: loop is cut off, not followed forever.
    let resp = get(gw.addr, "/loop").await;
    assert_eq!(resp.status, StatusCode::LOOP_DETECTED, "{}", resp.text());
}
