//! Route selection and compilation.
//!
//! `cargo bench --bench routing`. Route selection is measured for the last route of the table
//! (the worst case for a first-match scan) at 10, 1,000 and 10,000 routes; compilation at
//! 1,000 and 10,000 routes.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use http::{HeaderMap, HeaderValue, Method};
use weir::compile::{build, Resources};
use weir::config::Source;
use weir_predicates::{Captures, RequestView};

/// A config of `n` routes mixing literal paths, `{var}` segments, `**`, Host and Header
/// predicates.
fn config(n: usize) -> String {
    let mut yaml = String::from("gateway:\n  routes:\n");
    for i in 0..n {
        let predicates = match i % 4 {
            0 => format!("      - Path=/svc{i}/**"),
            1 => format!("      - Path=/api/v1/svc{i}/{{id}}"),
            2 => format!("      - Path=/host{i}/**\n      - Host={{sub}}.svc{i}.example.org"),
            _ => format!("      - Path=/hdr{i}/items/**\n      - Header=X-Tenant, t{i}"),
        };
        yaml.push_str(&format!(
            "    - id: r{i}\n      uri: http://127.0.0.1:{}\n      predicates:\n{predicates}\n",
            10000 + i % 1000
        ));
    }
    yaml
}

fn source(n: usize) -> Source {
    Source {
        name: Arc::from("bench.yaml"),
        text: config(n),
    }
}

fn selection(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_selection");
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    for n in [10usize, 1_000, 10_000] {
        let snapshot =
            build(&source(n), &Resources::default(), &|_| None).expect("bench config compiles");
        // The last Header route: the worst case for a scan (nearly every route is tried).
        let last = (0..n).rev().find(|i| i % 4 == 3).expect("a header route");
        let expected = format!("r{last}");
        let path = format!("/hdr{last}/items/42");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-tenant",
            HeaderValue::from_str(&format!("t{last}")).unwrap(),
        );
        headers.insert("host", HeaderValue::from_static("gw.example.org"));
        group.bench_with_input(BenchmarkId::new("last_route", n), &n, |b, _| {
            let mut captures = Captures::default();
            b.iter(|| {
                let view = RequestView {
                    method: &Method::GET,
                    path: black_box(&path),
                    query: None,
                    headers: &headers,
                    host: Some("gw.example.org"),
                    remote: peer,
                    seed: 7,
                };
                let route = snapshot.table.find(&view, &mut captures);
                assert!(route.is_some_and(|r| *r.id == *expected));
                black_box(route.map(|r| r.order))
            })
        });
    }
    group.finish();
}

fn compilation(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        let src = source(n);
        let resources = Resources::default();
        group.bench_with_input(BenchmarkId::new("routes", n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    build(&src, &resources, &|_| None)
                        .expect("compiles")
                        .table
                        .routes()
                        .len(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, selection, compilation);
criterion_main!(benches);
