//! `RemoveRequestHeader`: removes a request header before it is forwarded.
//!
//! ```yaml
//! - RemoveRequestHeader=X-Request-Foo
//! ```

use crate::header_op::{HeaderOp, Op, Side};
use crate::{ArgError, Args, Filter, FilterContext, FilterFactory, Shortcut};

/// Builds the `RemoveRequestHeader` filter.
pub struct RemoveRequestHeaderFactory;

impl FilterFactory for RemoveRequestHeaderFactory {
    fn name(&self) -> &'static str {
        "RemoveRequestHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        HeaderOp::build(args, ctx, Side::Request, Op::Remove)
    }
}
