//! The route index: narrows the routes a request could take by its path, before any predicate
//! runs, while keeping SCG's first-match order exactly.
//!
//! Every route whose `Path` patterns start with literal segments is registered in a segment
//! trie under each pattern's literal prefix (`/api/v1/{id}/**` under `api` → `v1`). A request
//! walks the trie along its own path's segments and collects the routes of every node it
//! passes: those are the only indexed routes whose patterns can match. Routes that cannot be
//! indexed (no `Path` predicate, or a pattern starting with `*`, `**`, `{var}`) are always
//! candidates. The candidates are then tried in table order (order, then file order), so the
//! first match is the same one a full scan would find.

use fnv::FnvHashMap;
use std::cell::RefCell;
use weir_predicates::path::split_segment;

/// A trie node: the routes registered exactly here, and the children by segment.
#[derive(Default, Debug)]
struct Node {
    routes: Vec<u32>,
    // FNV hashes the short path segments about five times faster than the default SipHash.
    // SipHash's resistance to collisions matters against keys an attacker inserts; these keys
    // come from the config, and a request only looks them up.
    children: FnvHashMap<Box<str>, Node>,
}

/// The index of one route table.
#[derive(Default, Debug)]
pub struct RouteIndex {
    root: Node,
    /// Positions of the routes that are always candidates, in table order.
    unindexed: Vec<u32>,
}

thread_local! {
    /// Reused per thread, so that collecting candidates does not allocate per request.
    static CANDIDATES: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl RouteIndex {
    /// Indexes routes given in table order: for each, `Some(prefixes)` (literal segment lists,
    /// one per pattern) or `None` when it cannot be indexed.
    pub fn new(prefixes: impl IntoIterator<Item = Option<Vec<Vec<String>>>>) -> Self {
        let mut index = RouteIndex::default();
        for (position, prefixes) in prefixes.into_iter().enumerate() {
            let position = position as u32;
            match prefixes {
                None => index.unindexed.push(position),
                Some(prefixes) => {
                    for prefix in prefixes {
                        let mut node = &mut index.root;
                        for segment in prefix {
                            node = node.children.entry(segment.into_boxed_str()).or_default();
                        }
                        if node.routes.last() != Some(&position) {
                            node.routes.push(position);
                        }
                    }
                }
            }
        }
        index
    }

    /// How many routes must be tried for every request.
    pub fn unindexed(&self) -> usize {
        self.unindexed.len()
    }

    /// Calls `try_route` with the position of each route that could take a request for
    /// `path`, in table order, until it returns `true`; returns that position.
    pub fn first(&self, path: &str, mut try_route: impl FnMut(u32) -> bool) -> Option<u32> {
        CANDIDATES.with(|cell| {
            let mut guard = cell.try_borrow_mut();
            let mut fallback = Vec::new();
            // Re-entrant use (a forward: dispatch inside a predicate is impossible, but be
            // safe) gets a fresh buffer.
            let found: &mut Vec<u32> = match guard.as_deref_mut() {
                Ok(buffer) => buffer,
                Err(_) => &mut fallback,
            };
            found.clear();
            let mut node = &self.root;
            found.extend_from_slice(&node.routes);
            let mut rest = Some(path.strip_prefix('/').unwrap_or(path));
            while let Some((segment, next)) = rest.map(split_segment) {
                match node.children.get(segment) {
                    Some(child) => {
                        node = child;
                        found.extend_from_slice(&node.routes);
                    }
                    None => break,
                }
                rest = next;
            }
            found.sort_unstable();
            found.dedup();
            // Merge the indexed candidates with the unindexed routes, in table order.
            let (mut a, mut b) = (found.iter().peekable(), self.unindexed.iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (None, None) => return None,
                    (Some(&&x), None) => {
                        a.next();
                        x
                    }
                    (None, Some(&&y)) => {
                        b.next();
                        y
                    }
                    (Some(&&x), Some(&&y)) => {
                        if x < y {
                            a.next();
                            x
                        } else {
                            b.next();
                            y
                        }
                    }
                };
                if try_route(next) {
                    return Some(next);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    fn candidates(index: &RouteIndex, path: &str) -> Vec<u32> {
        let mut seen = Vec::new();
        index.first(path, |i| {
            seen.push(i);
            false
        });
        seen
    }

    #[test]
    fn candidates_keep_table_order_and_include_unindexed_routes() {
        let index = RouteIndex::new(vec![
            Some(vec![p(&["api", "v1"])]),          // 0
            None,                                   // 1: always tried
            Some(vec![p(&["api"])]),                // 2
            Some(vec![p(&["other"]), p(&["api"])]), // 3: two patterns
            Some(vec![p(&[])]),                     // 4: `/**`
            Some(vec![p(&["api", "v2"])]),          // 5
        ]);
        assert_eq!(candidates(&index, "/api/v1/x"), vec![0, 1, 2, 3, 4]);
        assert_eq!(candidates(&index, "/api/v2"), vec![1, 2, 3, 4, 5]);
        assert_eq!(candidates(&index, "/other"), vec![1, 3, 4]);
        assert_eq!(candidates(&index, "/nothing"), vec![1, 4]);
        assert_eq!(index.first("/api/v1", |i| i == 2), Some(2));
    }
}
