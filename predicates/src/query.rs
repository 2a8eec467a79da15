//! `Query`: matches a query parameter, optionally against a regex.
//!
//! ```yaml
//! - Query=color, gree.
//! ```
//! Without a regex, the parameter's presence matches (an empty value counts). With one, any
//! value of the parameter, percent-decoded, must match the regex in full.

use crate::{
    percent, ArgError, Args, BuildContext, Captures, FullMatch, Predicate, PredicateFactory,
    RequestView, Shortcut,
};

/// Builds [`QueryPredicate`].
pub struct QueryFactory;

impl PredicateFactory for QueryFactory {
    fn name(&self) -> &'static str {
        "Query"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["param", "regexp"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let param = args.require("param")?.trim().to_string();
        let regexp = match args.get("regexp").map(str::trim) {
            Some(re) if !re.is_empty() => Some(FullMatch::new(re).map_err(|e| ArgError {
                arg: Some("regexp".into()),
                ..e
            })?),
            _ => None,
        };
        Ok(Box::new(QueryPredicate { param, regexp }))
    }
}

/// Matches on the presence or the values of one query parameter.
#[derive(Debug)]
pub struct QueryPredicate {
    param: String,
    regexp: Option<FullMatch>,
}

impl Predicate for QueryPredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        let mut values = request
            .query_pairs()
            .filter(|(k, _)| percent::decode(k) == self.param)
            .map(|(_, v)| v);
        match &self.regexp {
            None => values.next().is_some(),
            Some(re) => values.any(|v| re.is_match(&percent::decode(v))),
        }
    }
}
