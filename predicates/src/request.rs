use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};

/// What a predicate may look at: the request head, after weir's path normalisation.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The normalised path, always starting with `/`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The host the client asked for (`Host` header or the HTTP/2 authority), with its port.
    pub host: Option<&'a str>,
    /// The TCP peer.
    pub remote: SocketAddr,
    /// A random number drawn once per request, so that every `Weight` predicate of a request
    /// sees the same draw.
    pub seed: u64,
}

impl<'a> RequestView<'a> {
    /// Iterates over the query parameters as raw `(name, value)` pairs, in order. A parameter
    /// without `=` has an empty value.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }
}

/// Variables captured by predicates (`{segment}` in `Path=/red/{segment}`), read by filters'
/// `{var}` templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures {
    vars: Vec<(Arc<str>, String)>,
}

impl Captures {
    /// Records `name = value`, replacing an earlier value of the same name.
    pub fn insert(&mut self, name: &Arc<str>, value: &str) {
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => {
                v.clear();
                v.push_str(value);
            }
            None => self.vars.push((name.clone(), value.to_string())),
        }
    }

    /// The value of a captured variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All variables in capture order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (&**n, v.as_str()))
    }

    /// How many variables are recorded.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no variable is recorded.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Forgets every variable recorded after the first `len`, so that a route that did not
    /// match leaves nothing behind for the next.
    pub fn truncate(&mut self, len: usize) {
        self.vars.truncate(len);
    }
}
