//! `SetStatus`: sets the status of the response, whatever the upstream answered.
//!
//! ```yaml
//! - SetStatus=401
//! - SetStatus=UNAUTHORIZED
//! ```
//! The status is a number or its name in Spring's `HttpStatus` form (`BAD_GATEWAY`).

use std::sync::Arc;

use http::{Response, StatusCode};

use crate::{
    ArgError, Args, Body, Captures, EditFilter, Filter, FilterContext, FilterFactory, Shortcut,
};

/// Builds [`SetStatus`].
pub struct SetStatusFactory;

impl FilterFactory for SetStatusFactory {
    fn name(&self) -> &'static str {
        "SetStatus"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["status"])
    }

    fn build(&self, args: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let status = parse_status("status", args.require("status")?)?;
        Ok(Filter::Edit(Arc::new(SetStatus { status })))
    }
}

/// Parses a status written as a number (`404`) or a Spring `HttpStatus` name (`NOT_FOUND`).
pub fn parse_status(arg: &str, text: &str) -> Result<StatusCode, ArgError> {
    let text = text.trim();
    if let Ok(code) = text.parse::<u16>() {
        return StatusCode::from_u16(code)
            .map_err(|_| ArgError::for_arg(arg, format!("`{text}` is not an HTTP status code")));
    }
    let wanted = text.to_ascii_uppercase().replace('-', "_");
    // Spring's names that are not the reason phrase written in capitals.
    const SPRING_NAMES: &[(&str, u16)] = &[
        ("I_AM_A_TEAPOT", 418),
        ("REQUESTED_RANGE_NOT_SATISFIABLE", 416),
        ("CONTENT_TOO_LARGE", 413),
        ("REQUEST_ENTITY_TOO_LARGE", 413),
        ("REQUEST_URI_TOO_LONG", 414),
        ("UNPROCESSABLE_CONTENT", 422),
        ("MOVED_TEMPORARILY", 302),
        ("BANDWIDTH_LIMIT_EXCEEDED", 509),
    ];
    if let Some((_, code)) = SPRING_NAMES.iter().find(|(name, _)| *name == wanted) {
        return StatusCode::from_u16(*code)
            .map_err(|_| ArgError::for_arg(arg, format!("`{text}` is not an HTTP status")));
    }
    (100..600)
        .filter_map(|c| StatusCode::from_u16(c).ok())
        .find(|s| {
            s.canonical_reason()
                .is_some_and(|r| r.to_ascii_uppercase().replace([' ', '-'], "_").replace('\'', "") == wanted)
        })
        .ok_or_else(|| ArgError::for_arg(arg, format!("`{text}` is not an HTTP status; write a number such as 404 or a name such as NOT_FOUND")))
}

/// Overrides the response status.
#[derive(Debug)]
pub struct SetStatus {
    status: StatusCode,
}

impl EditFilter for SetStatus {
    fn response(&self, response: &mut Response<Body>, _: &Captures) {
        *response.status_mut() = self.status;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(parse_status("s", "401").unwrap(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            parse_status("s", "BAD_GATEWAY").unwrap(),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            parse_status("s", "not_found").unwrap(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(parse_status("s", "I_AM_A_TEAPOT").unwrap().as_u16(), 418);
        assert_eq!(parse_status("s", "IM_A_TEAPOT").unwrap().as_u16(), 418);
        assert_eq!(
            parse_status("s", "REQUESTED_RANGE_NOT_SATISFIABLE").unwrap(),
            StatusCode::RANGE_NOT_SATISFIABLE
        );
        assert!(parse_status("s", "NOPE").is_err());
        assert!(parse_status("s", "1000").is_err());
    }
}
