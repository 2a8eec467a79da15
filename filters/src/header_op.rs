//! The one implementation behind the header filters (`AddRequestHeader`, `SetResponseHeader`,
//! `RemoveRequestHeader`, ...): which side, which operation, which header.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::{
    ArgError, Args, Body, Captures, EditFilter, Exchange, Filter, FilterContext, Template,
};

/// Request or response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

/// What to do with the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// Add a value, keeping existing ones.
    Append,
    /// Add a value only when the header is missing.
    AppendIfAbsent,
    /// Replace every value with one.
    Set,
    /// Remove every value.
    Remove,
}

#[derive(Debug)]
pub(crate) struct HeaderOp {
    side: Side,
    op: Op,
    name: HeaderName,
    value: Option<Template>,
}

/// Whether values of the header `name` are credentials, never to be shown.
pub(crate) fn is_credential(name: &HeaderName) -> bool {
    name == http::header::AUTHORIZATION
        || name == http::header::PROXY_AUTHORIZATION
        || name == http::header::COOKIE
        || name == http::header::SET_COOKIE
}

/// Parses a header name argument.
pub(crate) fn header_name(arg: &str, text: &str) -> Result<HeaderName, ArgError> {
    HeaderName::from_bytes(text.trim().as_bytes())
        .map_err(|_| ArgError::for_arg(arg, format!("`{text}` is not a valid header name")))
}

/// Parses a header value template and checks its literal text can be sent.
pub(crate) fn header_template(
    arg: &str,
    text: &str,
    ctx: &FilterContext<'_>,
) -> Result<Template, ArgError> {
    let template = ctx.template(arg, text)?;
    for literal in template.literals() {
        if HeaderValue::from_str(literal).is_err() {
            return Err(ArgError::for_arg(arg, "contains characters not allowed in a header value (control characters such as CR, LF or NUL)"));
        }
    }
    Ok(template)
}

impl HeaderOp {
    /// Builds the filter from the `name` (and, unless removing, `value`) arguments.
    pub(crate) fn build(
        args: &Args,
        ctx: &FilterContext<'_>,
        side: Side,
        op: Op,
    ) -> Result<Filter, ArgError> {
        let name = header_name("name", args.require("name")?)?;
        let value = match op {
            Op::Remove => None,
            _ => Some(
                header_template("value", args.get("value").unwrap_or(""), ctx).map_err(|e| {
                    if is_credential(&name) {
                        // The message may quote the value: a credential.
                        ArgError::for_arg(
                            "value",
                            "is not a valid header value template (not shown: it is a credential)",
                        )
                    } else {
                        e
                    }
                })?,
            ),
        };
        Ok(Filter::Edit(Arc::new(HeaderOp {
            side,
            op,
            name,
            value,
        })))
    }

    fn apply(&self, headers: &mut HeaderMap, vars: &Captures) -> Result<(), ()> {
        let value = match &self.value {
            None => None,
            Some(template) => Some(HeaderValue::from_str(&template.expand(vars)).map_err(|_| ())?),
        };
        match (self.op, value) {
            (Op::Remove, _) => {
                headers.remove(&self.name);
            }
            (Op::Append, Some(v)) => {
                headers.append(self.name.clone(), v);
            }
            (Op::AppendIfAbsent, Some(v)) => {
                if headers
                    .get(&self.name)
                    .is_none_or(|old| old.as_bytes().iter().all(u8::is_ascii_whitespace))
                {
                    headers.insert(self.name.clone(), v);
                }
            }
            (Op::Set, Some(v)) => {
                headers.insert(self.name.clone(), v);
            }
            (_, None) => {}
        }
        Ok(())
    }
}

impl EditFilter for HeaderOp {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        if self.side == Side::Request
            && self
                .apply(exchange.request.headers_mut(), &exchange.vars)
                .is_err()
        {
            return Err(exchange.error(
                StatusCode::BAD_REQUEST,
                "a header value built from the request would contain characters not allowed in a header",
            ));
        }
        Ok(())
    }

    fn response(&self, response: &mut Response<Body>, vars: &Captures) {
        if self.side == Side::Response && self.apply(response.headers_mut(), vars).is_err() {
            tracing::warn!(header = %self.name, "response header not set: its value would contain characters not allowed in a header");
        }
    }

    fn needs_vars_on_response(&self) -> bool {
        self.side == Side::Response && self.value.as_ref().is_some_and(Template::has_vars)
    }

    fn edits_response(&self) -> bool {
        self.side == Side::Response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: Op, template: &str) -> HeaderOp {
        HeaderOp {
            side: Side::Request,
            op,
            name: HeaderName::from_static("x-built"),
            value: Some(Template::parse(template, &["v".to_string()]).unwrap()),
        }
    }

    #[test]
    fn a_value_built_from_the_request_never_carries_cr_lf_or_nul() {
        for evil in ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\0b"] {
            let mut vars = Captures::default();
            vars.insert(&std::sync::Arc::from("v"), evil);
            for kind in [Op::Set, Op::Append, Op::AppendIfAbsent] {
                let mut headers = HeaderMap::new();
                assert!(
                    op(kind, "pre-{v}").apply(&mut headers, &vars).is_err(),
                    "{evil:?}"
                );
                assert!(headers.is_empty(), "nothing is set: {headers:?}");
            }
        }
        let mut vars = Captures::default();
        vars.insert(&std::sync::Arc::from("v"), "fine");
        let mut headers = HeaderMap::new();
        op(Op::Set, "pre-{v}").apply(&mut headers, &vars).unwrap();
        assert_eq!(headers["x-built"], "pre-fine");
    }
}
