//! `RewritePath`: rewrites the path with a regex replacement.
//!
//! ```yaml
//! - RewritePath=/red/?(?<segment>.*), /$\{segment}
//! ```
//! Every match of `regexp` in the path is replaced by `replacement`, in which `${name}` and
//! `$1` refer to groups. Write `$\{name}` in YAML (SCG's escape): a bare `${name}` would be
//! read as an environment placeholder. The rewrite works on the path as received, so
//! percent-encoded characters stay encoded, never encoded twice.

use std::sync::Arc;

use http::Response;
use regex::Regex;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`RewritePath`].
pub struct RewritePathFactory;

impl FilterFactory for RewritePathFactory {
    fn name(&self) -> &'static str {
        "RewritePath"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["regexp", "replacement"])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let pattern = args.require("regexp")?;
        let regexp = Regex::new(pattern)
            .map_err(|e| ArgError::for_arg("regexp", weir_predicates::regex_error(pattern, &e)))?;
        let replacement = args.get("replacement").unwrap_or("").to_string();
        Ok(Filter::Edit(Arc::new(RewritePath {
            regexp,
            replacement,
        })))
    }
}

/// Replaces every match of a regex in the path.
#[derive(Debug)]
pub struct RewritePath {
    regexp: Regex,
    replacement: String,
}

impl RewritePath {
    /// The rewritten form of `path`.
    pub fn rewrite<'p>(&self, path: &'p str) -> std::borrow::Cow<'p, str> {
        self.regexp.replace_all(path, self.replacement.as_str())
    }
}

impl EditFilter for RewritePath {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let rewritten = self.rewrite(exchange.path());
        if let std::borrow::Cow::Owned(path) = rewritten {
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            exchange.set_path(&path)?;
        }
        Ok(())
    }

    fn edits_response(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_with_named_groups() {
        let f = RewritePath {
            regexp: Regex::new("/red/?(?<segment>.*)").unwrap(),
            replacement: "/${segment}".into(),
        };
        assert_eq!(f.rewrite("/red/blue"), "/blue");
        assert_eq!(f.rewrite("/red"), "/");
        assert_eq!(f.rewrite("/green"), "/green");
        assert_eq!(f.rewrite("/red/a%20b"), "/a%20b");
    }
}
