//! `Before`: matches requests made before a date-time.
//!
//! ```yaml
//! - Before=2017-01-20T17:42:47.789-07:00[America/Denver]
//! ```
//! The date-time has an offset, or is milliseconds since the Unix epoch.

use std::time::SystemTime;

use crate::datetime::parse_datetime;
use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`BeforePredicate`].
pub struct BeforeFactory;

impl PredicateFactory for BeforeFactory {
    fn name(&self) -> &'static str {
        "Before"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["datetime"])
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let datetime = parse_datetime("datetime", args.require("datetime")?)?;
        Ok(Box::new(BeforePredicate { datetime }))
    }
}

/// Matches while the clock is before the date-time.
#[derive(Debug)]
pub struct BeforePredicate {
    datetime: SystemTime,
}

impl Predicate for BeforePredicate {
    fn test(&self, _: &RequestView<'_>, _: &mut Captures) -> bool {
        let now = SystemTime::now();
        now < self.datetime
    }
}
