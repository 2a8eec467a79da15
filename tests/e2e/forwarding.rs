//! What the forwarder does to every request and response: hop-by-hop headers, X-Forwarded-*,
//! the query string, path normalisation and the upstream Host.

use http::StatusCode;

use crate::support::*;

/// A request without a body goes through weir's own HTTP/1 client, one with a body through
/// hyper's: each request-side test below sends both.
const WITH_AND_WITHOUT_BODY: [(&str, &str); 2] = [("GET", ""), ("POST", "body")];

#[tokio::test]
async fn hop_by_hop_request_headers_are_removed() {
    let (_origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    for (method, body) in WITH_AND_WITHOUT_BODY {
        // Written by hand: a client library would not send all of these.
        let raw = format!(
            "{method} /fwd HTTP/1.1\r\n\
             Host: gateway.example\r\n\
             Connection: close, X-Hop-Named\r\n\
             X-Hop-Named: secret\r\n\
             Keep-Alive: timeout=5\r\n\
             TE: trailers\r\n\
             Trailer: X-Checksum\r\n\
             Upgrade: websocket\r\n\
             Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\
             Proxy-Connection: keep-alive\r\n\
             X-End-To-End: kept\r\n\
             Content-Length: {}\r\n\
             \r\n{body}",
            body.len()
        );
        let resp = raw_request(gw.addr, &raw).await;
        assert_eq!(resp.status, StatusCode::OK, "{method}: {}", resp.text());
        let echo = resp.json();
        let headers = echo["headers"].as_object().unwrap();
        for name in [
            "connection",
            "x-hop-named",
            "keep-alive",
            "te",
            "trailer",
            "upgrade",
            "proxy-authorization",
            "proxy-connection",
        ] {
            assert!(
                !headers.contains_key(name),
                "{method}: `{name}` reached the upstream: {echo}"
            );
        }
        assert_eq!(resp.echoed("x-end-to-end"), ["kept"], "{method}");
        assert_eq!(resp.echoed("x-forwarded-for"), ["127.0.0.1"], "{method}");
        assert_eq!(resp.echoed("host").len(), 1, "{method}: {echo}");
    }
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_removed() {
    let (origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    // The origin does send them.
    let direct = get(origin.addr, "/hop").await;
    assert_eq!(direct.header("x-hop-secret").as_deref(), Some("1"));
    assert_eq!(
        direct.header("proxy-authenticate").as_deref(),
        Some("Basic")
    );

    // Without a body the request goes through weir's own HTTP/1 client, which leaves them out
    // as it parses the head; with one through hyper's, after which the forwarder removes them.
    for (method, body) in WITH_AND_WITHOUT_BODY {
        let method: http::Method = method.parse().unwrap();
        let resp = Req::new(method.clone(), gw.addr, "/hop")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{method}");
        for name in ["x-hop-secret", "keep-alive", "proxy-authenticate"] {
            assert!(
                resp.header(name).is_none(),
                "{method}: `{name}` reached the client: {:?}",
                resp.headers
            );
        }
        assert!(
            !resp
                .header_all("connection")
                .iter()
                .any(|v| v.to_ascii_lowercase().contains("x-hop-secret")),
            "{method}: {:?}",
            resp.headers
        );
        assert_eq!(resp.header_all("x-kept"), ["1"], "{method}");
    }
}

#[tokio::test]
async fn x_forwarded_headers_from_an_untrusted_peer() {
    let (_origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    for (method, body) in WITH_AND_WITHOUT_BODY {
        let method: http::Method = method.parse().unwrap();
        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .header("Host", "client.example:8443")
            .header("X-Forwarded-For", "203.0.113.9")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "spoofed.example")
            .header("X-Forwarded-Port", "1")
            .header("Forwarded", "for=203.0.113.9;proto=https")
            .body(body)
            .send()
            .await;
        // What the client claimed is replaced: the peer is not a trusted proxy.
        assert_eq!(resp.echoed("x-forwarded-for"), ["127.0.0.1"], "{method}");
        assert!(
            resp.echoed("forwarded").is_empty(),
            "{method}: an untrusted Forwarded header is dropped"
        );
        assert_eq!(resp.echoed("x-forwarded-proto"), ["http"], "{method}");
        assert_eq!(
            resp.echoed("x-forwarded-host"),
            ["client.example:8443"],
            "{method}"
        );
        assert_eq!(resp.echoed("x-forwarded-port"), ["8443"], "{method}");

        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .header("Host", "client.example")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("x-forwarded-for"), ["127.0.0.1"], "{method}");
        assert_eq!(
            resp.echoed("x-forwarded-host"),
            ["client.example"],
            "{method}"
        );
        assert_eq!(resp.echoed("x-forwarded-port"), ["80"], "{method}");
        // An empty port is the default one.
        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .header("Host", "client.example:")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("x-forwarded-port"), ["80"], "{method}");
    }
    // HTTP/1.0 without Host: nothing to report, and the peer's claims go no further.
    let resp = raw_request(
        gw.addr,
        "GET /xf HTTP/1.0\r\nX-Forwarded-Host: spoofed.example\r\nX-Forwarded-Port: 1\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert!(
        resp.echoed("x-forwarded-host").is_empty(),
        "{}",
        resp.text()
    );
    assert!(
        resp.echoed("x-forwarded-port").is_empty(),
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn x_forwarded_prefix_from_an_untrusted_peer_is_not_forwarded() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: strip
    uri: http://${ORIGIN}
    predicates:
    - Path=/strip/**
    filters:
    - StripPrefix=1
  - id: all
    uri: http://${ORIGIN}
"#,
    )
    .await;
    for (method, body) in WITH_AND_WITHOUT_BODY {
        let method: http::Method = method.parse().unwrap();
        // Only a prefix weir removed itself is reported upstream.
        let resp = Req::new(method.clone(), gw.addr, "/plain")
            .header("X-Forwarded-Prefix", "/admin")
            .body(body)
            .send()
            .await;
        assert!(
            resp.echoed("x-forwarded-prefix").is_empty(),
            "{method}: {}",
            resp.text()
        );
        let resp = Req::new(method.clone(), gw.addr, "/strip/x")
            .header("X-Forwarded-Prefix", "/admin")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("x-forwarded-prefix"), ["/strip"], "{method}");
    }
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_is_appended() {
    let (_origin, gw) = origin_and_gateway(
        r#"
server:
  trusted-proxies: [127.0.0.1]
gateway:
  routes:
  - id: strip
    uri: http://${ORIGIN}
    predicates:
    - Path=/strip/**
    filters:
    - StripPrefix=1
  - id: all
    uri: http://${ORIGIN}
"#,
    )
    .await;
    for (method, body) in WITH_AND_WITHOUT_BODY {
        let method: http::Method = method.parse().unwrap();
        // A trusted proxy's prefix is kept, and one weir strips comes after it.
        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .header("X-Forwarded-Prefix", "/outer")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("x-forwarded-prefix"), ["/outer"], "{method}");
        let resp = Req::new(method.clone(), gw.addr, "/strip/x")
            .header("X-Forwarded-Prefix", "/outer")
            .body(body)
            .send()
            .await;
        assert_eq!(
            resp.echoed("x-forwarded-prefix"),
            ["/outer/strip"],
            "{method}"
        );

        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .header("X-Forwarded-For", "203.0.113.9, 198.51.100.2")
            .header("X-Forwarded-Proto", "https")
            .header("Forwarded", "for=203.0.113.9")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("forwarded"), ["for=203.0.113.9"], "{method}");
        assert_eq!(
            resp.echoed("x-forwarded-for"),
            ["203.0.113.9, 198.51.100.2, 127.0.0.1"],
            "{method}"
        );
        // What a trusted proxy says about the original request is kept.
        assert_eq!(resp.echoed("x-forwarded-proto"), ["https"], "{method}");

        // Unless its Connection header says the value is for this hop only.
        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .header("X-Forwarded-For", "203.0.113.9")
            .header("Connection", "X-Forwarded-For")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("x-forwarded-for"), ["127.0.0.1"], "{method}");

        let resp = Req::new(method.clone(), gw.addr, "/xf")
            .body(body)
            .send()
            .await;
        assert_eq!(resp.echoed("x-forwarded-for"), ["127.0.0.1"], "{method}");
        assert_eq!(resp.echoed("x-forwarded-proto"), ["http"], "{method}");
    }
}

#[tokio::test]
async fn query_string_is_forwarded_byte_for_byte() {
    let (_origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    for pq in [
        "/q?q=a%2Fb&x=%zz&empty=&flag",
        "/q?a=b?c&d=%E2%82%AC&plus=a+b&semi=1;2&%41=%61",
        "/q?",
        "/q?&&",
        "/q?x=%2e%2e%2F",
    ] {
        assert_eq!(get(gw.addr, pq).await.echoed_uri(), pq);
    }
}

#[tokio::test]
async fn paths_are_normalised_before_matching() {
    let (_origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: public
    uri: http://${ORIGIN}
    predicates:
    - Path=/public/**
"#,
    )
    .await;
    // Dot segments are resolved first, so they cannot climb out of the route's prefix...
    for path in [
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/%2E%2E/private/x",
        "/public/./../private",
    ] {
        let resp = get(gw.addr, path).await;
        assert_eq!(
            resp.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            resp.text()
        );
        let normal = resp.json()["path"].as_str().unwrap().to_string();
        assert!(normal.starts_with("/private"), "{path} -> {normal}");
    }
    // ...and what reaches the upstream is the normalised path.
    assert_eq!(
        get(gw.addr, "/public/./a/../b?x=/..").await.echoed_uri(),
        "/public/b?x=/.."
    );
    assert_eq!(get(gw.addr, "//public//x").await.echoed_uri(), "/public/x");
    assert_eq!(
        get(gw.addr, "/private/../public/y").await.echoed_uri(),
        "/public/y"
    );
    // An encoded slash is not a separator...
    assert_eq!(
        get(gw.addr, "/public/a%2Fb").await.echoed_uri(),
        "/public/a%2Fb"
    );
    // ...but a dot segment behind one would be to an upstream that decodes it: rejected.
    let resp = get(gw.addr, "/public/a%2F..%2Fb").await;
    assert_error_body(&resp, 400, "/public/a%2F..%2Fb", None);
}

#[tokio::test]
async fn upstream_host_is_the_uri_authority() {
    let (origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    let resp = Req::get(gw.addr, "/h")
        .header("Host", "public.example")
        .send()
        .await;
    assert_eq!(resp.echoed("host"), [origin.addr.to_string()]);
    let resp = get(gw.addr, "/h").await;
    assert_eq!(resp.echoed("host"), [origin.addr.to_string()]);
    assert_eq!(resp.echoed("x-forwarded-host"), [gw.addr.to_string()]);
    assert_eq!(
        resp.echoed("x-forwarded-port"),
        [gw.addr.port().to_string()]
    );
}

#[tokio::test]
async fn methods_and_bodies_pass_through() {
    let (_origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let resp = Req::new(method.parse().unwrap(), gw.addr, "/b")
            .header("Content-Type", "text/plain")
            .body(format!("body of {method}"))
            .send()
            .await;
        let echo = resp.json();
        assert_eq!(echo["method"], method);
        assert_eq!(echo["body"], format!("body of {method}"));
        assert_eq!(resp.echoed("content-type"), ["text/plain"]);
    }
    // The upstream's status comes through as it is.
    let resp = get(gw.addr, "/status/418").await;
    assert_eq!(resp.status.as_u16(), 418);
    assert_eq!(resp.echoed_uri(), "/status/418");
}

#[tokio::test]
async fn an_http2_request_with_prior_knowledge_is_served_and_forwarded_as_http1() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let (_origin, gw) = origin_and_gateway(ONE_ROUTE).await;
    let h2: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let uri: http::Uri = format!("http://{}/h2/items?x=1", gw.addr).parse().unwrap();
    let resp = tokio::time::timeout(WAIT, h2.get(uri))
        .await
        .expect("an answer")
        .expect("an HTTP/2 exchange");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // The upstream gets an HTTP/1.1 request in origin form, its Host from :authority.
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["uri"], "/h2/items?x=1");
    let host = gw.addr.to_string();
    assert_eq!(echo["headers"]["x-forwarded-host"][0], host.as_str());
    assert_eq!(echo["headers"]["x-forwarded-proto"][0], "http");
}
