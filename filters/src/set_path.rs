//! `SetPath`: replaces the path with a template.
//!
//! ```yaml
//! predicates:
//! - Path=/red/{segment}
//! filters:
//! - SetPath=/{segment}     # /red/blue -> /blue
//! ```

use std::sync::Arc;

use http::Response;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
    Template,
};

/// Builds [`SetPath`].
pub struct SetPathFactory;

impl FilterFactory for SetPathFactory {
    fn name(&self) -> &'static str {
        "SetPath"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["template"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let template = ctx.template("template", args.require("template")?.trim())?;
        Ok(Filter::Edit(Arc::new(SetPath { template })))
    }
}

/// Sets the path from a template.
#[derive(Debug)]
pub struct SetPath {
    template: Template,
}

impl EditFilter for SetPath {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let path = self.template.expand(&exchange.vars).into_owned();
        if path.starts_with('/') {
            exchange.set_path(&path)
        } else {
            exchange.set_path(&format!("/{path}"))
        }
    }

    fn edits_response(&self) -> bool {
        false
    }
}
