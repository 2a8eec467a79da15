//! `SetRequestHeader`: replaces every value of a request header with one. The value may use `{var}`.
//!
//! ```yaml
//! - SetRequestHeader=X-Request-Red, Blue
//! ```

use crate::header_op::{HeaderOp, Op, Side};
use crate::{ArgError, Args, Filter, FilterContext, FilterFactory, Shortcut};

/// Builds the `SetRequestHeader` filter.
pub struct SetRequestHeaderFactory;

impl FilterFactory for SetRequestHeaderFactory {
    fn name(&self) -> &'static str {
        "SetRequestHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "value"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        HeaderOp::build(args, ctx, Side::Request, Op::Set)
    }
}
