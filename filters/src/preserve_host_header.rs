//! `PreserveHostHeader`: sends the client's `Host` header upstream instead of the upstream's
//! own authority.
//!
//! ```yaml
//! - PreserveHostHeader
//! ```

use std::sync::Arc;

use http::Response;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`PreserveHostHeader`].
pub struct PreserveHostHeaderFactory;

impl FilterFactory for PreserveHostHeaderFactory {
    fn name(&self) -> &'static str {
        "PreserveHostHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&[])
    }

    fn build(&self, _: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        Ok(Filter::Edit(Arc::new(PreserveHostHeader)))
    }
}

/// Marks the exchange so the forwarder keeps the client's `Host`.
#[derive(Debug)]
pub struct PreserveHostHeader;

impl EditFilter for PreserveHostHeader {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        exchange.preserve_host = true;
        Ok(())
    }

    fn edits_response(&self) -> bool {
        false
    }
}
