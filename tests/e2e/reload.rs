//! Hot reload: every way of saving a file, broken files, SIGHUP, the refresh endpoint, state
//! that survives, and a reload storm under load.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response};
use serde_json::Value;
use weir::{Gateway, RunningGateway};
use weir_filters::{
    ArgError, Args, Body, Captures, EditFilter, Filter, FilterContext, FilterFactory, Shortcut,
};

use crate::support::*;

/// A config whose single route answers `status` itself. `debounce` is the reload debounce.
fn config(status: u16, debounce: &str) -> String {
    format!(
        "reload:\n  debounce: {debounce}\ngateway:\n  routes:\n    - id: only\n      uri: no://op\n      filters:\n        - SetStatus={status}\n"
    )
}

const BROKEN: &str = "gateway:\n  routes:\n    - id: only\n      uri: no://op\n      filters:\n        - SetStatus=299\n        - Bogus=1\n";

/// A fresh directory for one test's config files.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = scratch_file(name);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

async fn start_file(path: &Path) -> RunningGateway {
    Gateway::builder()
        .filter(CounterFactory)
        .config_file(path)
        .listen(([127, 0, 0, 1], 0).into())
        .admin_listen(([127, 0, 0, 1], 0).into())
        .env(|_| None)
        .start()
        .await
        .expect("gateway starts")
}

/// Polls until GET / answers `status`; panics after the bound.
async fn eventually_status(addr: std::net::SocketAddr, status: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = get(addr, "/").await.status;
        if got == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {got}, never {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn config_status(admin: std::net::SocketAddr) -> Value {
    let resp = Req::get(admin, "/actuator/gateway/config").send().await;
    assert_eq!(resp.status, 200);
    resp.json()
}

/// Polls the admin API until `check` holds for the config status; returns it.
async fn eventually_config(admin: std::net::SocketAddr, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = config_status(admin).await;
        if check(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "config status never matched: {status}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn in_place_write_is_picked_up() {
    let path = scratch_dir("inplace").join("routes.yaml");
    std::fs::write(&path, config(201, "20ms")).unwrap();
    let gw = start_file(&path).await;
    eventually_status(gw.listen_addr(), 201).await;
    std::fs::write(&path, config(202, "20ms")).unwrap();
    eventually_status(gw.listen_addr(), 202).await;
    let status = config_status(gw.admin_addr()).await;
    assert_eq!(status["version"], 2);
    assert_eq!(status["routes"], 1);
    assert!(status["last_error"].is_null());
    assert_eq!(status["sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn write_to_temp_then_rename_is_picked_up() {
    let dir = scratch_dir("rename");
    let path = dir.join("routes.yaml");
    std::fs::write(&path, config(201, "20ms")).unwrap();
    let gw = start_file(&path).await;
    // An editor's save: write a temporary file beside it, then rename it over the original.
    let tmp = dir.join(".routes.yaml.swp");
    std::fs::write(&tmp, config(203, "20ms")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    eventually_status(gw.listen_addr(), 203).await;
    // And once more, so the watch survived the replacement of the file it followed.
    std::fs::write(&tmp, config(204, "20ms")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    eventually_status(gw.listen_addr(), 204).await;
}

#[tokio::test]
async fn delete_then_create_is_picked_up() {
    let path = scratch_dir("recreate").join("routes.yaml");
    std::fs::write(&path, config(201, "20ms")).unwrap();
    let gw = start_file(&path).await;
    std::fs::remove_file(&path).unwrap();
    // While the file is missing, the running config keeps serving.
    assert_eq!(get(gw.listen_addr(), "/").await.status, 201);
    std::fs::write(&path, config(205, "20ms")).unwrap();
    eventually_status(gw.listen_addr(), 205).await;
}

#[tokio::test]
async fn kubernetes_configmap_symlink_swap_is_picked_up() {
    // The kubelet's layout: routes.yaml -> ..data/routes.yaml, ..data -> ..<timestamp>/, and an
    // update that swaps ..data atomically.
    let dir = scratch_dir("configmap");
    let first = dir.join("..2026_11_21_first");
    std::fs::create_dir(&first).unwrap();
    std::fs::write(first.join("routes.yaml"), config(201, "20ms")).unwrap();
    std::os::unix::fs::symlink("..2026_11_21_first", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/routes.yaml", dir.join("routes.yaml")).unwrap();
    let gw = start_file(&dir.join("routes.yaml")).await;
    eventually_status(gw.listen_addr(), 201).await;

    let second = dir.join("..2026_11_21_second");
    std::fs::create_dir(&second).unwrap();
    std::fs::write(second.join("routes.yaml"), config(206, "20ms")).unwrap();
    std::os::unix::fs::symlink("..2026_11_21_second", dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();
    eventually_status(gw.listen_addr(), 206).await;
}

#[tokio::test]
async fn a_broken_file_never_takes_effect_and_its_error_is_shown() {
    let path = scratch_dir("broken").join("routes.yaml");
    std::fs::write(&path, config(201, "20ms")).unwrap();
    let gw = start_file(&path).await;
    std::fs::write(&path, BROKEN).unwrap();
    let status = eventually_config(gw.admin_addr(), |s| !s["last_error"].is_null()).await;
    let error = &status["last_error"];
    assert_eq!(error["line"], 7, "{error}");
    assert_eq!(error["column"], 11, "{error}");
    assert_eq!(error["route"], "only");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("unknown filter `Bogus`"),
        "{error}"
    );
    assert!(error["time"].as_str().is_some());
    // The old config still serves, unchanged, and the version did not move.
    assert_eq!(get(gw.listen_addr(), "/").await.status, 201);
    assert_eq!(status["version"], 1);
    let metrics = Req::get(gw.admin_addr(), "/metrics").send().await.text();
    assert!(
        metrics.contains("weir_config_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );
    // A good file clears the error.
    std::fs::write(&path, config(207, "20ms")).unwrap();
    eventually_status(gw.listen_addr(), 207).await;
    let status = config_status(gw.admin_addr()).await;
    assert!(status["last_error"].is_null(), "{status}");
    assert_eq!(status["version"], 2);
    let metrics = Req::get(gw.admin_addr(), "/metrics").send().await.text();
    assert!(metrics.contains("weir_config_reloads_total{result=\"success\"} 1"));
    assert!(metrics.contains("weir_config_last_reload_success_timestamp_seconds "));
}

#[tokio::test]
async fn refresh_endpoint_reloads_and_counts_versions() {
    let gw = gateway(&config(201, "20ms"), None, &[]).await;
    let resp = Req::new(Method::POST, gw.admin, "/actuator/gateway/refresh")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["version"], 2, "the same content still counts");
    let status = config_status(gw.admin).await;
    assert_eq!(status["version"], 2);
    assert_eq!(status["source"], "routes.yaml");
}

#[tokio::test]
async fn refresh_endpoint_reports_a_broken_file() {
    let path = scratch_dir("refresh-broken").join("routes.yaml");
    // A long debounce, so that the refresh (not the watch) is what reads the broken file.
    std::fs::write(&path, config(201, "1h")).unwrap();
    let gw = start_file(&path).await;
    std::fs::write(&path, BROKEN).unwrap();
    let resp = Req::new(Method::POST, gw.admin_addr(), "/actuator/gateway/refresh")
        .send()
        .await;
    assert_eq!(resp.status, 422, "{}", resp.text());
    let errors = resp.json()["errors"].clone();
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .contains(":7:11: route `only`: unknown filter `Bogus`"),
        "{errors}"
    );
    assert_eq!(get(gw.listen_addr(), "/").await.status, 201);
}

#[tokio::test]
async fn sighup_reloads_the_real_binary() {
    let path = scratch_dir("sighup").join("routes.yaml");
    std::fs::write(&path, config(201, "1h")).unwrap();
    let weir = spawn_weir_on(&path);
    // The debounce is an hour: only the signal can make this change take effect.
    std::fs::write(&path, config(208, "1h")).unwrap();
    weir.signal("HUP");
    eventually_status(weir.addr, 208).await;
    assert_eq!(config_status(weir.admin).await["version"], 2);
}

#[tokio::test]
async fn settings_that_need_a_restart_are_reported_and_the_rest_applies() {
    let path = scratch_dir("restart").join("routes.yaml");
    std::fs::write(&path, config(201, "20ms")).unwrap();
    let gw = Gateway::builder()
        .config_file(&path)
        .env(|_| None)
        .admin_listen(([127, 0, 0, 1], 0).into())
        .listen(([127, 0, 0, 1], 0).into())
        .start()
        .await
        .unwrap();
    // The command line's listen addresses override the file's; a file that moves the admin
    // API is reported, not obeyed.
    std::fs::write(
        &path,
        format!("admin:\n  listen: 127.0.0.1:1\n{}", config(209, "20ms")),
    )
    .unwrap();
    eventually_status(gw.listen_addr(), 209).await;
    let status = config_status(gw.admin_addr()).await;
    assert!(
        status["restart_needed"].as_array().unwrap().is_empty(),
        "command-line overrides win: {status}"
    );

    // Without overrides, a changed address needs a restart.
    let path = scratch_dir("restart2").join("routes.yaml");
    let free = refused();
    std::fs::write(
        &path,
        format!(
            "server:\n  listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:0\n{}",
            config(201, "20ms")
        ),
    )
    .unwrap();
    let gw = Gateway::builder()
        .config_file(&path)
        .env(|_| None)
        .start()
        .await
        .unwrap();
    std::fs::write(
        &path,
        format!(
            "server:\n  listen: {}\nadmin:\n  listen: 127.0.0.1:0\n{}",
            free.addr,
            config(210, "20ms")
        ),
    )
    .unwrap();
    eventually_status(gw.listen_addr(), 210).await;
    let status = config_status(gw.admin_addr()).await;
    let needed = status["restart_needed"].as_array().unwrap();
    assert_eq!(needed.len(), 1, "{status}");
    assert!(
        needed[0].as_str().unwrap().starts_with("server.listen"),
        "{status}"
    );
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_table_it_started_with() {
    let origin = origin().await;
    let dir = scratch_dir("inflight");
    let path = dir.join("routes.yaml");
    let slow = format!(
        "reload:\n  debounce: 20ms\ngateway:\n  routes:\n    - id: slow\n      uri: http://{}\n      predicates:\n        - Path=/delay/**\n",
        origin.addr
    );
    std::fs::write(&path, &slow).unwrap();
    let gw = start_file(&path).await;
    let addr = gw.listen_addr();
    let in_flight = tokio::spawn(async move { get(addr, "/delay/1500").await });
    // Wait until the origin has the request, then remove the route.
    let deadline = tokio::time::Instant::now() + WAIT;
    while origin.requests() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::write(&path, config(211, "20ms")).unwrap();
    eventually_status(addr, 211).await;
    // The new table has no /delay route; the request that started before still succeeds.
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get(addr, "/delay/1").await.status, 211);
}

/// A stateful test filter: counts the responses of its route in its kept state.
struct CounterFactory;

impl FilterFactory for CounterFactory {
    fn name(&self) -> &'static str {
        "Counter"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["label"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let _ = args.get("label");
        let count = ctx.state(args, || AtomicU64::new(0));
        Ok(Filter::Edit(Arc::new(Counter { count })))
    }
}

struct Counter {
    count: Arc<AtomicU64>,
}

impl EditFilter for Counter {
    fn response(&self, response: &mut Response<Body>, _: &Captures) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        response.headers_mut().insert("x-count", n.into());
    }
}

fn counter_config(label: &str, status: u16, route: &str) -> String {
    format!(
        "reload:\n  debounce: 20ms\ngateway:\n  routes:\n    - id: {route}\n      uri: no://op\n      filters:\n        - Counter={label}\n        - SetStatus={status}\n"
    )
}

#[tokio::test]
async fn filter_state_survives_a_reload_unless_its_route_or_arguments_change() {
    let path = scratch_dir("state").join("routes.yaml");
    std::fs::write(&path, counter_config("a", 201, "r")).unwrap();
    let gw = start_file(&path).await;
    let addr = gw.listen_addr();
    for expected in 1..=3 {
        assert_eq!(
            get(addr, "/").await.header("x-count"),
            Some(expected.to_string())
        );
    }
    // Another filter of the route changed; the counter's route and arguments did not.
    std::fs::write(&path, counter_config("a", 202, "r")).unwrap();
    eventually_status(addr, 202).await;
    let n: u64 = get(addr, "/")
        .await
        .header("x-count")
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 5, "the count went on from before the reload: {n}");
    // Its argument changed: fresh state.
    std::fs::write(&path, counter_config("b", 203, "r")).unwrap();
    eventually_status(addr, 203).await;
    let fresh: u64 = get(addr, "/")
        .await
        .header("x-count")
        .unwrap()
        .parse()
        .unwrap();
    assert!(fresh <= 2, "a changed argument starts fresh: {fresh}");
    // The route id changed: fresh state too.
    std::fs::write(&path, counter_config("b", 204, "renamed")).unwrap();
    eventually_status(addr, 204).await;
    let fresh: u64 = get(addr, "/")
        .await
        .header("x-count")
        .unwrap()
        .parse()
        .unwrap();
    assert!(fresh <= 2, "a changed route id starts fresh: {fresh}");
}

#[tokio::test]
async fn fifty_rewrites_under_load_fail_no_request() {
    let dir = scratch_dir("storm");
    let path = dir.join("routes.yaml");
    std::fs::write(&path, config(201, "10ms")).unwrap();
    let gw = start_file(&path).await;
    let addr = gw.listen_addr();
    let admin = gw.admin_addr();

    // Eight clients, each sending a bounded number of requests on a keep-alive connection.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let client = client();
            let mut seen = Vec::new();
            for _ in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                seen.push(Req::get(addr, "/").send_with(&client).await.status);
            }
            seen
        }));
    }

    let mut version = 1;
    let mut failures = 0;
    for i in 0..50 {
        let before = config_status(admin).await;
        let failures_before = before["last_error"]["time"].clone();
        let text = match i % 3 {
            0 => config(202, "10ms"),
            1 => BROKEN.to_string(),
            _ => config(201, "10ms"),
        };
        if i % 2 == 0 {
            std::fs::write(&path, &text).unwrap();
        } else {
            let tmp = dir.join("routes.yaml.tmp");
            std::fs::write(&tmp, &text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        // Wait until this rewrite has been taken in (or rejected) before the next one.
        if i % 3 == 1 {
            failures += 1;
            eventually_config(admin, |s| s["last_error"]["time"] != failures_before).await;
        } else {
            version += 1;
            eventually_config(admin, |s| s["version"].as_u64() >= Some(version)).await;
            version = config_status(admin).await["version"].as_u64().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        let seen = client.await.unwrap();
        total += seen.len();
        for status in seen {
            assert!(
                status == 201 || status == 202,
                "a response came from no valid config: {status}"
            );
        }
    }
    assert!(total > 0);
    assert!(failures >= 16);
    let metrics = Req::get(admin, "/metrics").send().await.text();
    assert!(
        metrics.contains(&format!(
            "weir_config_reloads_total{{result=\"failure\"}} {failures}"
        )),
        "{metrics}"
    );
}
