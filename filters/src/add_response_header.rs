//! `AddResponseHeader`: adds a response header value. The value may use `{var}`.
//!
//! ```yaml
//! - AddResponseHeader=X-Response-Red, Blue
//! - AddResponseHeader=X-Powered-By, weir, false   # only when the upstream sent none
//! ```
//! With `override` true (the default) the value is added beside any the upstream sent; with
//! `false` it is added only when the upstream sent no (non-blank) value.

use crate::header_op::{HeaderOp, Op, Side};
use crate::{ArgError, Args, Filter, FilterContext, FilterFactory, Shortcut};

/// Builds the `AddResponseHeader` filter.
pub struct AddResponseHeaderFactory;

impl FilterFactory for AddResponseHeaderFactory {
    fn name(&self) -> &'static str {
        "AddResponseHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "value", "override"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let op = if args.flag("override", true)? {
            Op::Append
        } else {
            Op::AppendIfAbsent
        };
        HeaderOp::build(args, ctx, Side::Response, op)
    }
}
