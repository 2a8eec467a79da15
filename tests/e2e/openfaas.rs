//! weir's default config as a drop-in OpenFaaS gateway, against a fake provider that speaks
//! the faas-provider HTTP contract: every route with and without credentials, scale from zero,
//! idle scale-down, AlertManager scaling, metrics, log streaming, and faas-cli's own calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::fake_provider::{basic, FakeProvider, Function, NS};
use crate::support::*;

const USER: &str = "admin";
const PASSWORD: &str = "s3cr3t-passw0rd";

fn auth() -> String {
    basic(&format!("{USER}:{PASSWORD}"))
}

/// A fake provider and weir's embedded default config in front of it.
struct Faas {
    provider: FakeProvider,
    gw: Gw,
    metrics: SocketAddr,
    secrets: PathBuf,
}

fn secret_dir() -> PathBuf {
    let dir = scratch_file("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    // Trailing whitespace, as `echo` and Kubernetes secrets leave it: trimmed, as OpenFaaS does.
    std::fs::write(dir.join("basic-auth-user"), format!("{USER}\n")).unwrap();
    std::fs::write(dir.join("basic-auth-password"), format!("{PASSWORD}\n")).unwrap();
    dir
}

async fn faas_with(basic_auth: bool, provider_url: Option<String>) -> Faas {
    let provider = FakeProvider::start().await;
    if basic_auth {
        provider.require_auth(USER, PASSWORD);
    }
    let secrets = secret_dir();
    let url = provider_url.unwrap_or_else(|| provider.url());
    let dir = format!("{}/", secrets.display());
    let gw = gateway(
        weir::config::EMBEDDED_DEFAULT,
        None,
        &[
            ("functions_provider_url", url.as_str()),
            ("function_namespace", NS),
            ("basic_auth", if basic_auth { "true" } else { "false" }),
            ("secret_mount_path", dir.as_str()),
            ("WEIR_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let metrics = gw
        .running
        .metrics_addr()
        .expect("the default config has a metrics listener");
    Faas {
        provider,
        gw,
        metrics,
        secrets,
    }
}

async fn faas(basic_auth: bool) -> Faas {
    faas_with(basic_auth, None).await
}

/// Polls `check` every 20 ms until it holds, for at most [`WAIT`].
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every (method, path, body) of the /system routes, with a status the provider answers.
fn system_calls() -> Vec<(Method, &'static str, &'static str)> {
    vec![
        (Method::GET, "/system/functions", ""),
        (
            Method::POST,
            "/system/functions",
            r#"{"service":"new","image":"i"}"#,
        ),
        (
            Method::PUT,
            "/system/functions",
            r#"{"service":"echo","image":"i"}"#,
        ),
        (
            Method::DELETE,
            "/system/functions",
            r#"{"functionName":"gone"}"#,
        ),
        (Method::GET, "/system/function/echo", ""),
        (
            Method::POST,
            "/system/scale-function/echo",
            r#"{"serviceName":"echo","replicas":1}"#,
        ),
        (Method::GET, "/system/secrets", ""),
        (
            Method::POST,
            "/system/secrets",
            r#"{"name":"s","value":"v"}"#,
        ),
        (
            Method::PUT,
            "/system/secrets",
            r#"{"name":"s","value":"v"}"#,
        ),
        (Method::DELETE, "/system/secrets", r#"{"name":"s"}"#),
        (Method::GET, "/system/namespaces", ""),
        (Method::GET, "/system/namespace/openfaas-fn", ""),
        (
            Method::POST,
            "/system/namespace/team-a",
            r#"{"name":"team-a"}"#,
        ),
        (
            Method::PUT,
            "/system/namespace/team-a",
            r#"{"name":"team-a"}"#,
        ),
        (Method::DELETE, "/system/namespace/team-a", ""),
        (Method::GET, "/system/info", ""),
        (
            Method::POST,
            "/system/alert",
            r#"{"status":"firing","alerts":[]}"#,
        ),
    ]
}

fn setup_functions(provider: &FakeProvider) {
    provider.add("echo", Function::ready(1));
    provider.add("gone", Function::ready(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_routes_want_credentials_and_the_provider_gets_valid_ones() {
    let f = faas(true).await;
    setup_functions(&f.provider);
    for (method, path, body) in system_calls() {
        for bad in [
            None,
            Some(basic(&format!("{USER}:wrong"))),
            Some(basic(&format!("nobody:{PASSWORD}"))),
            Some("Bearer x".to_string()),
        ] {
            let mut req = Req::new(method.clone(), f.gw.addr, path).body(body);
            if let Some(value) = &bad {
                req = req.header("authorization", value);
            }
            let resp = req.send().await;
            assert_eq!(
                resp.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {bad:?}: {}",
                resp.text()
            );
            assert_eq!(
                resp.header("www-authenticate").as_deref(),
                Some("Basic realm=\"Restricted\"")
            );
            assert_eq!(resp.text(), "invalid credentials");
        }
        let before = f.provider.calls().len();
        let resp = Req::new(method.clone(), f.gw.addr, path)
            .header("authorization", &auth())
            .body(body)
            .send()
            .await;
        assert!(
            resp.status.is_success(),
            "{method} {path}: {} {}",
            resp.status,
            resp.text()
        );
        // The provider wants the credentials too: a 2xx from it means it got valid ones.
        for call in &f.provider.calls()[before..] {
            assert_eq!(
                call.authorization.as_deref(),
                Some(auth().as_str()),
                "{call:?}"
            );
        }
    }
    // Functions and health need no credentials.
    let resp = get(f.gw.addr, "/function/echo").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(get(f.gw.addr, "/healthz").await.status, StatusCode::OK);
    // No credential appears on the admin API.
    let routes = admin_get(&f.gw, "/actuator/gateway/routes").await.text();
    assert!(!routes.contains(PASSWORD), "{routes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_basic_auth_the_system_routes_are_open() {
    let f = faas(false).await;
    setup_functions(&f.provider);
    for (method, path, body) in system_calls() {
        let resp = Req::new(method.clone(), f.gw.addr, path)
            .body(body)
            .send()
            .await;
        assert!(
            resp.status.is_success(),
            "{method} {path}: {} {}",
            resp.status,
            resp.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_are_forwarded_unchanged_with_call_ids() {
    let f = faas(true).await;
    f.provider.add("echo", Function::ready(1));
    f.provider.add("dev.figlet.team-a", Function::ready(1));
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ] {
        let resp = Req::new(method.clone(), f.gw.addr, "/function/echo/a/b?q=1&r=%20x")
            .header("authorization", "Bearer the-functions-own")
            .body("payload")
            .send()
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{method}: {}", resp.text());
        let echo = resp.json();
        assert_eq!(echo["function"], "echo");
        assert_eq!(echo["method"], method.as_str());
        assert_eq!(echo["path"], "/a/b");
        assert_eq!(echo["query"], "q=1&r=%20x");
        assert_eq!(echo["headers"]["authorization"], "Bearer the-functions-own");
        let call_id = resp.header("x-call-id").expect("X-Call-Id on the response");
        assert_eq!(echo["headers"]["x-call-id"], call_id.as_str());
        assert_eq!(call_id.len(), 36, "{call_id}");
        let start = resp.header("x-start-time").expect("X-Start-Time");
        assert!(start.parse::<u64>().is_ok(), "{start}");
        assert_eq!(echo["headers"]["x-start-time"], start.as_str());
        assert_eq!(
            resp.header("x-served-by"),
            Some(format!("weir/{}", env!("CARGO_PKG_VERSION")))
        );
    }
    // The client's own call id is kept and echoed.
    let resp = Req::get(f.gw.addr, "/function/echo")
        .header("x-call-id", "mine-1")
        .send()
        .await;
    assert_eq!(resp.header("x-call-id").as_deref(), Some("mine-1"));
    assert_eq!(resp.json()["headers"]["x-call-id"], "mine-1");
    for path in [
        "/function/echo",
        "/function/echo/",
        "/function/echo.openfaas-fn/x",
    ] {
        assert_eq!(get(f.gw.addr, path).await.status, StatusCode::OK, "{path}");
    }
    // `name.namespace` splits at the last dot; the path reaches the provider unchanged.
    let resp = get(f.gw.addr, "/function/dev.figlet.team-a/x").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!(resp.json()["function"], "dev.figlet.team-a");
    assert!(!f
        .provider
        .calls_to(Method::GET, "/system/function/dev.figlet?namespace=team-a")
        .is_empty());
    // A name outside [-a-zA-Z_0-9.] is no function route.
    assert_eq!(
        get(f.gw.addr, "/function/ec:ho").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_get_405_and_unknown_paths_404() {
    let f = faas(true).await;
    for (method, path, allow) in [
        (Method::PATCH, "/system/functions", "GET, POST, PUT, DELETE"),
        (Method::POST, "/system/info", "GET"),
        (Method::GET, "/system/alert", "POST"),
        (Method::GET, "/system/scale-function/echo", "POST"),
        (Method::DELETE, "/system/function/echo", "GET"),
        (Method::POST, "/system/logs", "GET"),
        (Method::PUT, "/system/namespaces", "GET"),
        (
            Method::PATCH,
            "/system/namespace/x",
            "GET, POST, PUT, DELETE",
        ),
        (Method::HEAD, "/healthz", "GET"),
        (Method::POST, "/healthz", "GET"),
        (Method::GET, "/async-function/echo", "POST"),
    ] {
        let resp = Req::new(method.clone(), f.gw.addr, path).send().await;
        assert_eq!(
            resp.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(
            resp.header("allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
    }
    for path in ["/system/nope", "/system", "/nope", "/", "/metrics"] {
        let resp = Req::new(Method::POST, f.gw.addr, path).send().await;
        assert_error_body(&resp, 404, path, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_requests_are_checked_and_forwarded_as_asked() {
    let f = faas(false).await;
    f.provider.add("echo", Function::ready(1));
    for bad in [
        "not json",
        "[1]",
        r#"{"replicas":-1}"#,
        r#"{"replicas":"2"}"#,
        "",
    ] {
        let resp = Req::new(Method::POST, f.gw.addr, "/system/scale-function/echo")
            .body(bad)
            .send()
            .await;
        assert_error_body(
            &resp,
            400,
            "/system/scale-function/echo",
            Some("system-scale-function"),
        );
    }
    assert!(f
        .provider
        .calls_to(Method::POST, "/system/scale-function")
        .is_empty());
    for replicas in [50, 0] {
        let body = format!(r#"{{"serviceName":"echo","replicas":{replicas}}}"#);
        let resp = Req::new(Method::POST, f.gw.addr, "/system/scale-function/echo")
            .body(body.clone())
            .send()
            .await;
        assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text());
        assert_eq!(
            f.provider.function("echo").unwrap().replicas,
            replicas,
            "no clamp"
        );
        assert_eq!(
            f.provider
                .calls_to(Method::POST, "/system/scale-function/echo")
                .last()
                .unwrap()
                .body,
            body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_info_has_the_openfaas_shape_even_with_the_provider_down() {
    let f = faas(true).await;
    let resp = Req::get(f.gw.addr, "/system/info")
        .header("authorization", &auth())
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let info = resp.json();
    assert_eq!(info["provider"]["provider"], "fake-provider");
    assert_eq!(info["provider"]["orchestration"], "test");
    assert_eq!(info["version"]["release"], env!("CARGO_PKG_VERSION"));
    assert!(info["version"]["sha"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    assert!(info["arch"].as_str().is_some_and(|s| !s.is_empty()));

    let down = refused();
    let f = faas_with(false, Some(format!("http://{}/", down.addr))).await;
    let resp = get(f.gw.addr, "/system/info").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.json()["provider"], Value::Null);
    assert_eq!(resp.json()["version"]["release"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_cold_requests_make_one_scale_call() {
    let f = faas(true).await;
    f.provider
        .add("cold", Function::cold(Duration::from_millis(300)));
    f.provider.add(
        "warm-min",
        Function::cold(Duration::from_millis(50)).label("com.openfaas.scale.min", "3"),
    );
    let client = client();
    let mut requests = Vec::new();
    for i in 0..100 {
        let client = client.clone();
        let addr = f.gw.addr;
        requests.push(tokio::spawn(async move {
            Req::new(Method::POST, addr, &format!("/function/cold?i={i}"))
                .body("x")
                .send_with(&client)
                .await
        }));
    }
    for request in requests {
        let resp = request.await.unwrap();
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        assert_eq!(resp.json()["function"], "cold");
    }
    let scales = f
        .provider
        .calls_to(Method::POST, "/system/scale-function/cold");
    assert_eq!(scales.len(), 1, "{scales:?}");
    assert_eq!(
        scales[0].uri,
        "/system/scale-function/cold?namespace=openfaas-fn"
    );
    let body: Value = serde_json::from_str(&scales[0].body).unwrap();
    assert_eq!(body["serviceName"], "cold");
    assert_eq!(body["replicas"], 1);
    assert_eq!(scales[0].authorization.as_deref(), Some(auth().as_str()));

    // Scaled up to com.openfaas.scale.min.
    assert_eq!(
        get(f.gw.addr, "/function/warm-min").await.status,
        StatusCode::OK
    );
    let scales = f
        .provider
        .calls_to(Method::POST, "/system/scale-function/warm-min");
    assert_eq!(
        serde_json::from_str::<Value>(&scales[0].body).unwrap()["replicas"],
        3
    );

    // An unknown function: 404 naming it; the provider is never asked to scale it.
    let resp = get(f.gw.addr, "/function/nope").await;
    assert_error_body(&resp, 404, "/function/nope", Some("function"));
    assert!(
        resp.json()["message"]
            .as_str()
            .unwrap()
            .contains("nope.openfaas-fn"),
        "{}",
        resp.text()
    );
    assert!(f
        .provider
        .calls_to(Method::POST, "/system/scale-function/nope")
        .is_empty());
}

/// A function route with ScaleFromZero bounded tightly, for the timing-dependent cases.
fn scaling_config(extra: &str) -> String {
    format!(
        r#"
gateway:
  routes:
    - id: function
      uri: http://${{PROVIDER}}
      predicates:
        - Path=/function/{{name:[-a-zA-Z_0-9.]+}},/function/{{name:[-a-zA-Z_0-9.]+}}/**
      filters:
        - name: ScaleFromZero
          args:
            provider: http://${{PROVIDER}}/
            namespace: openfaas-fn
            poll-interval: 20ms
            {extra}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_never_gets_ready_gets_503_within_the_bound() {
    let provider = FakeProvider::start().await;
    provider.add(
        "stuck",
        Function {
            never_ready: true,
            ..Default::default()
        },
    );
    let addr = provider.addr.to_string();
    let gw = gateway(
        &scaling_config("max-wait: 500ms"),
        None,
        &[("PROVIDER", &addr)],
    )
    .await;
    let resp = get(gw.addr, "/function/stuck").await;
    assert_error_body(&resp, 503, "/function/stuck", Some("function"));
    let message = resp.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("stuck.openfaas-fn")
            && message.contains("did not become ready within 0.500s"),
        "{message}"
    );
    assert_eq!(
        provider
            .calls_to(Method::POST, "/system/scale-function/stuck")
            .len(),
        1
    );
    // Never forwarded to the function.
    assert!(provider.calls_to(Method::GET, "/function/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_functions_are_scaled_to_zero() {
    let provider = FakeProvider::start().await;
    provider.add(
        "idle",
        Function::ready(2)
            .label("com.openfaas.scale.zero", "true")
            .label("com.openfaas.scale.zero-duration", "1s"),
    );
    provider.add("kept", Function::ready(1));
    provider.add(
        "unlabelled-zero",
        Function::ready(1).label("com.openfaas.scale.zero", "false"),
    );
    let addr = provider.addr.to_string();
    let gw = gateway(
        &scaling_config("idle-check-interval: 100ms"),
        None,
        &[("PROVIDER", &addr)],
    )
    .await;
    eventually("the idle function is scaled to zero", async || {
        provider.function("idle").unwrap().replicas == 0
    })
    .await;
    let scales = provider.calls_to(Method::POST, "/system/scale-function/idle");
    assert_eq!(scales.len(), 1, "{scales:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&scales[0].body).unwrap()["replicas"],
        0
    );
    assert_eq!(provider.function("kept").unwrap().replicas, 1);
    assert_eq!(provider.function("unlabelled-zero").unwrap().replicas, 1);
    // The next invocation scales it up again.
    let resp = get(gw.addr, "/function/idle").await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert!(provider.function("idle").unwrap().replicas >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_namespace_a_function_in_use_is_not_scaled_down() {
    // The provider lists its functions in its default namespace; weir, given none, sends bare
    // names. Invocations of `busy` must still count for `busy.openfaas-fn`.
    let provider = FakeProvider::start().await;
    for name in ["busy", "idle"] {
        provider.add(
            name,
            Function::ready(1)
                .label("com.openfaas.scale.zero", "true")
                .label("com.openfaas.scale.zero-duration", "1s"),
        );
    }
    let addr = provider.addr.to_string();
    let config = r#"
gateway:
  routes:
    - id: function
      uri: http://${PROVIDER}
      predicates:
        - Path=/function/{name:[-a-zA-Z_0-9.]+},/function/{name:[-a-zA-Z_0-9.]+}/**
      filters:
        - name: ScaleFromZero
          args:
            provider: http://${PROVIDER}/
            idle-check-interval: 100ms
"#;
    let gw = gateway(config, None, &[("PROVIDER", &addr)]).await;
    // `busy` is invoked every 100 ms until `idle`, untouched since weir started, has been
    // scaled down (after its 1 s, at the latest one check later), then through five more
    // checks: a check that wrongly found `busy` idle too may come just after `idle`'s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = 0;
    while after < 5 {
        assert!(
            Instant::now() < deadline,
            "the idle function was never scaled down"
        );
        let resp = get(gw.addr, "/function/busy").await;
        assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
        if provider.function("idle").unwrap().replicas == 0 {
            after += 1;
        }
    }
    assert_eq!(provider.function("busy").unwrap().replicas, 1);
    assert!(provider
        .calls_to(Method::POST, "/system/scale-function/busy")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_scale_functions_up_and_down() {
    let f = faas(true).await;
    let p = &f.provider;
    p.add("a", Function::ready(1)); // defaults: max 20, factor 20 -> step 4
    p.add(
        "b",
        Function::ready(1)
            .label("com.openfaas.scale.max", "3")
            .label("com.openfaas.scale.factor", "1"),
    ); // ceil(0.03) = 1
    p.add(
        "c",
        Function::ready(4).label("com.openfaas.scale.factor", "0"),
    ); // no scaling
    p.add("d", Function::ready(8).label("com.openfaas.scale.min", "2"));
    p.add("e", Function::ready(18)); // capped at 20
    p.add(
        "big",
        Function::ready(5).label("com.openfaas.scale.max", "50"),
    ); // no cap at 5: step 10
    let alert = |status: &str, names: &[&str]| {
        let alerts: Vec<Value> = names
            .iter()
            .map(|n| json!({"status": status, "labels": {"alertname": "APIHighInvocationRate", "function_name": n}}))
            .collect();
        json!({"receiver": "scale-up", "status": status, "alerts": alerts}).to_string()
    };
    let post = |body: String| {
        Req::new(Method::POST, f.gw.addr, "/system/alert")
            .header("authorization", &auth())
            .body(body)
            .send()
    };
    let resp = post(alert(
        "firing",
        &["a", "b", "c", "e", "big", "zzz", "a.openfaas-fn"],
    ))
    .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let replicas = |n: &str| p.function(n).unwrap().replicas;
    // `a` twice: 1 -> 5 -> 9.
    assert_eq!(
        (
            replicas("a"),
            replicas("b"),
            replicas("c"),
            replicas("e"),
            replicas("big")
        ),
        (9, 2, 4, 20, 15)
    );
    let skipped = resp.json()["skipped"].to_string();
    assert!(
        skipped.contains("zzz.openfaas-fn") && skipped.contains("not found"),
        "{skipped}"
    );
    assert!(p
        .calls_to(Method::POST, "/system/scale-function/c")
        .is_empty());

    let resp = post(alert("resolved", &["a", "c", "d"])).await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert_eq!((replicas("a"), replicas("c"), replicas("d")), (1, 4, 2));

    for bad in ["", "not json", "[]"] {
        let resp = post(bad.to_string()).await;
        assert_error_body(&resp, 400, "/system/alert", Some("system-alert"));
    }

    // Provider errors are listed in a 500.
    let down = refused();
    let f = faas_with(false, Some(format!("http://{}/", down.addr))).await;
    let resp = Req::new(Method::POST, f.gw.addr, "/system/alert")
        .body(alert("firing", &["a", "b"]))
        .send()
        .await;
    assert_error_body(&resp, 500, "/system/alert", Some("system-alert"));
    let message = resp.json()["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("[0] a.openfaas-fn") && message.contains("[1] b.openfaas-fn"),
        "{message}"
    );
}

/// The value of `series` (exactly as exposed) in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(series))
        .find_map(|rest| rest.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_have_openfaas_names_and_feed_invocation_count() {
    let f = faas(true).await;
    f.provider.add("echo", Function::ready(2));
    f.provider.add("down", Function::ready(1));
    for _ in 0..3 {
        assert_eq!(
            get(f.gw.addr, "/function/echo").await.status,
            StatusCode::OK
        );
    }
    // `down` answers 503 from the provider's own proxy once it has no endpoint.
    f.provider.add(
        "down",
        Function {
            replicas: 1,
            available: 0,
            ..Default::default()
        },
    );
    let text = eventually_metrics(
        &f,
        "gateway_service_count{function_name=\"echo.openfaas-fn\"}",
    )
    .await;
    let resp = get(f.metrics, "/metrics").await;
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let e = "function_name=\"echo.openfaas-fn\"";
    assert_eq!(
        sample(
            &text,
            &format!("gateway_function_invocation_started{{{e}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("gateway_function_invocation_total{{code=\"200\",{e}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("gateway_functions_seconds_count{{code=\"200\",{e}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("gateway_functions_seconds_bucket{{code=\"200\",{e},le=\"+Inf\"}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "gateway_functions_seconds_bucket{{code=\"200\",{e},le=\"0.005\"}}"
        )),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("gateway_service_count{{{e}}}")),
        Some(2.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE gateway_function_invocation_started counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE gateway_functions_seconds histogram"),
        "{text}"
    );
    // weir's own per-route metrics are there too.
    assert_eq!(
        sample(
            &text,
            "weir_requests_total{route=\"function\",method=\"GET\",status=\"200\"}"
        ),
        Some(3.0),
        "{text}"
    );
    // Every line parses as the text format: a comment, or `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(
            series
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic()),
            "{line}"
        );
    }

    // invocationCount, from weir's own counters.
    let resp = Req::get(f.gw.addr, "/system/functions")
        .header("authorization", &auth())
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    let list = resp.json();
    let echo = list
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "echo")
        .unwrap();
    assert_eq!(echo["invocationCount"], 3);
    assert_eq!(echo["providerOnly"], true, "the provider's fields are kept");

    // The metrics listener serves /metrics and /healthz only, without auth.
    let resp = get(f.metrics, "/healthz").await;
    assert_eq!((resp.status, resp.text().as_str()), (StatusCode::OK, "OK"));
    assert_eq!(
        get(f.metrics, "/function/echo").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        Req::new(Method::POST, f.metrics, "/metrics")
            .send()
            .await
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    // The admin API serves the same metrics.
    let admin = admin_get(&f.gw, "/metrics").await.text();
    assert!(
        admin.contains(
            "gateway_function_invocation_total{code=\"200\",function_name=\"echo.openfaas-fn\"} 3"
        ),
        "{admin}"
    );
}

async fn eventually_metrics(f: &Faas, series: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = get(f.metrics, "/metrics").await.text();
        if sample(&text, series).is_some() {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no {series} within {WAIT:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_stream_before_the_provider_finishes() {
    let f = faas(true).await;
    let request = http::Request::builder()
        .uri(format!(
            "http://{}/system/logs?name=echo&follow=true",
            f.gw.addr
        ))
        .header("authorization", auth())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(WAIT, client().request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("the first line arrives while the provider is still streaming")
        .unwrap()
        .unwrap();
    let first = String::from_utf8(first.into_data().unwrap().to_vec()).unwrap();
    assert!(
        first.contains("first line") && first.ends_with('\n'),
        "{first}"
    );
    f.provider.finish_logs.notify_one();
    let rest = tokio::time::timeout(WAIT, body.collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&rest).contains("second line"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_takes_effect_without_a_restart() {
    let f = faas(true).await;
    let ok = |a: String| {
        Req::get(f.gw.addr, "/system/namespaces")
            .header("authorization", &a)
            .send()
    };
    assert_eq!(ok(auth()).await.status, StatusCode::OK);
    std::fs::write(f.secrets.join("basic-auth-password"), "rotated\n").unwrap();
    f.provider.require_auth(USER, "rotated");
    let new = basic(&format!("{USER}:rotated"));
    eventually("the new password is accepted", async || {
        ok(new.clone()).await.status == StatusCode::OK
    })
    .await;
    assert_eq!(ok(auth()).await.status, StatusCode::UNAUTHORIZED);
    // weir's own calls to the provider use the new password too.
    f.provider
        .add("cold", Function::cold(Duration::from_millis(10)));
    assert_eq!(
        get(f.gw.addr, "/function/cold").await.status,
        StatusCode::OK
    );
}

/// faas-cli is a Go binary that no package registry reachable here ships; these are its calls,
/// as it makes them (method, path, query, body, status it accepts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faas_cli_calls_work() {
    let f = faas(true).await;
    f.provider.add("figlet", Function::ready(1));
    let cli = |method: Method, path: &str| {
        Req::new(method, f.gw.addr, path)
            .header("authorization", &auth())
            .header("user-agent", "faas-cli/dev")
    };
    // login: a list with the credentials.
    assert_eq!(
        cli(Method::GET, "/system/functions").send().await.status,
        StatusCode::OK
    );
    // list
    let list = cli(Method::GET, "/system/functions?namespace=openfaas-fn")
        .send()
        .await;
    assert_eq!(list.json()[0]["name"], "figlet");
    // describe
    let resp = cli(
        Method::GET,
        "/system/function/figlet?namespace=openfaas-fn&usage=1",
    )
    .send()
    .await;
    assert_eq!(
        (resp.status, resp.json()["name"].clone()),
        (StatusCode::OK, json!("figlet"))
    );
    // invoke (no credentials needed)
    let resp = Req::new(Method::POST, f.gw.addr, "/function/figlet")
        .header("user-agent", "faas-cli/dev")
        .body("hi")
        .send()
        .await;
    assert_eq!(
        (resp.status, resp.json()["body"].clone()),
        (StatusCode::OK, json!("hi"))
    );
    // deploy: PUT first, POST on 404.
    let deploy = r#"{"service":"nodeinfo","image":"ghcr.io/openfaas/nodeinfo:latest","labels":{"com.openfaas.scale.min":"1"}}"#;
    assert_eq!(
        cli(Method::PUT, "/system/functions")
            .body(deploy)
            .send()
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        cli(Method::POST, "/system/functions")
            .body(deploy)
            .send()
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        cli(Method::PUT, "/system/functions")
            .body(deploy)
            .send()
            .await
            .status,
        StatusCode::ACCEPTED
    );
    // remove
    let resp = cli(Method::DELETE, "/system/functions")
        .body(r#"{"functionName":"nodeinfo"}"#)
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::ACCEPTED);
    // secret list
    assert_eq!(
        cli(Method::GET, "/system/secrets?namespace=openfaas-fn")
            .send()
            .await
            .status,
        StatusCode::OK
    );
    // namespaces
    assert_eq!(
        cli(Method::GET, "/system/namespaces").send().await.json(),
        json!([NS])
    );
    // logs (not followed)
    f.provider.finish_logs.notify_one();
    let resp = cli(Method::GET, "/system/logs?follow=false&name=figlet&tail=-1")
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.text().lines().count(), 2);
    // version
    let resp = cli(Method::GET, "/system/info").send().await;
    assert_eq!(resp.json()["provider"]["provider"], "fake-provider");
    // Without `faas-cli login`: 401, which faas-cli reports as "unauthorized access".
    let resp = Req::get(f.gw.addr, "/system/functions").send().await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn check_never_shows_credentials_and_names_a_missing_file() {
    let dir = secret_dir();
    let mount = format!("{}/", dir.display());
    let out = run_weir(
        &[
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/routes.example.yaml"),
        ],
        &[("basic_auth", "true"), ("secret_mount_path", &mount)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("BasicAuth("), "{}", out.stdout);
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "{}",
        out.stdout
    );
    let out = run_weir(
        &[
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/routes.example.yaml"),
        ],
        &[
            ("basic_auth", "true"),
            ("secret_mount_path", "/nonexistent/secrets"),
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("/nonexistent/secrets/basic-auth-user"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_with_no_environment_starts_serves_and_warns() {
    let weir = spawn_weir(
        &["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
        &[("WEIR_METRICS_LISTEN", "127.0.0.1:0")],
    );
    let log = weir.log.join("\n");
    assert!(log.contains("BASIC AUTH IS OFF"), "{log}");
    let metrics = weir.metrics.expect("a metrics listener");
    assert_eq!(get(metrics, "/healthz").await.text(), "OK");
    // No provider at 127.0.0.1:8081 here (or one that is not ours): answered, never hung.
    let resp = get(weir.addr, "/system/info").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(get(weir.addr, "/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_timeout_closes_a_connection_whose_request_head_never_ends() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = FakeProvider::start().await;
    let url = provider.url();
    let gw = gateway(
        weir::config::EMBEDDED_DEFAULT,
        None,
        &[
            ("functions_provider_url", url.as_str()),
            ("read_timeout", "1"),
            ("WEIR_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
        .await
        .expect("the connection is closed once read_timeout has passed");
    assert!(
        read.is_err() || !String::from_utf8_lossy(&buf).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // A whole request is served as usual.
    assert_eq!(get(gw.addr, "/healthz").await.status, StatusCode::OK);
}
