//! `Header`: matches a request header, optionally against a regex.
//!
//! ```yaml
//! - Header=X-Request-Id, \d+
//! ```
//! The header name is case-insensitive. Without a regex, the header's presence matches. With
//! one, the header's values are split on commas and the route matches when any value matches
//! the regex in full.

use http::HeaderName;

use crate::{
    ArgError, Args, BuildContext, Captures, FullMatch, Predicate, PredicateFactory, RequestView,
    Shortcut,
};

/// Builds [`HeaderPredicate`].
pub struct HeaderFactory;

impl PredicateFactory for HeaderFactory {
    fn name(&self) -> &'static str {
        "Header"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["header", "regexp"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let name = args.require("header")?;
        let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            ArgError::for_arg("header", format!("`{name}` is not a valid header name"))
        })?;
        let regexp = match args.get("regexp").map(str::trim) {
            Some(re) if !re.is_empty() => Some(FullMatch::new(re).map_err(|e| ArgError {
                arg: Some("regexp".into()),
                ..e
            })?),
            _ => None,
        };
        Ok(Box::new(HeaderPredicate { header, regexp }))
    }
}

/// Matches on the presence or the values of one header.
#[derive(Debug)]
pub struct HeaderPredicate {
    header: HeaderName,
    regexp: Option<FullMatch>,
}

impl Predicate for HeaderPredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        let mut values = request.headers.get_all(&self.header).iter().peekable();
        match &self.regexp {
            None => values.peek().is_some(),
            Some(re) => values
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|v| re.is_match(v.trim())),
        }
    }
}
