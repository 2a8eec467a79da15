//! `Method`: matches the request method.
//!
//! ```yaml
//! - Method=GET,POST
//! ```
//! Method names compare exactly; names written in lower case are upper-cased when compiled.

use http::Method;

use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`MethodPredicate`].
pub struct MethodFactory;

impl PredicateFactory for MethodFactory {
    fn name(&self) -> &'static str {
        "Method"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::GatherList("methods")
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let methods = args.methods("methods")?;
        if methods.is_empty() {
            return Err(ArgError::for_arg(
                "methods",
                "at least one method is required, e.g. `Method=GET,POST`",
            ));
        }
        Ok(Box::new(MethodPredicate { methods }))
    }
}

/// Matches when the request method is one of the listed ones.
#[derive(Debug)]
pub struct MethodPredicate {
    methods: Vec<Method>,
}

impl Predicate for MethodPredicate {
    fn test(&self, request: &RequestView<'_>, _: &mut Captures) -> bool {
        self.methods.contains(request.method)
    }
}
