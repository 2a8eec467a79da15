//! The filter chain alone, without network: a route's filters around an inner service that
//! answers at once. `cargo bench --bench chain`.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use weir_filters::{
    Args, Body, Captures, Exchange, FilterContext, HttpService, StateStore, Upstreams,
};

/// The allocator the `weir` binary uses.
#[global_allocator]
static ALLOCATOR: weir::alloc::MiMalloc = weir::alloc::MiMalloc;

struct NoUpstreams;

impl Upstreams for NoUpstreams {
    fn forward(&self, _: &str) -> HttpService {
        answer()
    }
    fn uri(&self, _: &str) -> Result<HttpService, String> {
        Ok(answer())
    }
}

fn answer() -> HttpService {
    HttpService::from_fn(|_| async { Response::new(Body::Empty) })
}

/// A filter as its YAML name and shortcut values.
type Entry<'a> = (&'a str, &'a [&'a str]);

fn chain(filters: &[Entry<'_>]) -> HttpService {
    let factories = weir_filters::builtins();
    let state = StateStore::default();
    let generation = state.begin();
    let ctx = FilterContext::new("bench", &[], &state, generation, &NoUpstreams);
    let built: Vec<_> = filters
        .iter()
        .map(|(name, values)| {
            let factory = factories
                .iter()
                .find(|f| f.name() == *name)
                .expect("known filter");
            let args = Args::shortcut(
                name,
                factory.shortcut(),
                values.iter().map(|v| v.to_string()).collect(),
            )
            .expect("valid args");
            factory.build(&args, &ctx).expect("builds")
        })
        .collect();
    weir_filters::chain(&built, answer())
}

fn exchange() -> Exchange {
    let mut request = Request::new(Body::Empty);
    *request.uri_mut() = "/api/items/42?x=1".parse().unwrap();
    for (k, v) in [
        ("host", "gw.example.org"),
        ("user-agent", "wrk"),
        ("accept", "*/*"),
        ("x-request-id", "abc"),
    ] {
        request.headers_mut().insert(k, v.parse().unwrap());
    }
    Exchange {
        request,
        vars: Captures::default(),
        client: "127.0.0.1:40000".parse().unwrap(),
        tls: false,
        route_id: Arc::from("bench"),
        preserve_host: false,
        stripped_prefix: None,
        request_id: 1,
        forwards: 0,
        balance: Default::default(),
        tried_instances: None,
        cut_off: None,
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("chain");
    let cases: [(&str, Vec<Entry<'_>>); 6] = [
        ("none", vec![]),
        (
            "header_edits",
            vec![
                ("AddRequestHeader", &["X-A", "1"]),
                ("StripPrefix", &["1"]),
                ("AddResponseHeader", &["X-B", "2"]),
            ],
        ),
        ("load_balancer", vec![("LoadBalancer", &["round-robin"])]),
        ("circuit_breaker", vec![("CircuitBreaker", &["b"])]),
        ("retry", vec![("Retry", &["3"])]),
        (
            "lb_cb_retry",
            vec![
                ("LoadBalancer", &["round-robin"]),
                ("CircuitBreaker", &["b"]),
                ("Retry", &["3"]),
            ],
        ),
    ];
    for (name, filters) in cases {
        let service = chain(&filters);
        group.bench_function(name, |b| {
            b.iter(|| black_box(runtime.block_on(service.handle(exchange())).status()))
        });
    }
    group.finish();
}

criterion_group!(chain_benches, benches);
criterion_main!(chain_benches);
