//! `Path`: matches the request path against Spring `PathPattern`s.
//!
//! ```yaml
//! - Path=/red/{segment},/blue/**
//! ```
//! Syntax: `?` one character, `*` any characters within a segment, `**` any number of
//! segments (last segment only; `/foo/**` also matches `/foo`), `{var}` captures a segment,
//! `{var:regex}` captures a segment that fully matches `regex`, `{*var}` captures the rest of
//! the path including its leading `/` (last segment only). Matching is case-sensitive. With
//! `matchTrailingSlash` (default `true`) the pattern `/foo` also matches `/foo/`. The first
//! pattern that matches wins and its variables are captured.

use std::sync::Arc;

use regex::Regex;

use crate::{
    ArgError, Args, BuildContext, Captures, Predicate, PredicateFactory, RequestView, Shortcut,
};

/// Builds [`PathPredicate`].
pub struct PathFactory;

impl PredicateFactory for PathFactory {
    fn name(&self) -> &'static str {
        "Path"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::GatherListTailFlag("patterns", "matchTrailingSlash")
    }

    fn build(&self, args: &Args, _: &mut BuildContext<'_>) -> Result<Box<dyn Predicate>, ArgError> {
        let patterns = args.list("patterns");
        if patterns.is_empty() {
            return Err(ArgError::for_arg(
                "patterns",
                "at least one path pattern is required, e.g. `Path=/api/**`",
            ));
        }
        let match_trailing_slash = args.flag("matchTrailingSlash", true)?;
        let patterns = patterns
            .into_iter()
            .map(PathPattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(PathPredicate {
            patterns,
            match_trailing_slash,
        }))
    }
}

/// Matches when any of its patterns matches the path.
#[derive(Debug)]
pub struct PathPredicate {
    patterns: Vec<PathPattern>,
    match_trailing_slash: bool,
}

impl PathPredicate {
    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[PathPattern] {
        &self.patterns
    }
}

impl Predicate for PathPredicate {
    fn test(&self, request: &RequestView<'_>, captures: &mut Captures) -> bool {
        self.patterns
            .iter()
            .any(|p| p.matches(request.path, self.match_trailing_slash, captures))
    }

    fn variables(&self) -> Vec<String> {
        self.patterns.iter().flat_map(|p| p.variables()).collect()
    }

    fn path_prefixes(&self) -> Option<Vec<Vec<String>>> {
        Some(
            self.patterns
                .iter()
                .map(PathPattern::literal_segments)
                .collect(),
        )
    }
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    /// `*`: any one non-empty segment.
    Any,
    /// `{name}`: any one non-empty segment, captured.
    Var(Arc<str>),
    /// A segment with wildcards or `{var:regex}`: a full-match regex, and each variable with
    /// the index of its capture group.
    Regex(Regex, Vec<(Arc<str>, usize)>),
}

#[derive(Debug, PartialEq)]
enum Tail {
    /// The pattern ends after its last segment.
    End,
    /// `**`: any number of further segments.
    AnySegments,
    /// `{*name}`: the rest of the path, captured.
    Capture(Arc<str>),
}

/// One compiled Spring path pattern.
#[derive(Debug)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
    tail: Tail,
}

fn bad(pattern: &str, why: impl std::fmt::Display) -> ArgError {
    ArgError::for_arg(
        "patterns",
        format!("invalid path pattern `{pattern}`: {why}"),
    )
}

/// Splits a segment like `file.{ext:[a-z]+}` into text and `{...}` parts, respecting nested
/// braces inside a variable's regex.
fn brace_parts<'a>(pattern: &str, segment: &'a str) -> Result<Vec<(bool, &'a str)>, ArgError> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut open = 0;
    for (i, c) in segment.char_indices() {
        match c {
            '{' => {
                if depth == 0 {
                    if i > start {
                        parts.push((false, &segment[start..i]));
                    }
                    open = i;
                }
                depth += 1;
            }
            '}' => {
                if depth == 0 {
                    return Err(bad(pattern, "`}` without a matching `{`"));
                }
                depth -= 1;
                if depth == 0 {
                    parts.push((true, &segment[open + 1..i]));
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad(pattern, "`{` without a matching `}`"));
    }
    if start < segment.len() {
        parts.push((false, &segment[start..]));
    }
    Ok(parts)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

impl PathPattern {
    /// Compiles `pattern`. A pattern without a leading `/` gets one.
    pub fn parse(pattern: &str) -> Result<Self, ArgError> {
        let source = if pattern.starts_with('/') {
            pattern.to_string()
        } else {
            format!("/{pattern}")
        };
        let raw: Vec<&str> = source[1..].split('/').collect();
        let mut segments = Vec::with_capacity(raw.len());
        let mut tail = Tail::End;
        let mut names: Vec<String> = Vec::new();
        let mut add_name = |name: &str| -> Result<Arc<str>, ArgError> {
            if !valid_name(name) {
                return Err(bad(
                    pattern,
                    format!("`{{{name}}}` is not a valid variable name"),
                ));
            }
            if names.iter().any(|n| n == name) {
                return Err(bad(pattern, format!("variable `{{{name}}}` appears twice")));
            }
            names.push(name.to_string());
            Ok(Arc::from(name))
        };
        for (i, seg) in raw.iter().enumerate() {
            let last = i + 1 == raw.len();
            if *seg == "**" || (seg.starts_with("{*") && seg.ends_with('}')) {
                if !last {
                    return Err(bad(
                        pattern,
                        format!("`{seg}` is only allowed as the last segment"),
                    ));
                }
                tail = if *seg == "**" {
                    Tail::AnySegments
                } else {
                    Tail::Capture(add_name(&seg[2..seg.len() - 1])?)
                };
                break;
            }
            if seg.contains("**") {
                return Err(bad(
                    pattern,
                    "`**` must be a whole segment, as in `/api/**`",
                ));
            }
            if *seg == "*" {
                segments.push(Segment::Any);
                continue;
            }
            let parts = brace_parts(pattern, seg)?;
            if let [(true, inner)] = parts.as_slice() {
                if !inner.contains(':') {
                    segments.push(Segment::Var(add_name(inner)?));
                    continue;
                }
            }
            if !seg.contains(['{', '*', '?']) {
                segments.push(Segment::Literal(seg.to_string()));
                continue;
            }
            let mut re = String::from("^");
            let mut vars = Vec::new();
            for (is_var, text) in parts {
                if is_var {
                    let (name, var_re) = text.split_once(':').unwrap_or((text, ".+"));
                    vars.push(add_name(name)?);
                    re.push_str(&format!("(?P<v{}>{var_re})", vars.len() - 1));
                } else {
                    for c in text.chars() {
                        match c {
                            '*' => re.push_str("[^/]*"),
                            '?' => re.push_str("[^/]"),
                            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
                        }
                    }
                }
            }
            re.push('$');
            let regex = Regex::new(&re).map_err(|e| bad(pattern, crate::regex_error(&re, &e)))?;
            let group = |i: usize| {
                let wanted = format!("v{i}");
                regex
                    .capture_names()
                    .position(|n| n == Some(wanted.as_str()))
                    .unwrap_or(0)
            };
            let vars = vars
                .into_iter()
                .enumerate()
                .map(|(i, name)| (name, group(i)))
                .collect();
            segments.push(Segment::Regex(regex, vars));
        }
        Ok(Self {
            source,
            segments,
            tail,
        })
    }

    /// The pattern as written (with a leading `/`).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The names of the variables the pattern captures.
    pub fn variables(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .segments
            .iter()
            .flat_map(|s| match s {
                Segment::Var(n) => vec![n.to_string()],
                Segment::Regex(_, names) => names.iter().map(|(n, _)| n.to_string()).collect(),
                _ => vec![],
            })
            .collect();
        if let Tail::Capture(n) = &self.tail {
            out.push(n.to_string());
        }
        out
    }

    /// The literal segments the pattern starts with (`["api", "v1"]` for `/api/v1/{id}/**`):
    /// every path it matches starts with them. For route indexing.
    pub fn literal_segments(&self) -> Vec<String> {
        self.segments
            .iter()
            .map_while(|seg| match seg {
                Segment::Literal(l) => Some(l.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the pattern matches `path`; on a match its variables are added to `captures`,
    /// otherwise `captures` is left as it was.
    pub fn matches(&self, path: &str, match_trailing_slash: bool, captures: &mut Captures) -> bool {
        let mark = captures.len();
        if self.match_inner(path, match_trailing_slash, captures) {
            true
        } else {
            captures.truncate(mark);
            false
        }
    }

    fn match_inner(&self, path: &str, match_trailing_slash: bool, captures: &mut Captures) -> bool {
        let Some(mut path) = path.strip_prefix('/') else {
            return false;
        };
        let pattern_has_trailing_slash =
            matches!(self.segments.last(), Some(Segment::Literal(l)) if l.is_empty());
        if match_trailing_slash
            && self.tail == Tail::End
            && !pattern_has_trailing_slash
            && path.ends_with('/')
        {
            path = &path[..path.len() - 1];
        }
        let mut rest = Some(path);
        for seg in &self.segments {
            let Some(r) = rest else { return false };
            let (current, next) = split_segment(r);
            rest = next;
            let ok = match seg {
                Segment::Literal(l) => l == current,
                Segment::Any => !current.is_empty(),
                Segment::Var(name) => {
                    if current.is_empty() {
                        return false;
                    }
                    captures.insert(name, current);
                    true
                }
                Segment::Regex(re, names) => {
                    if names.is_empty() {
                        re.is_match(current)
                    } else if let Some(caps) = re.captures(current) {
                        for (name, group) in names {
                            captures.insert(name, caps.get(*group).map_or("", |m| m.as_str()));
                        }
                        true
                    } else {
                        false
                    }
                }
            };
            if !ok {
                return false;
            }
        }
        match &self.tail {
            Tail::End => rest.is_none(),
            Tail::AnySegments => true,
            Tail::Capture(name) => {
                match rest {
                    Some(r) => captures.insert(name, &format!("/{r}")),
                    None => captures.insert(name, ""),
                }
                true
            }
        }
    }
}

/// The first segment of `path` (which has no leading `/`) and what follows its `/`, if
/// one does. A plain byte loop: path segments are short, and `str::find`'s searcher costs
/// more to set up than the scan.
pub fn split_segment(path: &str) -> (&str, Option<&str>) {
    match path.bytes().position(|b| b == b'/') {
        Some(i) => (&path[..i], Some(&path[i + 1..])),
        None => (path, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> Option<Vec<(String, String)>> {
        let p = PathPattern::parse(pattern).unwrap();
        let mut c = Captures::default();
        p.matches(path, true, &mut c)
            .then(|| c.iter().map(|(a, b)| (a.into(), b.into())).collect())
    }

    #[test]
    fn literals_and_trailing_slash() {
        assert!(m("/foo", "/foo").is_some());
        assert!(m("/foo", "/foo/").is_some());
        assert!(m("/foo/", "/foo").is_none());
        assert!(m("/foo", "/foobar").is_none());
        assert!(m("/", "/").is_some());
        assert!(m("/", "/a").is_none());
        let p = PathPattern::parse("/foo").unwrap();
        assert!(!p.matches("/foo/", false, &mut Captures::default()));
    }

    #[test]
    fn double_star() {
        assert!(m("/foo/**", "/foo").is_some());
        assert!(m("/foo/**", "/foo/").is_some());
        assert!(m("/foo/**", "/foo/a/b").is_some());
        assert!(m("/foo/**", "/foobar").is_none());
        assert!(m("/**", "/").is_some());
        assert!(m("/**", "/anything/at/all").is_some());
        assert!(PathPattern::parse("/a/**/b").is_err());
    }

    #[test]
    fn variables() {
        assert_eq!(
            m("/red/{segment}", "/red/blue"),
            Some(vec![("segment".into(), "blue".into())])
        );
        assert!(m("/red/{segment}", "/red/").is_none());
        assert!(m("/red/{segment}", "/red/a/b").is_none());
        assert_eq!(
            m("/u/{id:\\d+}", "/u/42"),
            Some(vec![("id".into(), "42".into())])
        );
        assert!(m("/u/{id:\\d+}", "/u/4x").is_none());
        assert_eq!(m("/f/{name}.{ext}", "/f/a.txt").unwrap().len(), 2);
        assert_eq!(
            m("/files/{*rest}", "/files/a/b"),
            Some(vec![("rest".into(), "/a/b".into())])
        );
        assert_eq!(
            m("/files/{*rest}", "/files"),
            Some(vec![("rest".into(), "".into())])
        );
        assert!(PathPattern::parse("/{a}/{a}").is_err());
        assert!(PathPattern::parse("/{a").is_err());
        assert!(PathPattern::parse("/{x:(}").is_err());
    }

    #[test]
    fn wildcards() {
        assert!(m("/a/*", "/a/b").is_some());
        assert!(m("/a/*", "/a/b/c").is_none());
        assert!(m("/a/*.html", "/a/x.html").is_some());
        assert!(m("/a/*.html", "/a/x.htm").is_none());
        assert!(m("/a/b?d", "/a/bcd").is_some());
        assert!(m("/a/b?d", "/a/bd").is_none());
    }

    #[test]
    fn failed_match_leaves_no_captures() {
        let p = PathPattern::parse("/a/{x}/c").unwrap();
        let mut c = Captures::default();
        assert!(!p.matches("/a/b/d", true, &mut c));
        assert!(c.is_empty());
    }

    #[test]
    fn literal_segments() {
        let segs = |p: &str| PathPattern::parse(p).unwrap().literal_segments();
        assert_eq!(segs("/api/v1/{id}/**"), ["api", "v1"]);
        assert!(segs("/**").is_empty());
        assert_eq!(segs("/"), [""]);
        assert_eq!(segs("/a/*.html"), ["a"]);
    }
}
