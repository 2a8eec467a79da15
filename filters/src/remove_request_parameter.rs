//! `RemoveRequestParameter`: removes every value of a query parameter.
//!
//! ```yaml
//! - RemoveRequestParameter=red
//! ```
//! The other parameters are kept byte for byte, in order.

use std::sync::Arc;

use http::Response;
use weir_predicates::percent;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`RemoveRequestParameter`].
pub struct RemoveRequestParameterFactory;

impl FilterFactory for RemoveRequestParameterFactory {
    fn name(&self) -> &'static str {
        "RemoveRequestParameter"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name"])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let name = args.require("name")?.trim().to_string();
        Ok(Filter::Edit(Arc::new(RemoveRequestParameter { name })))
    }
}

/// Removes one query parameter.
#[derive(Debug)]
pub struct RemoveRequestParameter {
    name: String,
}

impl EditFilter for RemoveRequestParameter {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let Some(query) = exchange.query() else {
            return Ok(());
        };
        let is_target = |pair: &&str| {
            percent::decode(pair.split_once('=').map_or(*pair, |(k, _)| k)) == self.name
        };
        if !query.split('&').any(|p| is_target(&p)) {
            return Ok(());
        }
        let kept: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !is_target(p))
            .collect();
        let kept = kept.join("&");
        exchange.set_query(Some(&kept))
    }

    fn edits_response(&self) -> bool {
        false
    }
}
