//! `AllowMethods`: answers 405 to a request whose method the route does not serve.
//!
//! ```yaml
//! - AllowMethods=GET,POST
//! ```
//! A `Method` predicate makes a request with another method fall through to the next route (and
//! to 404 when none takes it); this filter says instead that the path exists but not for that
//! method: 405 with `Allow` listing the methods, as the OpenFaaS gateway answers.

use std::sync::Arc;

use http::{header, HeaderValue, Method, Response, StatusCode};

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`AllowMethods`].
pub struct AllowMethodsFactory;

impl FilterFactory for AllowMethodsFactory {
    fn name(&self) -> &'static str {
        "AllowMethods"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::GatherList("methods")
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let methods = args.methods("methods")?;
        if methods.is_empty() {
            return Err(ArgError::for_arg(
                "methods",
                "at least one method is required, e.g. `AllowMethods=GET`",
            ));
        }
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let allow = HeaderValue::from_str(&allow)
            .map_err(|_| ArgError::for_arg("methods", "not a valid header value"))?;
        Ok(Filter::Edit(Arc::new(AllowMethods { methods, allow })))
    }
}

/// The filter.
pub struct AllowMethods {
    methods: Vec<Method>,
    allow: HeaderValue,
}

impl EditFilter for AllowMethods {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        if self.methods.contains(exchange.request.method()) {
            return Ok(());
        }
        let message = format!(
            "{} is not allowed here; allowed: {}",
            exchange.request.method(),
            self.allow.to_str().unwrap_or_default()
        );
        let mut response = exchange.error(StatusCode::METHOD_NOT_ALLOWED, &message);
        response
            .headers_mut()
            .insert(header::ALLOW, self.allow.clone());
        Err(response)
    }

    fn edits_response(&self) -> bool {
        false
    }
}
