//! `weir check FILE`: validate a config and print the compiled route table.

use std::fmt::Write as _;

use crate::compile::{build, Registry, Resources, Snapshot};
use crate::config::{ConfigErrors, Source};

/// Loads and compiles `source` exactly as start-up and reload do. On success returns the
/// printed table (warnings first); on failure every error.
pub fn check(
    source: &Source,
    registry: Registry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigErrors> {
    let snapshot = build(source, &Resources::new(registry), env)?;
    let mut out = String::new();
    for warning in &snapshot.config.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out.push_str(&table(&snapshot));
    Ok(out)
}

/// The route table in matching order, each route with its predicates and filters.
pub fn table(snapshot: &Snapshot) -> String {
    let routes = snapshot.table.routes();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} route{} (listen {}, admin {})",
        snapshot.config.source,
        routes.len(),
        if routes.len() == 1 { "" } else { "s" },
        snapshot.config.server.listen,
        snapshot.config.admin.listen
    );
    for route in routes {
        let _ = writeln!(
            out,
            "\n[order {}] {} -> {}",
            route.order, route.id, route.uri
        );
        if route.predicate_text.is_empty() {
            let _ = writeln!(out, "  predicate: (none: matches every request)");
        }
        for p in &route.predicate_text {
            let _ = writeln!(out, "  predicate: {p}");
        }
        for f in &route.filter_text {
            let _ = writeln!(out, "  filter:    {f}");
        }
    }
    out
}
