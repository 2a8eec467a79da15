//! `After`: matches requests made after a date-time.
//!
//! ```yaml
//! - After=2017-01-20T17:42:47.789-07:00[America/Denver]
//! ```
//! The date-time has an offset, or is milliseconds since the Unix epoch.

use std::time::SystemTime;

use crate::datetime::parse_datetime;
use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`AfterPredicate`].
pub struct AfterFactory;

impl PredicateFactory for AfterFactory {
    fn name(&self) -> &'static str {
        "After"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["datetime"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let datetime = parse_datetime("datetime", args.require("datetime")?)?;
        Ok(Box::new(AfterPredicate { datetime }))
    }
}

/// Matches while the clock is after the date-time.
#[derive(Debug)]
pub struct AfterPredicate {
    datetime: SystemTime,
}

impl Predicate for AfterPredicate {
    fn test(&self, _: &RequestView<'_>, _: &mut Captures) -> bool {
        let now = SystemTime::now();
        now > self.datetime
    }
}
