//! `RemoveResponseHeader`: removes a response header before it reaches the client.
//!
//! ```yaml
//! - RemoveResponseHeader=X-Response-Foo
//! ```

use crate::header_op::{HeaderOp, Op, Side};
use crate::{ArgError, Args, Filter, FilterContext, FilterFactory, Shortcut};

/// Builds the `RemoveResponseHeader` filter.
pub struct RemoveResponseHeaderFactory;

impl FilterFactory for RemoveResponseHeaderFactory {
    fn name(&self) -> &'static str {
        "RemoveResponseHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        HeaderOp::build(args, ctx, Side::Response, Op::Remove)
    }
}
