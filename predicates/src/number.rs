//! `Number`: SCG's custom-predicate example, and the model for writing your own.
//!
//! ```yaml
//! - Number=1,3
//! ```
//! Matches when the query parameter `number` is an integer equal to one of the listed values.
//! A missing or non-numeric parameter is simply no match.
//!
//! This file uses nothing but the public API of `weir_predicates`, exactly as a predicate in
//! your own crate would: a factory (name, shortcut, build) and the predicate it builds.

use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`NumberPredicate`].
pub struct NumberFactory;

impl PredicateFactory for NumberFactory {
    fn name(&self) -> &'static str {
        "Number"
    }

    fn shortcut(&self) -> Shortcut {
        // `Number=1,3`: every value goes into the one list argument `values`.
        Shortcut::GatherList("values")
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        // Parse once, here; a bad value is a precise config error, never a request-time failure.
        let values = args
            .list("values")
            .into_iter()
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ArgError::for_arg("values", format!("`{v}` is not an integer")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if values.is_empty() {
            return Err(ArgError::for_arg(
                "values",
                "at least one integer is required, e.g. `Number=1`",
            ));
        }
        Ok(Box::new(NumberPredicate { values }))
    }
}

/// Matches when `?number=` is one of `values`.
#[derive(Debug)]
pub struct NumberPredicate {
    values: Vec<i64>,
}

impl Predicate for NumberPredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        request
            .query_pairs()
            .filter(|(name, _)| *name == "number")
            .any(|(_, value)| value.parse::<i64>().is_ok_and(|n| self.values.contains(&n)))
    }
}
