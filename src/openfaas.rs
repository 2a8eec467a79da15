//! What weir does for the OpenFaaS gateway's default config beyond its filters: the warning
//! that `/system` routes are open when basic auth is off.

use crate::compile::Snapshot;

/// Logs, loudly, every route under `/system/` that has no `BasicAuth` filter: with the
/// embedded default config and `basic_auth` not `true`, anyone who can reach the gateway can
/// deploy, delete and scale functions and read secrets' names.
pub fn warn_open_system_routes(snapshot: &Snapshot) {
    let open: Vec<&str> = snapshot
        .table
        .routes()
        .iter()
        .filter(|r| r.predicate_text.iter().any(|p| p.contains("/system/")))
        .filter(|r| !r.filter_text.iter().any(|f| f.starts_with("BasicAuth(")))
        .map(|r| &*r.id)
        .collect();
    if open.is_empty() {
        return;
    }
    tracing::warn!(
        routes = %open.join(", "),
        "!!! BASIC AUTH IS OFF: the /system routes are open to anyone who can reach this gateway \
         (deploy, delete, scale, secrets, logs). Set basic_auth=true and put the credentials in \
         secret_mount_path (basic-auth-user, basic-auth-password) !!!"
    );
}
