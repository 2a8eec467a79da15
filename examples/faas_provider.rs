//! A minimal OpenFaaS provider for load tests (`benches/load/openfaas.sh`): every function
//! exists with one ready replica, and invoking one answers a 6-byte body.
//!
//! ```sh
//! cargo run --release --example faas_provider -- 127.0.0.1:18081
//! ```
//! It serves `GET /system/function/{name}` (status: ready), `GET /system/functions` (`[]`),
//! `GET /system/namespaces` (404, as faasd answers), `GET /healthz` and any method on
//! `/function/{name}/...`. Listen on loopback only.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    let (status, body): (StatusCode, Bytes) =
        if let Some(name) = path.strip_prefix("/system/function/") {
            let status = serde_json::json!({"name": name, "replicas": 1, "availableReplicas": 1});
            (StatusCode::OK, Bytes::from(status.to_string()))
        } else if path == "/system/functions" {
            (StatusCode::OK, Bytes::from_static(b"[]"))
        } else if path.starts_with("/function/") {
            (StatusCode::OK, Bytes::from_static(b"hello\n"))
        } else if path == "/healthz" {
            (StatusCode::OK, Bytes::from_static(b"OK"))
        } else {
            (StatusCode::NOT_FOUND, Bytes::new())
        };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    Ok(response)
}

fn main() {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()
        .expect("HOST:PORT");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        eprintln!("faas_provider listening on {addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    });
}
