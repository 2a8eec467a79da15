//! `SetResponseHeader`: replaces every value of a response header with one. The value may use `{var}`.
//!
//! ```yaml
//! - SetResponseHeader=X-Response-Red, Blue
//! ```

use crate::header_op::{HeaderOp, Op, Side};
use crate::{ArgError, Args, Filter, FilterContext, FilterFactory, Shortcut};

/// Builds the `SetResponseHeader` filter.
pub struct SetResponseHeaderFactory;

impl FilterFactory for SetResponseHeaderFactory {
    fn name(&self) -> &'static str {
        "SetResponseHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "value"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        HeaderOp::build(args, ctx, Side::Response, Op::Set)
    }
}
