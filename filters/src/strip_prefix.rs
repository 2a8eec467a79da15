//! `StripPrefix`: removes the first `parts` segments of the path (default 1).
//!
//! ```yaml
//! - StripPrefix=2      # /name/blue/red -> /red
//! ```
//! Empty segments do not count; a trailing `/` is kept; stripping every segment leaves `/`.
//! The removed part is sent upstream as `X-Forwarded-Prefix`.

use std::sync::Arc;

use http::Response;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`StripPrefix`].
pub struct StripPrefixFactory;

impl FilterFactory for StripPrefixFactory {
    fn name(&self) -> &'static str {
        "StripPrefix"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["parts"])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let parts = args
            .parse::<usize>("parts", "a whole number of segments")?
            .unwrap_or(1);
        Ok(Filter::Edit(Arc::new(StripPrefix { parts })))
    }
}

/// Removes leading path segments.
#[derive(Debug)]
pub struct StripPrefix {
    parts: usize,
}

impl StripPrefix {
    /// `path` without its first segments.
    pub fn strip(&self, path: &str) -> String {
        let rest: Vec<&str> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .skip(self.parts)
            .collect();
        let mut out = String::with_capacity(path.len());
        for seg in &rest {
            out.push('/');
            out.push_str(seg);
        }
        if out.is_empty() || (path.ends_with('/') && !out.ends_with('/')) {
            out.push('/');
        }
        out
    }
}

impl EditFilter for StripPrefix {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let before = exchange.path().to_string();
        let after = self.strip(&before);
        let kept = after.trim_end_matches('/');
        let removed = match before.trim_end_matches('/').strip_suffix(kept) {
            Some(prefix) if !kept.is_empty() => prefix.to_string(),
            _ => before.trim_end_matches('/').to_string(),
        };
        if !removed.is_empty() {
            let prefix = exchange.stripped_prefix.take().unwrap_or_default();
            exchange.stripped_prefix = Some(prefix + &removed);
        }
        exchange.set_path(&after)
    }

    fn edits_response(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_segments() {
        let two = StripPrefix { parts: 2 };
        assert_eq!(two.strip("/name/blue/red"), "/red");
        assert_eq!(two.strip("/name/blue/red/"), "/red/");
        assert_eq!(two.strip("/name/blue"), "/");
        assert_eq!(two.strip("//name//blue/red"), "/red");
        assert_eq!(StripPrefix { parts: 0 }.strip("/a/b"), "/a/b");
    }
}
