//! `RedirectTo`: answers with a redirect instead of forwarding.
//!
//! ```yaml
//! - RedirectTo=302, https://acme.org
//! - RedirectTo=301, https://acme.org/new, true   # keep the request's query
//! ```
//! The status must be a 3xx. With `includeRequestParams` the request's query is appended.

use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};

use crate::set_status::parse_status;
use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`RedirectTo`].
pub struct RedirectToFactory;

impl FilterFactory for RedirectToFactory {
    fn name(&self) -> &'static str {
        "RedirectTo"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["status", "url", "includeRequestParams"])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let status = parse_status("status", args.require("status")?)?;
        if !status.is_redirection() {
            return Err(ArgError::for_arg(
                "status",
                format!("must be a 3xx redirect status, found {}", status.as_u16()),
            ));
        }
        let url = args.require("url")?.trim();
        let location = HeaderValue::from_str(url).map_err(|_| {
            ArgError::for_arg(
                "url",
                format!("`{url}` cannot be sent as a Location header"),
            )
        })?;
        let include_query = args.flag("includeRequestParams", false)?;
        Ok(Filter::Edit(Arc::new(RedirectTo {
            status,
            location,
            include_query,
        })))
    }
}

/// Answers with a redirect.
#[derive(Debug)]
pub struct RedirectTo {
    status: StatusCode,
    location: HeaderValue,
    include_query: bool,
}

impl EditFilter for RedirectTo {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let location = match exchange
            .query()
            .filter(|q| self.include_query && !q.is_empty())
        {
            None => self.location.clone(),
            Some(query) => {
                let base = self.location.to_str().unwrap_or("");
                let sep = if base.contains('?') { '&' } else { '?' };
                HeaderValue::from_str(&format!("{base}{sep}{query}"))
                    .unwrap_or_else(|_| self.location.clone())
            }
        };
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = self.status;
        response.headers_mut().insert(header::LOCATION, location);
        Err(response)
    }

    fn edits_response(&self) -> bool {
        false
    }
}
