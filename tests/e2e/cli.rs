//! The `weir` command: help, version, the embedded default config, and `--config FILE`.

use http::StatusCode;
use serde_json::json;

use crate::support::*;

#[test]
fn help_and_version() {
    let out = run_weir(&["--help"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Usage: weir"), "{}", out.stdout);
    for word in ["check", "--config", "--listen", "--admin-listen"] {
        assert!(
            out.stdout.contains(word),
            "help lacks {word}: {}",
            out.stdout
        );
    }

    let out = run_weir(&["check", "--help"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("FILE"), "{}", out.stdout);

    let out = run_weir(&["--version"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("weir {}", env!("CARGO_PKG_VERSION"))
    );

    // A wrong flag is a usage error, not a start.
    let out = run_weir(&["--no-such-flag"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_arguments_runs_the_embedded_default() {
    let weir = spawn_weir(
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        &[("WEIR_METRICS_LISTEN", "127.0.0.1:0")],
    );
    // The log line is plain text: what log collectors and this test read.
    let line = weir
        .log
        .iter()
        .find(|l| l.contains("listening (gateway)"))
        .unwrap();
    assert!(
        line.contains(&format!("listening (gateway) address={}", weir.addr)),
        "{line:?}"
    );
    assert!(
        !line.contains('\u{1b}'),
        "escape codes in a piped log: {line:?}"
    );

    let resp = get(weir.admin, "/actuator/health").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.json(), json!({"status": "UP"}));

    let routes = get(weir.admin, "/actuator/gateway/routes").await.json();
    let ids: Vec<&str> = routes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["route_id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "function",
            "async-function",
            "system-functions",
            "system-function",
            "system-scale-function",
            "system-secrets",
            "system-logs",
            "system-namespaces",
            "system-namespace",
            "system-info",
            "system-alert",
            "healthz"
        ]
    );
    // Unrouted paths get the JSON 404 from the real binary too.
    let resp = get(weir.addr, "/not/an/openfaas/path").await;
    assert_error_body(&resp, 404, "/not/an/openfaas/path", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_flag_runs_that_file() {
    let origin = origin().await;
    let file = write_config(
        "run.yaml",
        r#"
server:
  listen: 127.0.0.1:0
admin:
  listen: 127.0.0.1:0
gateway:
  routes:
  - id: from-file
    uri: http://${ORIGIN}
    predicates:
    - Path=/file/**
    filters:
    - AddRequestHeader=X-From, ${WEIR_E2E_FROM}
"#,
    );
    let addr = origin.addr.to_string();
    let weir = spawn_weir(
        &["--config", file.to_str().unwrap()],
        &[("ORIGIN", &addr), ("WEIR_E2E_FROM", "environment")],
    );
    let resp = get(weir.addr, "/file/x?y=1").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.echoed_uri(), "/file/x?y=1");
    assert_eq!(resp.echoed("x-from"), ["environment"]);
    assert_eq!(get(weir.addr, "/other").await.status, StatusCode::NOT_FOUND);

    let routes = get(weir.admin, "/actuator/gateway/routes").await.json();
    assert_eq!(routes[0]["route_id"], "from-file");
}

#[test]
fn a_config_with_errors_does_not_start() {
    let file = write_config(
        "broken.yaml",
        "gateway:\n  routes:\n  - id: r\n    uri: http://127.0.0.1:9\n    predicates:\n    - Pth=/x\n",
    );
    let out = run_weir(
        &[
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `Path`"), "{}", out.stderr);
}
