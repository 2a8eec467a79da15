//! `PrefixPath`: puts a prefix in front of the path.
//!
//! ```yaml
//! - PrefixPath=/mypath     # /hello -> /mypath/hello
//! ```
//! The prefix may use `{var}`.

use std::sync::Arc;

use http::Response;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
    Template,
};

/// Builds [`PrefixPath`].
pub struct PrefixPathFactory;

impl FilterFactory for PrefixPathFactory {
    fn name(&self) -> &'static str {
        "PrefixPath"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["prefix"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let prefix = ctx.template("prefix", args.require("prefix")?.trim())?;
        Ok(Filter::Edit(Arc::new(PrefixPath { prefix })))
    }
}

/// Prefixes the path.
#[derive(Debug)]
pub struct PrefixPath {
    prefix: Template,
}

impl EditFilter for PrefixPath {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let prefix = self.prefix.expand(&exchange.vars);
        let prefix = prefix.trim_end_matches('/');
        let path = format!(
            "{}{prefix}{}",
            if prefix.starts_with('/') { "" } else { "/" },
            exchange.path()
        );
        exchange.set_path(&path)
    }

    fn edits_response(&self) -> bool {
        false
    }
}
