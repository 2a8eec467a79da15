//! The config loader and compiler: YAML in, a route table or errors out, never a panic.
//! No runtime is entered, so services start no background task, and DNS names resolve to
//! nothing: the fuzzer never touches the network.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use weir::compile::{build, Resources};
use weir::config::Source;
use weir::proxy::balance::Resolver;

struct NoDns;

impl Resolver for NoDns {
    fn resolve(&self, _: &str, _: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source {
        name: Arc::from("fuzz.yaml"),
        text: text.to_string(),
    };
    let mut resources = Resources::default();
    resources.resolver = Arc::new(NoDns);
    let env = |name: &str| match name {
        "ORIGIN" => Some("127.0.0.1:9".to_string()),
        "TOKEN" => Some("t0ken".to_string()),
        _ => None,
    };
    match build(&source, &resources, &env) {
        Ok(snapshot) => {
            let _ = weir::check::table(&snapshot);
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            let _ = errors.to_string();
        }
    }
});
