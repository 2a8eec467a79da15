//! A real Prometheus scraping weir's metrics listener, and a real AlertManager driving
//! `/system/alert`, both from Debian's packages (`prometheus`, `prometheus-alertmanager`),
//! on 127.0.0.1 only. `.ci/run` installs them; a local run without them skips loudly. In CI
//! (`CI=true`) a missing binary fails the test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::fake_provider::{basic, FakeProvider, Function, NS};
use crate::support::*;

const USER: &str = "admin";
const PASSWORD: &str = "alert-s3cret";

/// The binary, or `None` (after a loud message) when it is missing outside CI.
fn binary(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`{name}` is not installed; .ci/run installs it with apt-get");
        }
        eprintln!(
            "\n!!! SKIPPED: `{name}` is not installed (apt-get install prometheus prometheus-alertmanager); \
             this test runs in CI !!!\n"
        );
    }
    found
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn(binary: &Path, args: &[String], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    Proc(child)
}

/// Polls `check` every 100 ms for at most `limit`; on failure, shows `log`.
async fn within<T>(
    limit: Duration,
    what: &str,
    log: &Path,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("not within {limit:?}: {what}\n--- log ---\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET on a raw connection (the servers here are plain HTTP/1.1); `None` when it cannot connect.
async fn try_get(addr: SocketAddr, path: &str) -> Option<Resp> {
    let request = http::Request::get(format!("http://{addr}{path}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(5), client().request(request))
        .await
        .ok()?
        .ok()?;
    let (parts, body) = response.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .ok()?
        .to_bytes();
    Some(Resp {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

async fn faas_gateway(provider: &FakeProvider, dir: &Path) -> Gw {
    std::fs::write(dir.join("basic-auth-user"), USER).unwrap();
    std::fs::write(dir.join("basic-auth-password"), PASSWORD).unwrap();
    let mount = format!("{}/", dir.display());
    let url = provider.url();
    gateway(
        weir::config::EMBEDDED_DEFAULT,
        None,
        &[
            ("functions_provider_url", url.as_str()),
            ("function_namespace", NS),
            ("basic_auth", "true"),
            ("secret_mount_path", mount.as_str()),
            ("WEIR_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics_listener() {
    let Some(prometheus) = binary("prometheus") else {
        return;
    };
    let provider = FakeProvider::start().await;
    provider.require_auth(USER, PASSWORD);
    provider.add("echo", Function::ready(2));
    let dir = scratch_file("prometheus");
    std::fs::create_dir_all(&dir).unwrap();
    let gw = faas_gateway(&provider, &dir).await;
    let metrics = gw.running.metrics_addr().unwrap();
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/function/echo").await.status, StatusCode::OK);
    }
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: weir\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log = dir.join("prometheus.log");
    let _prometheus = spawn(
        &prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={addr}"),
        ],
        &log,
    );
    let series = within(
        WAIT,
        "Prometheus has the scraped function counter",
        &log,
        async || {
            let resp = try_get(
                addr,
                "/api/v1/query?query=gateway_function_invocation_total",
            )
            .await?;
            let body: Value = serde_json::from_slice(&resp.body).ok()?;
            let result = body["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        },
    )
    .await;
    assert_eq!(
        series[0]["metric"]["function_name"], "echo.openfaas-fn",
        "{series:?}"
    );
    assert_eq!(series[0]["metric"]["code"], "200");
    assert_eq!(series[0]["value"][1], "3");
    // The scrape itself was clean: the target is up, with no parse error.
    let resp = try_get(addr, "/api/v1/targets").await.expect("targets");
    let targets: Value = serde_json::from_slice(&resp.body).unwrap();
    let target = &targets["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");
    // Every OpenFaaS family and weir's own are there.
    for query in [
        "gateway_function_invocation_started",
        "gateway_functions_seconds_bucket",
        "gateway_service_count",
        "weir_requests_total",
    ] {
        within(WAIT, query, &log, async || {
            let resp = try_get(addr, &format!("/api/v1/query?query={query}")).await?;
            let body: Value = serde_json::from_slice(&resp.body).ok()?;
            (!body["data"]["result"].as_array()?.is_empty()).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_alertmanager_scales_functions_through_system_alert() {
    let Some(alertmanager) = binary("prometheus-alertmanager") else {
        return;
    };
    let provider = FakeProvider::start().await;
    provider.require_auth(USER, PASSWORD);
    provider.add("echo", Function::ready(1));
    let dir = scratch_file("alertmanager");
    std::fs::create_dir_all(&dir).unwrap();
    let gw = faas_gateway(&provider, &dir).await;
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            r#"route:
  receiver: weir
  group_by: [alertname, function_name]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: weir
    webhook_configs:
      - url: http://{}/system/alert
        send_resolved: true
        http_config:
          basic_auth:
            username: {USER}
            password: {PASSWORD}
"#,
            gw.addr
        ),
    )
    .unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log = dir.join("alertmanager.log");
    let _alertmanager = spawn(
        &alertmanager,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.path={}", dir.join("data").display()),
            format!("--web.listen-address={addr}"),
            "--cluster.listen-address=".to_string(),
        ],
        &log,
    );
    within(WAIT, "AlertManager is ready", &log, async || {
        try_get(addr, "/-/ready")
            .await
            .filter(|r| r.status == StatusCode::OK)
    })
    .await;
    let post_alert = |ends_at: Option<String>| {
        let mut alert = json!({
            "labels": {"alertname": "APIHighInvocationRate", "function_name": "echo", "service": "gateway"},
            "annotations": {"description": "High invocation total on echo"},
        });
        if let Some(ends) = ends_at {
            alert["endsAt"] = json!(ends);
        }
        Req::new(Method::POST, addr, "/api/v2/alerts")
            .header("content-type", "application/json")
            .body(json!([alert]).to_string())
            .send()
    };
    let resp = post_alert(None).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    // Firing: 1 + ceil(20 * 20 / 100) = 5.
    within(
        WAIT,
        "the firing alert scaled echo to 5",
        &log,
        async || (provider.function("echo")?.replicas == 5).then_some(()),
    )
    .await;
    let scale = provider.calls_to(Method::POST, "/system/scale-function/echo");
    assert_eq!(
        scale[0].authorization.as_deref(),
        Some(basic(&format!("{USER}:{PASSWORD}")).as_str())
    );
    // Resolved: back to the minimum.
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1);
    let resp = post_alert(Some(past.to_string())).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    within(
        WAIT,
        "the resolved alert scaled echo back to 1",
        &log,
        async || (provider.function("echo")?.replicas == 1).then_some(()),
    )
    .await;
}
