//! `AddRequestParameter`: appends a query parameter.
//!
//! ```yaml
//! - AddRequestParameter=red, blue-{segment}
//! ```
//! The existing query is kept byte for byte. The name and value are percent-encoded where a
//! query needs it (space, `&`, `=`, `#`, `+`, non-ASCII); an existing `%XX` escape is kept,
//! never encoded twice. The value may use `{var}`.

use std::fmt::Write as _;
use std::sync::Arc;

use http::Response;

use crate::{
    ArgError, Args, Body, EditFilter, Exchange, Filter, FilterContext, FilterFactory, Shortcut,
    Template,
};

/// Builds [`AddRequestParameter`].
pub struct AddRequestParameterFactory;

impl FilterFactory for AddRequestParameterFactory {
    fn name(&self) -> &'static str {
        "AddRequestParameter"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&["name", "value"])
    }

    fn build(&self, args: &Args, ctx: &FilterContext<'_>) -> Result<Filter, ArgError> {
        let name = encode(args.require("name")?.trim());
        let value = ctx.template("value", args.get("value").unwrap_or(""))?;
        Ok(Filter::Edit(Arc::new(AddRequestParameter { name, value })))
    }
}

/// Appends `name=value` to the query.
#[derive(Debug)]
pub struct AddRequestParameter {
    name: String,
    value: Template,
}

/// Percent-encodes what may not appear inside a query parameter name or value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'%'
            | b'!'
            | b'$'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b','
            | b';'
            | b':'
            | b'@'
            | b'/'
            | b'?' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

impl EditFilter for AddRequestParameter {
    fn request(&self, exchange: &mut Exchange) -> Result<(), Response<Body>> {
        let value = encode(&self.value.expand(&exchange.vars));
        let query = match exchange.query() {
            Some(q) if !q.is_empty() => format!("{q}&{}={value}", self.name),
            _ => format!("{}={value}", self.name),
        };
        exchange.set_query(Some(&query))
    }

    fn edits_response(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_only_what_a_query_needs() {
        assert_eq!(super::encode("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(super::encode("already%20encoded"), "already%20encoded");
        assert_eq!(super::encode("é"), "%C3%A9");
    }
}
