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
            .flat_map(|p| p.names.iter().map(|(n, _)| n.to_string()))
            .collect()
    }
}

/// One compiled host pattern.
#[derive(Debug)]
pub struct HostPattern {
    regex: Regex,
    names: Vec<(Arc<str>, usize)>,
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
        let labels: Vec<&str> = pattern.split('.').collect();
        let mut re = String::from("(?i)^");
        let mut vars = Vec::new();
        for (i, label) in labels.iter().enumerate() {
            let last = i + 1 == labels.len();
            if *label == "**" {
                re.push_str(if last {
                    r"(?:\.[^.]+)*"
                } else {
                    r"(?:[^.]+\.)*"
                });
                continue;
            }
            if let Some(name) = label.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
                let (name, var_re) = name.split_once(':').unwrap_or((name, "[^.]+"));
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(bad("a variable needs a name, as in `{sub}.example.org`"));
                }
                vars.push(Arc::<str>::from(name));
                re.push_str(&format!("(?P<v{}>{var_re})", vars.len() - 1));
            } else {
                if label.is_empty() {
                    return Err(bad("empty label"));
                }
                for c in label.chars() {
                    match c {
                        '*' => re.push_str("[^.]*"),
                        '?' => re.push_str("[^.]"),
                        '{' | '}' => {
                            return Err(bad(
                                "a variable must be a whole label, as in `{sub}.example.org`",
                            ))
                        }
                        c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                    }
                }
            }
            // A following `**` label supplies its own separators.
            if !last && labels[i + 1] != "**" {
                re.push_str(r"\.");
            }
        }
        re.push('$');
        let regex = Regex::new(&re).map_err(|e| bad(&crate::regex_error(&re, &e)))?;
        let names = vars
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let wanted = format!("v{i}");
                let group = regex
                    .capture_names()
                    .position(|n| n == Some(wanted.as_str()))
                    .unwrap_or(0);
                (name, group)
            })
            .collect();
        Ok(Self {
            regex,
            names,
            with_port,
        })
    }

    /// Whether `host` (possibly with `:port`) matches; captures variables on a match.
    pub fn matches(&self, host: &str, captures: &mut Captures) -> bool {
        let host = if self.with_port {
            host
        } else {
            strip_port(host)
        };
        if self.names.is_empty() {
            return self.regex.is_match(host);
        }
        match self.regex.captures(host) {
            Some(caps) => {
                for (name, group) in &self.names {
                    captures.insert(name, caps.get(*group).map_or("", |m| m.as_str()));
                }
                true
            }
            None => false,
        }
    }
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
}
