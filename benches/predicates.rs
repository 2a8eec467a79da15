//! One request matched against each built-in predicate kind.
//!
//! `cargo bench --bench predicates`. Each kind is compiled from the shortcut form a user
//! writes, as a route of its own, and the request below is matched against that route (the
//! cost of the route's one predicate and of nothing else). Every case matches: a match is the
//! full cost, a miss often stops earlier.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use weir::compile::{build, Resources};
use weir::config::Source;
use weir_predicates::{Captures, RequestView};

/// The predicate kinds, each as a route's one predicate.
const KINDS: &[(&str, &str)] = &[
    ("Path literal", "Path=/api/v2/items/42/detail"),
    ("Path pattern", "Path=/api/{version}/items/**"),
    ("Host", "Host={sub}.example.org"),
    ("Header present", "Header=X-Tenant"),
    ("Header literal", "Header=X-Tenant, t42"),
    ("Header regex", "Header=X-Tenant, t\\d+"),
    ("Query regex", "Query=page, \\d+"),
    ("Method", "Method=GET,POST"),
    ("Cookie", "Cookie=session, abc.*"),
    ("RemoteAddr", "RemoteAddr=10.0.0.0/8, 127.0.0.1/32"),
    ("After", "After=2017-01-20T17:42:47.789-07:00[America/Denver]"),
    ("Before", "Before=2999-01-20T17:42:47.789-07:00[America/Denver]"),
    (
        "Between",
        "Between=2017-01-20T17:42:47.789-07:00[America/Denver], 2999-01-21T17:42:47.789-07:00[America/Denver]",
    ),
    ("Weight", "Weight=group, 8"),
    ("Number", "Number=1,3"),
];

fn config() -> String {
    let mut yaml = String::from("gateway:\n  routes:\n");
    for (i, (_, predicate)) in KINDS.iter().enumerate() {
        yaml.push_str(&format!(
            "    - id: k{i}\n      uri: http://127.0.0.1:1\n      predicates:\n      - {predicate}\n"
        ));
    }
    yaml
}

fn predicates(c: &mut Criterion) {
    let source = Source {
        name: Arc::from("bench.yaml"),
        text: config(),
    };
    let snapshot = build(&source, &Resources::default(), &|_| None).expect("bench config compiles");
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("gw.example.org"));
    headers.insert("x-tenant", HeaderValue::from_static("t42"));
    headers.insert(
        "cookie",
        HeaderValue::from_static("theme=dark; session=abc123"),
    );
    headers.insert("accept", HeaderValue::from_static("*/*"));
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let view = RequestView {
        method: &Method::GET,
        path: "/api/v2/items/42/detail",
        query: Some("page=3&number=3"),
        headers: &headers,
        host: Some("gw.example.org"),
        remote: peer,
        seed: 7,
    };
    let mut group = c.benchmark_group("predicate");
    for (i, (name, _)) in KINDS.iter().enumerate() {
        let id = format!("k{i}");
        let route = snapshot.table.get(&id).expect("the route is compiled");
        let mut captures = Captures::default();
        assert!(
            route.matches(&view, &mut captures),
            "{name} matches the request"
        );
        group.bench_function(*name, |b| {
            b.iter(|| {
                captures.truncate(0);
                black_box(route.matches(black_box(&view), &mut captures))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, predicates);
criterion_main!(benches);
