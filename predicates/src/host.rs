//! `Host`: matches the requested host against Ant-style patterns separated by `.`.
//!
//! ```yaml
//! - Host=**.somehost.org,{sub}.anotherhost.org
//! ```
//! `*` matches within one label, `**` matches any number of labels, `{sub}` captures one label
//! (available to filters as `{sub}`). Unlike SCG, host names compare case-insensitively, and
//! the port is ignored unless the pattern names one (`Host=api.local:8080`), so `**.example.org`
//! matches `a.example.org:8080`.

use std::sync::Arc;

use regex::Regex;

use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`HostPredicate`].
pub struct HostFactory;

impl PredicateFactory for HostFactory {
    fn name(&self) -> &'static str {
        "Host"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::GatherList("patterns")
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let patterns = args.list("patterns");
        if patterns.is_empty() {
            return Err(ArgError::for_arg(
                "patterns",
                "at least one host pattern is required, e.g. `Host=**.example.org`",
            ));
        }
        let patterns = patterns
            .into_iter()
            .map(HostPattern::parse)
            .collect::<Result<_, _>>()?;
        Ok(Box::new(HostPredicate { patterns }))
    }
}

/// Matches when any pattern matches the requested host.
#[derive(Debug)]
pub struct HostPredicate {
    patterns: Vec<HostPattern>,
}

impl Predicate for HostPredicate {
    fn test(&self, request: &RequestView<'_>, captures: &mut Captures) -> bool {
        let Some(host) = request.host else {
            return false;
        };
        self.patterns.iter().any(|p| p.matches(host, captures))
    }

    fn variables(&self) -> Vec<String> {
        self.patterns
            .iter()
            .flat_map(HostPattern::variables)
            .collect()
    }
}

/// One label of a host pattern.
#[derive(Debug)]
enum Label {
    /// Matches itself, ignoring ASCII case (stored lower-case).
    Literal(String),
    /// `*`: any one label.
    Any,
    /// `**`: any number of labels, none included.
    AnyLabels,
    /// `{name}`: any one label, captured.
    Var(Arc<str>),
    /// A label with `*`/`?` inside it or a `{name:regex}`: a full-match, case-insensitive
    /// regex, and the variable it captures, if any.
    Regex(Regex, Option<Arc<str>>),
}

/// One compiled host pattern. Literal labels, `*`, `**` and `{var}` match without a regex.
#[derive(Debug)]
pub struct HostPattern {
    labels: Vec<Label>,
    with_port: bool,
}

impl HostPattern {
    /// Compiles `pattern`.
    pub fn parse(pattern: &str) -> Result<Self, ArgError> {
        let bad = |why: &str| {
            ArgError::for_arg(
                "patterns",
                format!("invalid host pattern `{pattern}`: {why}"),
            )
        };
        let with_port = pattern.contains(':') && !pattern.contains('{');
        let mut labels = Vec::new();
        for label in pattern.split('.') {
            if label.is_empty() {
                return Err(bad("empty label"));
            }
            let parsed = if label == "**" {
                Label::AnyLabels
            } else if label == "*" {
                Label::Any
            } else if let Some(inner) = label.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
                let (name, var_re) = match inner.split_once(':') {
                    Some((n, re)) => (n, Some(re)),
                    None => (inner, None),
                };
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(bad("a variable needs a name, as in `{sub}.example.org`"));
                }
                match var_re {
                    None => Label::Var(Arc::from(name)),
                    Some(re) => {
                        let full = format!("(?i)^(?:{re})$");
                        let regex =
                            Regex::new(&full).map_err(|e| bad(&crate::regex_error(re, &e)))?;
                        Label::Regex(regex, Some(Arc::from(name)))
                    }
                }
            } else if label.contains(['{', '}']) {
                return Err(bad(
                    "a variable must be a whole label, as in `{sub}.example.org`",
                ));
            } else if label.contains(['*', '?']) {
                let mut re = String::from("(?i)^");
                for c in label.chars() {
                    match c {
                        '*' => re.push_str("[^.]*"),
                        '?' => re.push_str("[^.]"),
                        c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                    }
                }
                re.push('$');
                let regex = Regex::new(&re).map_err(|e| bad(&crate::regex_error(label, &e)))?;
                Label::Regex(regex, None)
            } else {
                Label::Literal(label.to_ascii_lowercase())
            };
            labels.push(parsed);
        }
        Ok(Self { labels, with_port })
    }

    /// The names of the variables the pattern captures.
    pub fn variables(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter_map(|l| match l {
                Label::Var(n) | Label::Regex(_, Some(n)) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Whether `host` (possibly with `:port`) matches; captures variables on a match, and
    /// leaves `captures` as it was otherwise.
    pub fn matches(&self, host: &str, captures: &mut Captures) -> bool {
        let host = if self.with_port {
            host
        } else {
            strip_port(host)
        };
        let mark = captures.len();
        // Host names have a handful of labels: a small stack array avoids allocating.
        let mut buf: [&str; 16] = [""; 16];
        let mut n = 0;
        for label in host.split('.') {
            if n == buf.len() {
                return false;
            }
            buf[n] = label;
            n += 1;
        }
        if match_labels(&self.labels, &buf[..n], captures) {
            true
        } else {
            captures.truncate(mark);
            false
        }
    }
}

fn match_labels(pattern: &[Label], host: &[&str], captures: &mut Captures) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return host.is_empty();
    };
    if let Label::AnyLabels = first {
        // Zero or more labels: try the shortest first.
        return (0..=host.len()).any(|skip| {
            let mark = captures.len();
            let ok = match_labels(rest, &host[skip..], captures);
            if !ok {
                captures.truncate(mark);
            }
            ok
        });
    }
    let Some((label, host_rest)) = host.split_first() else {
        return false;
    };
    let ok = match first {
        Label::Literal(l) => l.eq_ignore_ascii_case(label),
        Label::Any => !label.is_empty(),
        Label::Var(name) => {
            if label.is_empty() {
                return false;
            }
            captures.insert(name, label);
            true
        }
        Label::Regex(regex, name) => {
            if !regex.is_match(label) {
                return false;
            }
            if let Some(name) = name {
                captures.insert(name, label);
            }
            true
        }
        Label::AnyLabels => unreachable!("handled above"),
    };
    ok && match_labels(rest, host_rest, captures)
}

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i)
            if !host[i..].contains(']') && host[i + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &host[..i]
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, h: &str) -> bool {
        HostPattern::parse(p)
            .unwrap()
            .matches(h, &mut Captures::default())
    }

    #[test]
    fn host_patterns() {
        assert!(m("**.example.org", "a.example.org"));
        assert!(m("**.example.org", "a.b.example.org:8080"));
        assert!(m("**.example.org", "example.org"));
        assert!(!m("**.example.org", "example.com"));
        assert!(!m("**.example.org", "aexample.org"));
        assert!(m("*.example.org", "A.Example.ORG"));
        assert!(!m("*.example.org", "a.b.example.org"));
        assert!(m("api.local:8080", "api.local:8080"));
        assert!(!m("api.local:8080", "api.local:9090"));
        assert!(m("example.**", "example.org.uk"));
        let p = HostPattern::parse("{sub}.myhost.org").unwrap();
        let mut c = Captures::default();
        assert!(p.matches("www.myhost.org", &mut c));
        assert_eq!(c.get("sub"), Some("www"));
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn globs_regex_variables_and_inner_double_star() {
        assert!(m("api-*.example.org", "api-eu.example.org"));
        assert!(!m("api-*.example.org", "web-eu.example.org"));
        assert!(m("a?c.example.org", "abc.example.org"));
        assert!(m("a.**.z", "a.b.c.z"));
        assert!(m("a.**.z", "a.z"));
        assert!(!m("a.**.z", "a.b.c"));
        let p = HostPattern::parse("{region:eu|us}.example.org").unwrap();
        let mut c = Captures::default();
        assert!(p.matches("EU.example.org", &mut c));
        assert_eq!(c.get("region"), Some("EU"));
        let mut c = Captures::default();
        assert!(!p.matches("asia.example.org", &mut c));
        let p = HostPattern::parse("{sub}.{env}.example.org").unwrap();
        assert!(!p.matches("a.b.example.com", &mut c));
        assert!(c.is_empty(), "a failed match leaves no captures");
        assert!(HostPattern::parse("a..b").is_err());
        assert!(HostPattern::parse("x{sub}.org").is_err());
    }
}
