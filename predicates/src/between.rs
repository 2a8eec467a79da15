//! `Between`: matches requests made strictly between two date-times.
//!
//! ```yaml
//! - Between=2017-01-20T17:42:47.789-07:00[America/Denver], 2017-01-21T17:42:47.789-07:00[America/Denver]
//! ```

use std::time::SystemTime;

use crate::datetime::parse_datetime;
use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`BetweenPredicate`].
pub struct BetweenFactory;

impl PredicateFactory for BetweenFactory {
    fn name(&self) -> &'static str {
        "Between"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["datetime1", "datetime2"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let start = parse_datetime("datetime1", args.require("datetime1")?)?;
        let end = parse_datetime("datetime2", args.require("datetime2")?)?;
        if start >= end {
            return Err(ArgError::for_arg(
                "datetime2",
                "must be later than datetime1",
            ));
        }
        Ok(Box::new(BetweenPredicate { start, end }))
    }
}

/// Matches while the clock is after `start` and before `end`.
#[derive(Debug)]
pub struct BetweenPredicate {
    start: SystemTime,
    end: SystemTime,
}

impl Predicate for BetweenPredicate {
    fn test(&self, _: &RequestView<'_>, _: &mut Captures) -> bool {
        let now = SystemTime::now();
        self.start < now && now < self.end
    }
}
