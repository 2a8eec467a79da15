//! RewritePath, as a route runs it: a regexp line, a replacement line, then request paths
//! (normalised first, as the gateway does).
#![no_main]

use std::sync::Arc;

use http::Request;
use libfuzzer_sys::fuzz_target;
use weir_filters::rewrite_path::RewritePathFactory;
use weir_filters::{
    Args, Body, Exchange, Filter, FilterContext, FilterFactory, HttpService, StateStore, Upstreams,
};

struct NoUpstreams;

impl Upstreams for NoUpstreams {
    fn forward(&self, _: &str) -> HttpService {
        unreachable!("RewritePath reaches no upstream")
    }

    fn uri(&self, _: &str) -> Result<HttpService, String> {
        Err("no upstreams here".to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let (Some(regexp), Some(replacement)) = (lines.next(), lines.next()) else {
        return;
    };
    let args = Args::expanded(
        "RewritePath",
        RewritePathFactory.shortcut(),
        vec![
            ("regexp".to_string(), regexp.to_string()),
            ("replacement".to_string(), replacement.to_string()),
        ],
    );
    let state = StateStore::default();
    let ctx = FilterContext::new("r", &[], &state, 1, &NoUpstreams);
    let Ok(Filter::Edit(filter)) = RewritePathFactory.build(&args, &ctx) else {
        return;
    };
    for path in lines {
        // The gateway's guard lets only paths through (and `*`, answered before routing).
        if !path.starts_with('/') {
            continue;
        }
        let Ok(normal) = weir::proxy::normalize::normalize_path(path) else {
            continue;
        };
        let Ok(uri) = http::Uri::try_from(&*normal) else {
            continue;
        };
        let mut request = Request::new(Body::Empty);
        *request.uri_mut() = uri;
        let mut exchange = Exchange {
            request,
            vars: Default::default(),
            client: ([127, 0, 0, 1], 1).into(),
            tls: false,
            route_id: Arc::from("r"),
            preserve_host: false,
            stripped_prefix: None,
            request_id: 0,
            forwards: 0,
            balance: Default::default(),
            tried_instances: None,
            cut_off: None,
        };
        // Either a rewritten path that is a valid URI path, or a 400.
        match filter.request(&mut exchange) {
            Ok(()) => assert!(exchange.path().starts_with('/'), "{:?}", exchange.path()),
            Err(response) => assert_eq!(response.status(), 400),
        }
    }
});
