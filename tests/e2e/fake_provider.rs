//! A fake OpenFaaS provider on 127.0.0.1:0 that implements the faas-provider HTTP contract
//! (faasd and faas-netes serve the same): function status, deploy, update, delete, scale,
//! secrets, namespaces, logs, info, health, and invocation through `/function/`.
//!
//! A function scaled up from zero becomes available after its `ready_after` delay, or never
//! (`never_ready`). Every call is recorded, with its Authorization header, so that tests can
//! count scale calls and check the credentials the provider received.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// The namespace of names given without one.
pub const NS: &str = "openfaas-fn";

/// One function.
#[derive(Debug, Clone, Default)]
pub struct Function {
    /// Desired replicas.
    pub replicas: u64,
    /// Replicas ready.
    pub available: u64,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// How long after a scale-up from zero a replica becomes available.
    pub ready_after: Duration,
    /// Never becomes available.
    pub never_ready: bool,
}

impl Function {
    /// A function with `n` ready replicas.
    pub fn ready(n: u64) -> Self {
        Self {
            replicas: n,
            available: n,
            ..Default::default()
        }
    }

    /// A function scaled to zero that is ready `after` a scale-up.
    pub fn cold(after: Duration) -> Self {
        Self {
            ready_after: after,
            ..Default::default()
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
}

/// A recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// The path and query.
    pub uri: String,
    /// The body.
    pub body: String,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    functions: BTreeMap<(String, String), Function>,
    secrets: Vec<Value>,
    calls: Vec<Call>,
    /// `user:password` the /system routes want, when set.
    auth: Option<String>,
    namespaces_404: bool,
}

/// The fake provider.
#[derive(Clone)]
pub struct FakeProvider {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Notified to let a `/system/logs` stream finish (it sends its first line at once).
    pub finish_logs: Arc<Notify>,
}

fn key(full: &str) -> (String, String) {
    match full.rsplit_once('.') {
        Some((n, ns)) => (n.to_string(), ns.to_string()),
        None => (full.to_string(), NS.to_string()),
    }
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_string())
    })
}

type FakeBody = BoxBody<Bytes, Infallible>;

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<FakeBody> {
    let mut response = Response::new(BoxBody::new(Full::new(body.into())));
    *response.status_mut() = status;
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<FakeBody> {
    let mut response = respond(status, value.to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl FakeProvider {
    /// Starts a provider with no functions.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind provider");
        let addr = listener.local_addr().expect("address");
        let provider = Self {
            addr,
            state: Arc::new(Mutex::new(State::default())),
            finish_logs: Arc::new(Notify::new()),
        };
        let server = provider.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let server = server.clone();
                        async move { Ok::<_, Infallible>(server.handle(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        provider
    }

    /// `http://127.0.0.1:PORT/`, for `functions_provider_url`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Adds or replaces a function (`name` or `name.namespace`).
    pub fn add(&self, full: &str, function: Function) {
        self.state
            .lock()
            .unwrap()
            .functions
            .insert(key(full), function);
    }

    /// A function's state.
    pub fn function(&self, full: &str) -> Option<Function> {
        self.state
            .lock()
            .unwrap()
            .functions
            .get(&key(full))
            .cloned()
    }

    /// Makes the /system routes want these credentials.
    pub fn require_auth(&self, user: &str, password: &str) {
        self.state.lock().unwrap().auth = Some(format!("{user}:{password}"));
    }

    /// Answers 404 to `/system/namespaces`, as faasd does.
    pub fn namespaces_404(&self) {
        self.state.lock().unwrap().namespaces_404 = true;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The calls whose method is `method` and whose path starts with `prefix`.
    pub fn calls_to(&self, method: Method, prefix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.uri.starts_with(prefix))
            .collect()
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(want) = self.state.lock().unwrap().auth.clone() else {
            return true;
        };
        let expected = basic(&want);
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == expected.as_bytes())
    }

    fn status_json(name: &str, ns: &str, f: &Function) -> Value {
        json!({
            "name": name,
            "namespace": ns,
            "image": format!("ghcr.io/example/{name}:latest"),
            "replicas": f.replicas,
            "availableReplicas": f.available,
            "labels": f.labels,
            "createdAt": "2026-01-01T00:00:00Z",
            "providerOnly": true,
        })
    }

    fn scale(&self, name: &str, ns: &str, replicas: u64) {
        let mut state = self.state.lock().unwrap();
        let Some(f) = state.functions.get_mut(&(name.to_string(), ns.to_string())) else {
            return;
        };
        let was = f.replicas;
        f.replicas = replicas;
        if replicas == 0 {
            f.available = 0;
        } else if f.available > 0 {
            f.available = replicas;
        } else if was == 0 && !f.never_ready {
            let delay = f.ready_after;
            let state = self.state.clone();
            let key = (name.to_string(), ns.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(f) = state.lock().unwrap().functions.get_mut(&key) {
                    if f.replicas > 0 {
                        f.available = f.replicas;
                    }
                }
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<FakeBody> {
        let authorized = self.authorized(&request);
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let path = parts.uri.path().to_string();
        let authorization = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        self.state.lock().unwrap().calls.push(Call {
            method: parts.method.clone(),
            uri: parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str().to_string())
                .unwrap_or_default(),
            body: String::from_utf8_lossy(&body).into_owned(),
            authorization,
        });
        if path.starts_with("/system/") && !authorized {
            return respond(StatusCode::UNAUTHORIZED, "provider: unauthorized");
        }
        let ns = query_param(&parts.uri, "namespace")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| NS.to_string());
        let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let method = parts.method.clone();
        match (method.clone(), path.as_str()) {
            (Method::GET, "/healthz") => respond(StatusCode::OK, "OK"),
            (Method::GET, "/system/info") => json_response(
                StatusCode::OK,
                &json!({"provider": "fake-provider", "orchestration": "test", "version": {"sha": "abc123", "release": "0.0.1"}}),
            ),
            (Method::GET, "/system/namespaces") => {
                if self.state.lock().unwrap().namespaces_404 {
                    return respond(StatusCode::NOT_FOUND, "");
                }
                json_response(StatusCode::OK, &json!([NS]))
            }
            (Method::GET, "/system/functions") => {
                let state = self.state.lock().unwrap();
                let list: Vec<Value> = state
                    .functions
                    .iter()
                    .filter(|((_, fns), _)| *fns == ns)
                    .map(|((name, fns), f)| Self::status_json(name, fns, f))
                    .collect();
                json_response(StatusCode::OK, &Value::Array(list))
            }
            (Method::POST | Method::PUT, "/system/functions") => {
                let Some(name) = body_json["service"].as_str() else {
                    return respond(StatusCode::BAD_REQUEST, "no service");
                };
                let fns = body_json["namespace"].as_str().unwrap_or(&ns).to_string();
                let mut state = self.state.lock().unwrap();
                let key = (name.to_string(), fns);
                if method == Method::PUT && !state.functions.contains_key(&key) {
                    return respond(StatusCode::NOT_FOUND, "not found");
                }
                let labels = body_json["labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                state.functions.insert(
                    key,
                    Function {
                        labels,
                        ..Function::ready(1)
                    },
                );
                respond(StatusCode::ACCEPTED, "")
            }
            (Method::DELETE, "/system/functions") => {
                let name = body_json["functionName"].as_str().unwrap_or_default();
                let removed = self
                    .state
                    .lock()
                    .unwrap()
                    .functions
                    .remove(&(name.to_string(), ns.clone()));
                match removed {
                    Some(_) => respond(StatusCode::ACCEPTED, ""),
                    None => respond(StatusCode::NOT_FOUND, "not found"),
                }
            }
            (Method::GET, p) if p.starts_with("/system/function/") => {
                let name = &p["/system/function/".len()..];
                let state = self.state.lock().unwrap();
                match state.functions.get(&(name.to_string(), ns.clone())) {
                    Some(f) => json_response(StatusCode::OK, &Self::status_json(name, &ns, f)),
                    None => respond(StatusCode::NOT_FOUND, ""),
                }
            }
            (Method::POST, p) if p.starts_with("/system/scale-function/") => {
                let name = p["/system/scale-function/".len()..].to_string();
                let Some(replicas) = body_json["replicas"].as_u64() else {
                    return respond(StatusCode::BAD_REQUEST, "bad scale request");
                };
                if self.function(&format!("{name}.{ns}")).is_none() {
                    return respond(StatusCode::NOT_FOUND, "not found");
                }
                self.scale(&name, &ns, replicas);
                respond(StatusCode::ACCEPTED, "")
            }
            (Method::GET, "/system/secrets") => json_response(
                StatusCode::OK,
                &Value::Array(self.state.lock().unwrap().secrets.clone()),
            ),
            (Method::POST, "/system/secrets") => {
                self.state
                    .lock()
                    .unwrap()
                    .secrets
                    .push(json!({"name": body_json["name"], "namespace": ns}));
                respond(StatusCode::CREATED, "")
            }
            (Method::PUT, "/system/secrets") => respond(StatusCode::OK, ""),
            (Method::DELETE, "/system/secrets") => respond(StatusCode::NO_CONTENT, ""),
            (Method::GET, "/system/logs") => {
                let name = query_param(&parts.uri, "name").unwrap_or_default();
                let finish = self.finish_logs.clone();
                let mut response = Response::new(BoxBody::new(LogBody::new(name, ns, finish)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
                response
            }
            (m, p) if p.starts_with("/system/namespace") => json_response(
                StatusCode::OK,
                &json!({"method": m.as_str(), "path": p, "body": body_json}),
            ),
            (m, p) if p.starts_with("/function/") => {
                let rest = &p["/function/".len()..];
                let (full, tail) = rest.split_once('/').unwrap_or((rest, ""));
                let available = self.function(full).is_some_and(|f| f.available > 0);
                if !available {
                    return respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("No endpoints available for: {full}."),
                    );
                }
                let headers: HashMap<String, String> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                json_response(
                    StatusCode::OK,
                    &json!({
                        "function": full,
                        "method": m.as_str(),
                        "path": format!("/{tail}"),
                        "query": parts.uri.query(),
                        "headers": headers,
                        "body": String::from_utf8_lossy(&body),
                    }),
                )
            }
            _ => respond(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    }
}

/// `Basic base64(user:password)`.
pub fn basic(pair: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = pair.as_bytes();
    let mut out = String::from("Basic ");
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A log stream: one line at once, a second after `finish` is notified, then the end.
struct LogBody {
    lines: Vec<Bytes>,
    step: usize,
    wait: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + Sync>>,
}

impl LogBody {
    fn new(name: String, ns: String, finish: Arc<Notify>) -> Self {
        let line = |text: &str| {
            let message = json!({"name": name, "namespace": ns, "instance": "1", "timestamp": "2026-01-01T00:00:00Z", "text": text});
            Bytes::from(format!("{message}\n"))
        };
        Self {
            lines: vec![line("first line"), line("second line")],
            step: 0,
            wait: Box::pin(async move { finish.notified().await }),
        }
    }
}

impl http_body::Body for LogBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        use std::task::Poll;
        match self.step {
            0 => {
                self.step = 1;
                Poll::Ready(Some(Ok(Frame::data(self.lines[0].clone()))))
            }
            1 => match self.wait.as_mut().poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(()) => {
                    self.step = 2;
                    Poll::Ready(Some(Ok(Frame::data(self.lines[1].clone()))))
                }
            },
            _ => Poll::Ready(None),
        }
    }
}
