//! `Cookie`: matches a cookie whose value fully matches a regex.
//!
//! ```yaml
//! - Cookie=chocolate, ch.p
//! ```

use crate::{
    ArgError, Args, BuildContext, Captures, FullMatch, Predicate, PredicateFactory, RequestView,
    Shortcut,
};

/// Builds [`CookiePredicate`].
pub struct CookieFactory;

impl PredicateFactory for CookieFactory {
    fn name(&self) -> &'static str {
        "Cookie"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "regexp"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let name = args.require("name")?.trim().to_string();
        let re = args.require("regexp")?;
        let regexp = FullMatch::new(re.trim()).map_err(|e| ArgError {
            arg: Some("regexp".into()),
            ..e
        })?;
        Ok(Box::new(CookiePredicate { name, regexp }))
    }
}

/// Matches when a cookie with the name has a matching value.
#[derive(Debug)]
pub struct CookiePredicate {
    name: String,
    regexp: FullMatch,
}

impl Predicate for CookiePredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        request
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(n, v)| n == self.name && self.regexp.is_match(v.trim_matches('"')))
    }
}
