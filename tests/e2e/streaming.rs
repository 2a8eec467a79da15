//! Large bodies stream through the real binary in both directions without being held in
//! memory: 1 GiB up and 1 GiB down, counted chunk by chunk on the far side, while weir's peak
//! resident memory stays small.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::support::*;

const GIB: u64 = 1 << 30;
/// weir's peak resident set must stay under this while 2 GiB pass through it.
const MAX_PEAK_KIB: u64 = 64 * 1024;
/// A bound on each transfer, so that a stall fails the test instead of hanging it.
const TRANSFER_LIMIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_up_and_down_through_weir_in_bounded_memory() {
    let origin = origin().await;
    let file = write_config(
        "stream.yaml",
        r#"
server:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
gateway:
  routes:
  - id: all
    uri: http://${ORIGIN}
"#,
    );
    let origin_addr = origin.addr.to_string();
    let weir = spawn_weir(
        &["--config", file.to_str().unwrap()],
        &[("ORIGIN", &origin_addr)],
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Payload>();

    // Upload: the client produces 1 GiB 64 KiB at a time; the origin counts what arrives.
    let request = Request::post(format!("http://{}/count", weir.addr))
        .body(Payload::new(GIB))
        .unwrap();
    let counted = tokio::time::timeout(TRANSFER_LIMIT, async {
        let response = client.request(request).await.expect("upload request");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("upload answer")
            .to_bytes();
        serde_json::from_slice::<serde_json::Value>(&body).expect("JSON answer")
    })
    .await
    .expect("the upload did not finish in time");
    assert_eq!(counted["bytes"].as_u64(), Some(GIB), "{counted}");

    // Download: the origin produces 1 GiB 64 KiB at a time; the client counts frames as they
    // arrive and keeps none of them.
    let request = Request::get(format!("http://{}/bytes/{GIB}", weir.addr))
        .body(Payload::new(0))
        .unwrap();
    let received = tokio::time::timeout(TRANSFER_LIMIT, async {
        let response = client.request(request).await.expect("download request");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.expect("download frame");
            if let Some(data) = frame.data_ref() {
                received += data.len() as u64;
            }
        }
        received
    })
    .await
    .expect("the download did not finish in time");
    assert_eq!(received, GIB);

    let peak = weir.status_kib("VmHWM");
    assert!(
        peak < MAX_PEAK_KIB,
        "weir's peak RSS was {peak} KiB; it must stay under {MAX_PEAK_KIB} KiB"
    );
}
