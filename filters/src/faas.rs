//! What the OpenFaaS filters share: OpenFaaS's function names, and a client of the provider's
//! HTTP API (the faas-provider contract that faasd and faas-netes serve).
//!
//! Every call goes through weir's own forwarder to the provider (the pooled client, its connect
//! timeout), with the gateway's credentials when the provider wants them.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::{
    ArgError, Args, Body, Exchange, FilterContext, HttpService, UpstreamFailure, WatchedFile,
};

/// How long one call to the provider may take, from sending to the last byte of the answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest answer read from the provider (a list of functions, say).
pub(crate) const MAX_ANSWER: usize = 16 << 20;

/// Splits `name.namespace` at the last dot, as OpenFaaS does (`dev.figlet.openfaas-fn` is
/// `dev.figlet` in `openfaas-fn`); a name without a dot is in `default_ns`.
pub(crate) fn split_name<'a>(full: &'a str, default_ns: &'a str) -> (&'a str, &'a str) {
    match full.rsplit_once('.') {
        Some((name, ns)) => (name, ns),
        None => (full, default_ns),
    }
}

/// The name OpenFaaS's metrics and `invocationCount` use: `name.namespace`, or `name` when no
/// namespace is known.
pub(crate) fn metric_name(name: &str, ns: &str) -> String {
    if ns.is_empty() {
        return name.to_string();
    }
    let mut full = String::with_capacity(name.len() + 1 + ns.len());
    full.push_str(name);
    full.push('.');
    full.push_str(ns);
    full
}

/// The function a request is for, as [`metric_name`] names it: the route's `{name}` variable,
/// or else the path segment after the first (`/function/NAME/...`), with `.default_ns`
/// appended when it names no namespace. [`split_name`] gives its name and namespace back.
pub(crate) fn function_key(exchange: &Exchange, default_ns: &str) -> Option<String> {
    let full = match exchange.vars.get("name") {
        Some(name) => Some(name).filter(|name| !name.is_empty()),
        None => {
            let mut segments = exchange.path().split('/').filter(|s| !s.is_empty());
            segments.next()?;
            segments.next()
        }
    }?;
    Some(match full.contains('.') {
        true => full.to_string(),
        false => metric_name(full, default_ns),
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A function's status as the provider reports it (`FunctionStatus`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Status {
    /// Desired replicas.
    pub replicas: u64,
    /// Replicas ready to serve.
    pub available: u64,
    /// The function's labels.
    pub labels: serde_json::Map<String, Value>,
}

impl Status {
    pub(crate) fn from_json(value: &Value) -> Self {
        let number = |key: &str| value.get(key).and_then(Value::as_u64).unwrap_or(0);
        Self {
            replicas: number("replicas"),
            available: number("availableReplicas"),
            labels: value
                .get("labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// A label's text.
    pub(crate) fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).and_then(Value::as_str).map(str::trim)
    }

    /// A whole-number label, or `default` when it is missing or not a number.
    pub(crate) fn label_u64(&self, key: &str, default: u64) -> u64 {
        self.label(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// Why a call to the provider failed.
#[derive(Debug, Clone)]
pub(crate) enum ProviderError {
    /// No answer: refused, timed out, closed.
    Unreachable(String),
    /// An answer with an unexpected status.
    Status(StatusCode, String),
    /// An answer that could not be read.
    Invalid(String),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Unreachable(why) => {
                write!(f, "the provider could not be reached ({why})")
            }
            ProviderError::Status(status, body) => {
                write!(f, "the provider answered {}", status.as_u16())?;
                let body = body.trim();
                if !body.is_empty() {
                    let short: String = body.chars().take(200).collect();
                    write!(f, ": {short}")?;
                }
                Ok(())
            }
            ProviderError::Invalid(why) => write!(f, "the provider's answer was invalid ({why})"),
        }
    }
}

impl ProviderError {
    /// What a client is told: the kind of failure and the provider's status, never the
    /// provider's body (the full message, [`Display`](std::fmt::Display), is for logs).
    pub(crate) fn short(&self) -> String {
        match self {
            ProviderError::Unreachable(_) => self.to_string(),
            ProviderError::Status(status, _) => {
                format!("the provider answered {}", status.as_u16())
            }
            ProviderError::Invalid(_) => "the provider's answer was invalid".to_string(),
        }
    }
}

/// The gateway's credentials for the provider (`basic-auth-user`, `basic-auth-password`).
struct Credentials {
    user: Arc<WatchedFile>,
    password: Arc<WatchedFile>,
}

impl Credentials {
    fn header(&self) -> Option<HeaderValue> {
        use base64::Engine;
        let pair = format!(
            "{}:{}",
            self.user.content().trim(),
            self.password.content().trim()
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// A client of one provider.
pub(crate) struct Provider {
    service: HttpService,
    /// The provider url's path, ending in `/` (`/` almost always).
    base: String,
    /// The url as configured, for messages.
    pub url: String,
    /// The namespace of names without a dot.
    pub namespace: String,
    auth: Option<Credentials>,
    route: Arc<str>,
}

impl Provider {
    /// Reads `provider` (required), `namespace`, `basic-auth` (send credentials to the
    /// provider), `user-file` and `password-file` (read only with `basic-auth: true`).
    pub(crate) fn from_args(args: &Args, ctx: &FilterContext<'_>) -> Result<Self, ArgError> {
        let url = args.require("provider")?.trim().to_string();
        let uri: http::Uri = url.parse().map_err(|_| {
            ArgError::for_arg(
                "provider",
                format!("`{url}` is not a url such as `http://127.0.0.1:8081/`"),
            )
        })?;
        let (scheme, authority) = match (uri.scheme_str(), uri.authority()) {
            (Some(s @ ("http" | "https")), Some(a)) => (s, a.as_str()),
            _ => {
                return Err(ArgError::for_arg(
                    "provider",
                    format!("`{url}` must be an http:// or https:// url with a host"),
                ))
            }
        };
        let service = ctx
            .upstreams()
            .uri(&format!("{scheme}://{authority}"))
            .map_err(|e| ArgError::for_arg("provider", e))?;
        let mut base = uri.path().to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let namespace = args.get("namespace").unwrap_or_default().trim().to_string();
        let basic_auth = args.flag("basicAuth", false)?;
        let files = (args.get("userFile"), args.get("passwordFile"));
        let auth = if basic_auth {
            let user = files.0.unwrap_or("/run/secrets/basic-auth-user");
            let password = files.1.unwrap_or("/run/secrets/basic-auth-password");
            Some(Credentials {
                user: ctx.watched_file("userFile", user)?,
                password: ctx.watched_file("passwordFile", password)?,
            })
        } else {
            None
        };
        Ok(Self {
            service,
            base,
            url,
            namespace,
            auth,
            route: Arc::from(format!("{}:provider", ctx.route_id())),
        })
    }

    /// A provider at `/` that `service` answers for, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(service: HttpService, namespace: &str) -> Self {
        Self {
            service,
            base: "/".into(),
            url: "http://provider.test/".into(),
            namespace: namespace.into(),
            auth: None,
            route: Arc::from("test:provider"),
        }
    }

    /// One call: `path_and_query` is relative to the provider url (`system/functions`).
    pub(crate) async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), ProviderError> {
        let uri = format!("{}{path_and_query}", self.base);
        let mut builder = Request::builder().method(method).uri(&uri);
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(value) = self.auth.as_ref().and_then(Credentials::header) {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        let request = builder
            .body(body.map_or(Body::Empty, Body::full))
            .map_err(|e| ProviderError::Invalid(format!("bad request to `{uri}`: {e}")))?;
        let exchange = Exchange::internal(request, self.route.clone());
        let service = self.service.clone();
        let answer = async move {
            let response = service.handle(exchange).await;
            if let Some(failure) = response.extensions().get::<UpstreamFailure>() {
                return Err(ProviderError::Unreachable(failure.name().to_string()));
            }
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| ProviderError::Invalid(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(CALL_TIMEOUT, answer)
            .await
            .unwrap_or_else(|_| Err(ProviderError::Unreachable("timeout".into())))
    }

    /// `GET system/function/NAME?namespace=NS`: `None` when the provider does not know it.
    pub(crate) async fn function(
        &self,
        name: &str,
        ns: &str,
    ) -> Result<Option<Status>, ProviderError> {
        let (status, body) = self
            .call(
                Method::GET,
                &format!(
                    "system/function/{}?namespace={}&usage=false",
                    encode(name),
                    encode(ns)
                ),
                None,
            )
            .await?;
        match status {
            StatusCode::OK => {
                let value: Value = serde_json::from_slice(&body)
                    .map_err(|e| ProviderError::Invalid(e.to_string()))?;
                Ok(Some(Status::from_json(&value)))
            }
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(ProviderError::Status(
                other,
                String::from_utf8_lossy(&body).into_owned(),
            )),
        }
    }

    /// `POST system/scale-function/NAME?namespace=NS` with `{"serviceName","replicas"}`.
    pub(crate) async fn scale(
        &self,
        name: &str,
        ns: &str,
        replicas: u64,
    ) -> Result<(), ProviderError> {
        let mut body = serde_json::json!({"serviceName": name, "replicas": replicas});
        if !ns.is_empty() {
            body["namespace"] = Value::from(ns);
        }
        let (status, answer) = self
            .call(
                Method::POST,
                &format!(
                    "system/scale-function/{}?namespace={}",
                    encode(name),
                    encode(ns)
                ),
                Some(Bytes::from(body.to_string())),
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(ProviderError::Status(
                status,
                String::from_utf8_lossy(&answer).into_owned(),
            ))
        }
    }

    /// Every function of every namespace: `GET system/namespaces` (404: none, as faasd
    /// answers), then `GET system/functions?namespace=NS` for each, or once for the default
    /// namespace when there are none. Returns `(namespace, status JSON)` pairs.
    pub(crate) async fn all_functions(&self) -> Result<Vec<(String, Value)>, ProviderError> {
        let (status, body) = self.call(Method::GET, "system/namespaces", None).await?;
        let mut namespaces: Vec<String> = match status {
            StatusCode::OK => serde_json::from_slice::<Vec<String>>(&body).unwrap_or_default(),
            StatusCode::NOT_FOUND => Vec::new(),
            other => {
                return Err(ProviderError::Status(
                    other,
                    String::from_utf8_lossy(&body).into_owned(),
                ))
            }
        };
        if namespaces.is_empty() {
            namespaces.push(self.namespace.clone());
        }
        let mut all = Vec::new();
        for ns in namespaces {
            let path = if ns.is_empty() {
                "system/functions".to_string()
            } else {
                format!("system/functions?namespace={}", encode(&ns))
            };
            let (status, body) = self.call(Method::GET, &path, None).await?;
            if status != StatusCode::OK {
                return Err(ProviderError::Status(
                    status,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
            }
            let list: Vec<Value> = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Invalid(format!("the function list: {e}")))?;
            for function in list {
                let fn_ns = function
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&ns)
                    .to_string();
                all.push((fn_ns, function));
            }
        }
        Ok(all)
    }
}

/// A background task that runs while the state it serves is alive: it holds the state weakly,
/// stops when the state is dropped (a reload that no longer uses it), and is aborted with it.
pub(crate) struct Background(Option<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Background {
    /// Every `interval`, calls `tick` with the state while it lives. Without a runtime
    /// (`weir check`), nothing runs.
    pub(crate) fn every<T, F, Fut>(state: Weak<T>, interval: Duration, tick: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(Arc<T>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Self(None);
        };
        Self(Some(runtime.spawn(async move {
            loop {
                let Some(state) = state.upgrade() else { return };
                tick(state).await;
                tokio::time::sleep(interval).await;
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_function_as_the_metrics_do() {
        let key = |path: &str, default_ns: &str| {
            let request = Request::get(path).body(Body::Empty).unwrap();
            function_key(&Exchange::internal(request, Arc::from("r")), default_ns)
        };
        assert_eq!(key("/function/echo", "fn").as_deref(), Some("echo.fn"));
        assert_eq!(key("/function/echo/x/y", "").as_deref(), Some("echo"));
        assert_eq!(
            key("/function/echo.dev/x", "fn").as_deref(),
            Some("echo.dev")
        );
        assert_eq!(key("/function", "fn"), None);
        // Split back into what the provider is asked for.
        assert_eq!(split_name("echo.fn", "fn"), ("echo", "fn"));
        assert_eq!(split_name("echo", ""), ("echo", ""));
    }

    #[test]
    fn names_split_at_the_last_dot() {
        assert_eq!(
            split_name("figlet", "openfaas-fn"),
            ("figlet", "openfaas-fn")
        );
        assert_eq!(
            split_name("dev.figlet.openfaas-fn", "x"),
            ("dev.figlet", "openfaas-fn")
        );
        assert_eq!(split_name("figlet", ""), ("figlet", ""));
        assert_eq!(metric_name("figlet", ""), "figlet");
        assert_eq!(metric_name("figlet", "fn"), "figlet.fn");
        assert_eq!(encode("a b/c.d"), "a%20b%2Fc.d");
    }

    #[test]
    fn status_reads_replicas_and_labels() {
        let s = Status::from_json(&serde_json::json!({
            "name": "f", "replicas": 2, "availableReplicas": 1,
            "labels": {"com.openfaas.scale.min": " 3 ", "com.openfaas.scale.max": "x"}
        }));
        assert_eq!((s.replicas, s.available), (2, 1));
        assert_eq!(s.label_u64("com.openfaas.scale.min", 1), 3);
        assert_eq!(s.label_u64("com.openfaas.scale.max", 20), 20);
        assert_eq!(
            Status::from_json(&serde_json::json!({"json": "body"})).replicas,
            0
        );
    }
}
