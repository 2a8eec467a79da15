//! `SetRequestHostHeader`: sends a given `Host` header upstream.
//!
//! ```yaml
//! - SetRequestHostHeader=example.org
//! ```
//! The host may use `{var}`.

use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};

use crate::header_op::header_template;
use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
    Template,
};

/// Builds [`SetRequestHostHeader`].
pub struct SetRequestHostHeaderFactory;

impl FilterFactory for SetRequestHostHeaderFactory {
    fn name(&self) -> &'static str {
        "SetRequestHostHeader"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["host"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let host = header_template("host", args.require("host")?.trim(), ctx)?;
        Ok(Filter::Edit(Arc::new(SetRequestHostHeader { host })))
    }
}

/// Replaces the `Host` sent upstream.
#[derive(Debug)]
pub struct SetRequestHostHeader {
    host: Template,
}

impl EditFilter for SetRequestHostHeader {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let value = HeaderValue::from_str(&self.host.expand(&exchange.vars)).map_err(|_| {
            exchange.error(
                StatusCode::BAD_REQUEST,
                "the Host value built from the request is not a valid header value",
            )
        })?;
        exchange.request.headers_mut().insert(header::HOST, value);
        exchange.preserve_host = true;
        Ok(())
    }

    fn edits_response(&self) -> bool {
        false
    }
}
