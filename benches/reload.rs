//! Hot-reload benchmarks (not timed tests): `cargo bench --bench reload`.
//!
//! - compile-and-swap: read, compile and publish a config of 1,000 and 10,000 routes, as a
//!   reload does (median of 5 runs each);
//! - save-to-effect: over 100 saves of a watched file with the default 200 ms debounce, the
//!   time from the write to the first request answered by the new table (p50, p99, max).
//!
//! Traffic goes only to 127.0.0.1, and every wait is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir::compile::{build, Resources};
use weir::config::Source;
use weir::Gateway;

/// The allocator the `weir` binary uses.
#[global_allocator]
static ALLOCATOR: weir::alloc::MiMalloc = weir::alloc::MiMalloc;

/// `n` routes of the four shapes the routing bench uses.
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
            "    - id: r{i}\n      uri: http://127.0.0.1:{}\n      predicates:\n{predicates}\n      filters:\n        - StripPrefix=1\n",
            10000 + i % 1000
        ));
    }
    yaml
}

fn compile_and_swap() {
    let resources = Resources::default();
    let first = build(
        &Source {
            name: Arc::from("bench.yaml"),
            text: config(1),
        },
        &resources,
        &|_| None,
    )
    .expect("compiles");
    let current = ArcSwap::from_pointee(first);
    for n in [1_000usize, 10_000] {
        let text = config(n);
        let mut times: Vec<Duration> = (0..5)
            .map(|_| {
                let start = Instant::now();
                let source = Source {
                    name: Arc::from("bench.yaml"),
                    text: text.clone(),
                };
                let snapshot = build(&source, &resources, &|_| None).expect("compiles");
                let generation = snapshot.generation;
                let replaced = current.swap(Arc::new(snapshot));
                resources.state.retain(generation);
                let elapsed = start.elapsed();
                // As the reloader does: the old table is freed aside, after the swap.
                std::thread::spawn(move || drop(replaced));
                elapsed
            })
            .collect();
        times.sort();
        println!(
            "compile-and-swap {n:>6} routes: median {:>7.1} ms (min {:.1}, max {:.1})",
            ms(times[2]),
            ms(times[0]),
            ms(times[4])
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One HTTP/1.1 GET on a fresh connection; returns the status.
async fn status(addr: SocketAddr) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.expect("read");
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn route(status: u16) -> String {
    format!("gateway:\n  routes:\n    - id: only\n      uri: no://op\n      filters:\n        - SetStatus={status}\n")
}

async fn save_to_effect() {
    let dir = std::env::temp_dir().join(format!("weir-reload-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("routes.yaml");
    std::fs::write(&path, route(200)).expect("write");
    let gateway = Gateway::builder()
        .config_file(&path)
        .listen(([127, 0, 0, 1], 0).into())
        .admin_listen(([127, 0, 0, 1], 0).into())
        .env(|_| None)
        .start()
        .await
        .expect("gateway starts");
    let addr = gateway.listen_addr();
    let mut times = Vec::with_capacity(100);
    for i in 0..100u16 {
        let want = 201 + i % 2;
        let start = Instant::now();
        std::fs::write(&path, route(want)).expect("write");
        loop {
            if status(addr).await == want {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "save {i} never took effect"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "save-to-effect over 100 saves (debounce 200 ms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        ms(times[49]),
        ms(times[98]),
        ms(times[99])
    );
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    compile_and_swap();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(save_to_effect());
}
