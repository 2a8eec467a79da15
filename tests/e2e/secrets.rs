//! Secrets that stay secret: the admin token, credentials in filter and predicate arguments,
//! header values in logs, and upstream details in error bodies. Header injection through
//! filters is impossible.

use std::process::{Command, Stdio};
use std::time::Instant;

use http::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::support::*;

const TOKEN: &str = "adm1n-t0ken-ZX81";

fn admin_config(listen: &str) -> String {
    format!(
        r#"
admin:
  listen: {listen}
  token: ${{ADMIN_TOKEN}}
gateway:
  routes:
  - id: r
    uri: http://${{ORIGIN}}
"#
    )
}

#[tokio::test]
async fn the_admin_token_is_required_and_never_shown() {
    let origin = origin().await;
    let gw = gateway(
        &admin_config("127.0.0.1:0"),
        Some(&origin),
        &[("ADMIN_TOKEN", TOKEN)],
    )
    .await;
    let a = gw.admin;
    for path in [
        "/actuator/gateway/routes",
        "/actuator/gateway/config",
        "/metrics",
        "/no/such/endpoint",
    ] {
        for auth in [
            None,
            Some("Bearer wrong".to_string()),
            Some(format!("Bearer {TOKEN}x")),
            Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
            Some(format!("Basic {TOKEN}")),
            Some(TOKEN.to_string()),
        ] {
            let mut req = Req::get(a, path);
            if let Some(auth) = &auth {
                req = req.header("Authorization", auth);
            }
            let resp = req.send().await;
            assert_error_body(&resp, 401, path, None);
            assert_eq!(
                resp.header("www-authenticate").as_deref(),
                Some("Bearer realm=\"weir admin\""),
                "{path} {auth:?}"
            );
            assert!(!resp.text().contains(TOKEN));
        }
    }
    // Two Authorization headers, one of them right: refused.
    let resp = Req::get(a, "/actuator/gateway/routes")
        .header("Authorization", "Bearer wrong")
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send()
        .await;
    assert_eq!(resp.status, 401);
    // A reload needs it too.
    let resp = Req::new(http::Method::POST, a, "/actuator/gateway/refresh")
        .send()
        .await;
    assert_eq!(resp.status, 401);

    // With it, everything answers; the scheme is case-insensitive.
    for auth in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
        for path in [
            "/actuator/gateway/routes",
            "/actuator/gateway/config",
            "/metrics",
        ] {
            let resp = Req::get(a, path)
                .header("Authorization", &auth)
                .send()
                .await;
            assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text());
            assert!(!resp.text().contains(TOKEN), "{path} shows the token");
        }
    }
    let resp = Req::new(http::Method::POST, a, "/actuator/gateway/refresh")
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    assert!(!resp.text().contains(TOKEN));
    // Health stays open, for probes; it tells nothing.
    let resp = get(a, "/actuator/health").await;
    assert_eq!(resp.status, StatusCode::OK);
    // The main listener is not affected.
    assert_eq!(get(gw.addr, "/x").await.status, StatusCode::OK);
}

#[test]
fn an_exposed_admin_api_without_a_token_is_warned_about() {
    let exposed = write_config(
        "exposed.yaml",
        "admin:\n  listen: 0.0.0.0:9901\ngateway:\n  routes: []\n",
    );
    let out = run_weir(&["check", exposed.to_str().unwrap()], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("warning:") && out.stdout.contains("without `admin.token`"),
        "{}",
        out.stdout
    );

    // With a token, or on loopback: no warning, and the token is nowhere in the output.
    let guarded = write_config("guarded.yaml", &admin_config("0.0.0.0:9901"));
    let out = run_weir(
        &["check", guarded.to_str().unwrap()],
        &[("ADMIN_TOKEN", TOKEN), ("ORIGIN", "127.0.0.1:1")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("admin.token"), "{}", out.stdout);
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    let local = write_config("local.yaml", "gateway:\n  routes: []\n");
    let out = run_weir(&["check", local.to_str().unwrap()], &[]);
    assert!(!out.stdout.contains("warning:"), "{}", out.stdout);

    // An empty token is an error, not an open door.
    let out = run_weir(
        &["check", guarded.to_str().unwrap()],
        &[("ADMIN_TOKEN", " "), ("ORIGIN", "127.0.0.1:1")],
    );
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("`admin.token` is empty"),
        "{}",
        out.stderr
    );
}

/// A config whose arguments hold credentials, each a distinct marker.
const CREDENTIALS: &str = r#"
gateway:
  routes:
  - id: creds
    uri: http://${ORIGIN}
    predicates:
    - Header=Proxy-Authorization, Basic sekrit-1
    - Cookie=sid, sekrit-2
    filters:
    - SetRequestHeader=Authorization, Bearer sekrit-3
    - AddRequestHeader=Cookie, session=sekrit-4
    - SetResponseHeader=Set-Cookie, id=sekrit-5
    - name: AddRequestHeader
      args:
        name: authorization
        value: Bearer ${TOKEN_FROM_ENV}
"#;

fn assert_no_credential(what: &str, text: &str) {
    for n in 1..=6 {
        let marker = format!("sekrit-{n}");
        assert!(!text.contains(&marker), "{what} shows {marker}:\n{text}");
    }
}

#[tokio::test]
async fn credentials_in_arguments_are_masked() {
    let origin = origin().await;
    let gw = gateway(
        CREDENTIALS,
        Some(&origin),
        &[("TOKEN_FROM_ENV", "sekrit-6")],
    )
    .await;
    let routes = admin_get(&gw, "/actuator/gateway/routes").await;
    assert_eq!(routes.status, StatusCode::OK);
    assert_no_credential("the admin API", &routes.text());
    // What is shown still says what the route does.
    let text = routes.text();
    assert!(
        text.contains("SetRequestHeader(name=Authorization, value=******)"),
        "{text}"
    );
    assert!(text.contains("Cookie(name=sid, regexp=******)"), "{text}");

    let file = write_config("creds.yaml", CREDENTIALS);
    let out = run_weir(
        &["check", file.to_str().unwrap()],
        &[("TOKEN_FROM_ENV", "sekrit-6"), ("ORIGIN", "127.0.0.1:1")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_no_credential("weir check", &format!("{}{}", out.stdout, out.stderr));
}

#[test]
fn config_errors_do_not_quote_credentials() {
    let file = write_config(
        "bad-creds.yaml",
        r#"
gateway:
  routes:
  - id: a
    uri: http://127.0.0.1:1
    filters:
    - SetRequestHeader=Authorization, Basic sekrit-1, sekrit-2
    - SetRequestHeader=Authorization, Bearer {sekrit-3
    - AddRequestHeader=Cookie, a={sekrit-4}
"#,
    );
    let out = run_weir(&["check", file.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stderr.contains("3 errors"), "{}", out.stderr);
    assert_no_credential("weir check's errors", &out.stderr);
}

#[tokio::test]
async fn header_values_that_would_inject_headers_are_rejected() {
    // From the config, written in the file or through a placeholder: a compile error.
    for (filter, env) in [
        (r#""SetRequestHeader=X-A, a\r\nX-Injected: 1""#, ""),
        (r#""AddResponseHeader=X-A, a\nb""#, ""),
        (r#""SetRequestHeader=X-A, a\0b""#, ""),
        ("SetRequestHeader=X-A, ${EVIL}", "a\r\nX-Injected: 1"),
        ("SetRequestHostHeader=${EVIL}", "a\r\nX-Injected: 1"),
    ] {
        let yaml = format!(
            "gateway:\n  routes:\n  - id: r\n    uri: http://127.0.0.1:1\n    filters:\n    - {filter}\n"
        );
        let err = match try_gateway(&yaml, None, &[("EVIL", env)]).await {
            Ok(_) => panic!("{filter} with {env:?} compiled"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("not allowed in a header value"),
            "{filter}: {err}"
        );
        assert!(!err.contains("X-Injected"), "{filter}: {err}");
    }

    // From the request: a path variable cannot carry CR or LF (the path policy rejects them
    // first), and nothing reaches the upstream.
    let (origin, gw) = origin_and_gateway(
        r#"
gateway:
  routes:
  - id: r
    uri: http://${ORIGIN}
    predicates:
    - Path=/h/{v}
    filters:
    - SetRequestHeader=X-From-Path, {v}
"#,
    )
    .await;
    let resp = get(gw.addr, "/h/ok").await;
    assert_eq!(resp.echoed("x-from-path"), ["ok"]);
    let before = origin.requests();
    for path in ["/h/a%0d%0aX-Injected:%201", "/h/a%0aX", "/h/a%00"] {
        let resp = get(gw.addr, path).await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.text());
    }
    assert_eq!(origin.requests(), before);
}

#[tokio::test]
async fn upstream_details_stay_out_of_error_bodies() {
    // An upstream that accepts and closes at once, and one that refuses.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closing = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.shutdown().await;
        }
    });
    let gw = gateway(
        r#"
gateway:
  routes:
  - id: closes
    uri: http://${CLOSING}
    predicates:
    - Path=/closes/**
  - id: refuses
    uri: http://${REFUSED}
    predicates:
    - Path=/refuses/**
"#,
        None,
        &[("CLOSING", &closing.to_string())],
    )
    .await;
    for (path, upstream) in [
        ("/closes/x", closing.to_string()),
        ("/refuses/x", gw.refused.addr.to_string()),
    ] {
        let resp = get(gw.addr, path).await;
        assert_eq!(resp.status, 502, "{path}: {}", resp.text());
        let text = resp.text().to_lowercase();
        let port = upstream.rsplit(':').next().unwrap().to_string();
        for leak in [
            upstream.as_str(),
            port.as_str(),
            "127.0.0.1",
            "refused",
            "os error",
            "hyper",
            "connection reset",
        ] {
            assert!(
                !text.contains(leak),
                "{path}: the body shows `{leak}`: {text}"
            );
        }
        for (name, _) in resp.headers.iter() {
            assert!(!name.as_str().contains("upstream"), "{name}");
        }
    }
}

/// The real binary, its log (at debug level) written to a file.
struct Logged {
    child: std::process::Child,
    log: std::path::PathBuf,
    addr: std::net::SocketAddr,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_logged(config: &std::path::Path, env: &[(&str, &str)]) -> Logged {
    let log = scratch_file("weir.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(weir_bin());
    command
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    for (k, v) in env {
        command.env(k, v);
    }
    // Owned at once, so that the child is killed and reaped whatever happens next.
    let mut weir = Logged {
        child: command.spawn().expect("spawn weir"),
        log,
        addr: ([127, 0, 0, 1], 0).into(),
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&weir.log).unwrap_or_default();
        let marker = "listening (gateway) address=";
        if let Some(at) = text.find(marker) {
            weir.addr = text[at + marker.len()..]
                .split_whitespace()
                .next()
                .and_then(|a| a.parse().ok())
                .expect("an address");
            return weir;
        }
        assert!(
            Instant::now() < deadline,
            "weir did not start within {WAIT:?}:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_show_header_values_or_credentials() {
    let origin = origin().await;
    let config = write_config("logged.yaml", CREDENTIALS);
    let weir = spawn_logged(
        &config,
        &[
            ("ORIGIN", &origin.addr.to_string()),
            ("TOKEN_FROM_ENV", "sekrit-6"),
        ],
    );
    // Requests that are forwarded, rejected, unrouted and failed, all carrying credentials.
    for path in ["/x", "/a%2F..%2Fb", "/%00"] {
        let _ = Req::get(weir.addr, path)
            .header("Authorization", "Bearer client-sekrit-a")
            .header("Proxy-Authorization", "Basic sekrit-1")
            .header("Cookie", "sid=sekrit-2; other=client-sekrit-b")
            .send()
            .await;
    }
    let raw = "POST /x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer client-sekrit-c\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let _ = raw_request(weir.addr, raw).await;
    let log = std::fs::read_to_string(&weir.log).unwrap();
    assert!(
        log.contains("request rejected"),
        "debug logging is on:\n{log}"
    );
    assert_no_credential("the log", &log);
    for marker in ["client-sekrit-a", "client-sekrit-b", "client-sekrit-c"] {
        assert!(!log.contains(marker), "the log shows {marker}:\n{log}");
    }
}
