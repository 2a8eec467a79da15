//! `AddRequestHeader`: adds a request header value, keeping any the client sent. The value may use `{var}`.
//!
//! ```yaml
//! - AddRequestHeader=X-Request-Red, Blue-{segment}
//! ```

use crate::header_op::{HeaderOp, Op, Side};
use crate::{ArgError, Args, Filter, FilterContext, FilterFactory, Shortcut};

/// Builds the `AddRequestHeader` filter.
pub struct AddRequestHeaderFactory;

impl FilterFactory for AddRequestHeaderFactory {
    fn name(&self) -> &'static str {
        "AddRequestHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "value"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        HeaderOp::build(args, ctx, Side::Request, Op::Append)
    }
}
