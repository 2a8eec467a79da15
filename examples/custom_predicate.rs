//! A custom predicate, registered with the builder API, running in a gateway.
//!
//! `Canary=10, X-User-Id` matches a stable 10% of users: those whose `X-User-Id` header hashes
//! into the first 10 of 100 buckets. Unlike `Weight`, which draws per request, a user stays on
//! the same side. Run it with `cargo run --example custom_predicate` and try
//! `curl -H 'X-User-Id: alice' localhost:8080/`.

use std::hash::{DefaultHasher, Hash, Hasher};

use http::HeaderName;
use weir::Gateway;
use weir_predicates::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`Canary`] from `Canary=PERCENT, HEADER`.
struct CanaryFactory;

impl PredicateFactory for CanaryFactory {
    fn name(&self) -> &'static str {
        "Canary"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["percent", "header"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let percent: u64 = args
            .parse("percent", "a whole number from 0 to 100")?
            .unwrap_or(0);
        if percent > 100 {
            return Err(ArgError::for_arg(
                "percent",
                format!("must be at most 100, found {percent}"),
            ));
        }
        let header = args.get("header").unwrap_or("X-User-Id");
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| ArgError::for_arg("header", format!("`{header}` is not a header name")))?;
        Ok(Box::new(Canary { percent, header }))
    }
}

/// Matches users whose id hashes into the first `percent` buckets.
struct Canary {
    percent: u64,
    header: HeaderName,
}

impl Predicate for Canary {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        let Some(user) = request.headers.get(&self.header) else {
            return false;
        };
        let mut hasher = DefaultHasher::new();
        user.as_bytes().hash(&mut hasher);
        hasher.finish() % 100 < self.percent
    }
}

const CONFIG: &str = r#"
server:
  listen: 127.0.0.1:8080
admin:
  listen: 127.0.0.1:9901
gateway:
  routes:
    - id: canary
      uri: http://127.0.0.1:9002
      predicates:
        - Canary=10, X-User-Id
    - id: stable
      uri: http://127.0.0.1:9001
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let gateway = Gateway::builder()
        .predicate(CanaryFactory)
        .config_text("example.yaml", CONFIG)
        .start()
        .await?;
    tokio::signal::ctrl_c().await?;
    gateway.shutdown().await;
    Ok(())
}
