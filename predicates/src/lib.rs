//! The predicate half of weir's factory API, and weir's built-in predicates.
//!
//! A predicate decides whether a route takes a request. A [`PredicateFactory`] is registered
//! under the name used in YAML (`Path`, `Header`, ...) and turns that entry's arguments into a
//! ready [`Predicate`] once, when the config is compiled: regexes are compiled and numbers parsed
//! there, never per request.
//!
//! A custom predicate depends on this crate only. The built-in `Number` predicate
//! ([`number`]) is written purely against the public API and is the model to copy.
//!
//! Each built-in lives in the module named after it: `Path` in [`path`], `RemoteAddr` in
//! [`remote_addr`], and so on.

mod args;
mod context;
mod datetime;
mod error;
pub mod percent;
mod request;

pub mod after;
pub mod before;
pub mod between;
pub mod cookie;
pub mod header;
pub mod host;
pub mod method;
pub mod number;
pub mod path;
pub mod query;
pub mod remote_addr;
pub mod weight;

pub use args::{closest, parse_duration, parse_size, Args, Shortcut};
pub use context::{BuildContext, WeightGroup, WeightGroups};
pub use error::ArgError;
pub use request::{Captures, RequestView};

/// A compiled predicate: answers whether a request matches.
///
/// `test` runs on every request that reaches the route, so it must not block and should not
/// allocate except to record captured variables.
pub trait Predicate: Send + Sync + 'static {
    /// Whether `request` matches. Variables the predicate captures (such as `{segment}` in a
    /// Path pattern) go into `captures`, where filters read them.
    fn test(&self, request: &RequestView<'_>, captures: &mut Captures) -> bool;

    /// The names of the variables this predicate can capture, so that filters can check their
    /// `{var}` templates when the config is compiled.
    fn variables(&self) -> Vec<String> {
        Vec::new()
    }

    /// For route indexing: the literal path segments every request this predicate matches
    /// must start with, one list per alternative (`Path=/api/v1/{id},/health` gives
    /// `[["api", "v1"], ["health"]]`). `None` (the default) when the predicate does not
    /// constrain the path.
    fn path_prefixes(&self) -> Option<Vec<Vec<String>>> {
        None
    }
}

/// Builds a [`Predicate`] from the arguments of one YAML entry.
pub trait PredicateFactory: Send + Sync + 'static {
    /// The name used in YAML, such as `Path`. Lookup is exact and case-sensitive, as in SCG.
    fn name(&self) -> &'static str;

    /// How positional (shortcut) arguments map onto argument names.
    fn shortcut(&self) -> Shortcut;

    /// Builds the predicate, or explains precisely what is wrong with the arguments.
    ///
    /// Read arguments with the [`Args`] getters; an argument that is given but never read is
    /// reported to the user as unknown.
    fn build(
        &self,
        args: &Args,
        ctx: &mut BuildContext<'_>,
    ) -> Result<Box<dyn Predicate>, ArgError>;
}

/// The built-in predicate factories, in the order `weir check` lists them.
pub fn builtins() -> Vec<Box<dyn PredicateFactory>> {
    vec![
        Box::new(path::PathFactory),
        Box::new(host::HostFactory),
        Box::new(method::MethodFactory),
        Box::new(header::HeaderFactory),
        Box::new(query::QueryFactory),
        Box::new(cookie::CookieFactory),
        Box::new(remote_addr::RemoteAddrFactory),
        Box::new(after::AfterFactory),
        Box::new(before::BeforeFactory),
        Box::new(between::BetweenFactory),
        Box::new(weight::WeightFactory),
        Box::new(number::NumberFactory),
    ]
}

/// A pattern that must match a whole value, as Java's `String.matches` does. A pattern without
/// regex syntax is compared as a plain string: no regex is built for it, which keeps large
/// configs fast to compile and matching cheap.
#[derive(Debug, Clone)]
pub enum FullMatch {
    /// A plain string, compared exactly.
    Literal(String),
    /// A regex anchored at both ends.
    Regex(regex::Regex),
}

impl FullMatch {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, ArgError> {
        const META: &[char] = &[
            '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
        ];
        if pattern.contains(META) {
            full_match_regex(pattern).map(FullMatch::Regex)
        } else {
            Ok(FullMatch::Literal(pattern.to_string()))
        }
    }

    /// Whether `value` matches in full.
    pub fn is_match(&self, value: &str) -> bool {
        match self {
            FullMatch::Literal(l) => l == value,
            FullMatch::Regex(r) => r.is_match(value),
        }
    }
}

/// Compiles `pattern` so that it must match a whole value, as Java's `String.matches` does.
pub fn full_match_regex(pattern: &str) -> Result<regex::Regex, ArgError> {
    // The pattern must be valid on its own: wrapped, `a)|(b` would compile to a different
    // regex, and `[a-` would be reported as the range `-)` instead of an unclosed class.
    regex::Regex::new(pattern).map_err(|e| ArgError::new(regex_error(pattern, &e)))?;
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| ArgError::new(regex_error(pattern, &e)))
}

/// A one-line message for a regex that does not compile.
pub fn regex_error(pattern: &str, error: &regex::Error) -> String {
    let text = error.to_string();
    let reason = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let reason = reason.strip_prefix("error: ").unwrap_or(reason);
    format!("invalid regular expression `{pattern}`: {reason}")
}

#[cfg(test)]
mod tests {
    use super::full_match_regex;

    #[test]
    fn full_match_regex_checks_the_pattern_as_written() {
        let re = full_match_regex("gree.").unwrap();
        assert!(re.is_match("green") && !re.is_match("greenish"));
        let e = full_match_regex("[a-").unwrap_err();
        assert!(e.message.contains("unclosed character class"), "{e}");
        assert!(full_match_regex("a)|(b").is_err());
    }
}
