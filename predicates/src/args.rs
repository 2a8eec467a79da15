//! The typed view of one YAML entry's arguments that factories read.
//!
//! The config layer turns both written forms into an [`Args`]: the shortcut form
//! (`- Header=X-Id, \d+`) through the factory's [`Shortcut`], the expanded form (`name:` +
//! `args:`) by name. Names follow Spring Boot's relaxed binding: `fallbackUri`, `fallback-uri`
//! and `fallback_uri` are one argument, and YAML lists or indexed keys (`patterns[0]`,
//! `patterns.0`) are lists.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

use crate::ArgError;

/// How positional (shortcut) arguments map onto argument names; SCG's `ShortcutType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// The n-th value is the n-th name (SCG's `DEFAULT`). More values than names is an error.
    Fields(&'static [&'static str]),
    /// Every value, whatever its key, goes into one list argument (SCG's `GATHER_LIST`).
    GatherList(&'static str),
    /// Every value goes into the list argument, except a trailing `true` or `false`, which is
    /// the flag argument (SCG's `GATHER_LIST_TAIL_FLAG`).
    GatherListTailFlag(&'static str, &'static str),
}

impl Shortcut {
    /// The argument names, in shortcut order.
    pub fn names(&self) -> Vec<&'static str> {
        match *self {
            Shortcut::Fields(names) => names.to_vec(),
            Shortcut::GatherList(list) => vec![list],
            Shortcut::GatherListTailFlag(list, flag) => vec![list, flag],
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// The name as written, or the field name for a positional value.
    name: String,
    /// The relaxed-binding form of `name`, used for lookups.
    key: String,
    value: String,
    used: Cell<bool>,
}

/// The arguments of one predicate or filter entry.
#[derive(Debug)]
pub struct Args {
    factory: String,
    entries: Vec<Entry>,
    /// Every name a factory asked for, for "the arguments are: ..." messages.
    known: RefCell<Vec<String>>,
}

/// The relaxed-binding key of an argument name: lower case, without `-` and `_`, without a
/// trailing list index.
fn canonical(name: &str) -> String {
    let mut name = name.trim();
    if let Some(open) = name.rfind('[') {
        if name.ends_with(']')
            && name[open + 1..name.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            name = &name[..open];
        }
    }
    if let Some(dot) = name.rfind('.') {
        let tail = &name[dot + 1..];
        if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            name = &name[..dot];
        }
    }
    name.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Headers whose values are credentials: never shown by `weir check`, the admin API or an
/// error message.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Whether `name` is a header whose values are credentials.
fn is_credential_header(name: &str) -> bool {
    let name = name.trim();
    CREDENTIAL_HEADERS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether an argument named `key` (relaxed form) holds a secret by its name alone.
fn secret_name(key: &str) -> bool {
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|s| key.contains(s))
}

fn is_flag(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
}

impl Args {
    fn with_entries(factory: &str, shortcut: Shortcut, entries: Vec<(String, String)>) -> Self {
        Self {
            factory: factory.to_string(),
            entries: entries
                .into_iter()
                .map(|(name, value)| Entry {
                    key: canonical(&name),
                    name,
                    value,
                    used: Cell::new(false),
                })
                .collect(),
            known: RefCell::new(shortcut.names().into_iter().map(str::to_string).collect()),
        }
    }

    /// Arguments written in shortcut form: `values` are the comma-separated values after `=`,
    /// already trimmed, with empty ones dropped.
    pub fn shortcut(
        factory: &str,
        shortcut: Shortcut,
        values: Vec<String>,
    ) -> Result<Self, ArgError> {
        let entries = match shortcut {
            Shortcut::Fields(names) => {
                if values.len() > names.len() {
                    // The values are listed to help, except after a credential header's name.
                    let values: Vec<&str> =
                        match values.iter().position(|v| is_credential_header(v)) {
                            Some(at) => values
                                .iter()
                                .enumerate()
                                .map(|(i, v)| if i > at { "******" } else { v.as_str() })
                                .collect(),
                            None => values.iter().map(String::as_str).collect(),
                        };
                    return Err(ArgError::new(format!(
                        "takes at most {} argument{} ({}), but {} were given: {}",
                        names.len(),
                        if names.len() == 1 { "" } else { "s" },
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        },
                        values.len(),
                        values.join(", ")
                    )));
                }
                names
                    .iter()
                    .zip(values)
                    .map(|(n, v)| (n.to_string(), v))
                    .collect()
            }
            Shortcut::GatherList(list) => {
                values.into_iter().map(|v| (list.to_string(), v)).collect()
            }
            Shortcut::GatherListTailFlag(list, flag) => {
                let mut values = values;
                let tail = match values.last() {
                    Some(last) if is_flag(last) && values.len() > 1 => values.pop(),
                    _ => None,
                };
                let mut entries: Vec<_> =
                    values.into_iter().map(|v| (list.to_string(), v)).collect();
                entries.extend(tail.map(|t| (flag.to_string(), t)));
                entries
            }
        };
        Ok(Self::with_entries(factory, shortcut, entries))
    }

    /// Arguments written in expanded form, as `(name, value)` pairs in file order; a YAML list
    /// value is given as one pair per element.
    pub fn expanded(factory: &str, shortcut: Shortcut, pairs: Vec<(String, String)>) -> Self {
        let entries = match shortcut {
            Shortcut::Fields(_) => pairs,
            Shortcut::GatherList(list) => pairs
                .into_iter()
                .map(|(_, v)| (list.to_string(), v))
                .collect(),
            Shortcut::GatherListTailFlag(list, flag) => {
                let flag_key = canonical(flag);
                pairs
                    .into_iter()
                    .map(|(k, v)| {
                        if canonical(&k) == flag_key {
                            (flag.to_string(), v)
                        } else {
                            (list.to_string(), v)
                        }
                    })
                    .collect()
            }
        };
        Self::with_entries(factory, shortcut, entries)
    }

    /// The factory these arguments are for.
    pub fn factory(&self) -> &str {
        &self.factory
    }

    fn note(&self, name: &str) -> String {
        let key = canonical(name);
        let mut known = self.known.borrow_mut();
        if !known.iter().any(|k| canonical(k) == key) {
            known.push(name.to_string());
        }
        key
    }

    fn matching<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        let key = self.note(name);
        self.entries
            .iter()
            .filter(move |e| e.key == key)
            .inspect(|e| e.used.set(true))
    }

    /// The value of a single-valued argument, if given (the last one if given twice).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.matching(name).last().map(|e| e.value.as_str())
    }

    /// The value of a required argument.
    pub fn require(&self, name: &str) -> Result<&str, ArgError> {
        match self.get(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            Some(_) => Err(self.missing(name)),
            // Most often the argument is there, misspelled: name what was written.
            None => Err(self
                .misspelling_of(name)
                .unwrap_or_else(|| self.missing(name))),
        }
    }

    fn missing(&self, name: &str) -> ArgError {
        ArgError::for_arg(
            name,
            format!(
                "is required; the arguments are: {}",
                self.known.borrow().join(", ")
            ),
        )
    }

    /// The "no such argument" error for a given argument that no name matches and whose
    /// closest known name is `name`.
    fn misspelling_of(&self, name: &str) -> Option<ArgError> {
        let known = self.known.borrow();
        let is_known = |key: &str| known.iter().any(|k| canonical(k) == key);
        let entry = self.entries.iter().find(|e| {
            !is_known(&e.key)
                && closest(&e.name, known.iter().map(String::as_str))
                    .is_some_and(|k| canonical(k) == canonical(name))
        })?;
        Some(ArgError::for_arg(
            &entry.name,
            format!(
                "no such argument; did you mean `{name}`? the arguments are: {}",
                known.join(", ")
            ),
        ))
    }

    /// All values of a list argument: every entry with that name, each split on commas,
    /// trimmed, empty values dropped.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.matching(name)
            .flat_map(|e| e.value.split(',').map(str::trim).filter(|v| !v.is_empty()))
            .collect()
    }

    /// A list of HTTP methods (any case, as SCG accepts them); empty when the argument is
    /// absent.
    pub fn methods(&self, name: &str) -> Result<Vec<http::Method>, ArgError> {
        self.list(name)
            .into_iter()
            .map(|m| {
                http::Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| ArgError::for_arg(name, format!("`{m}` is not an HTTP method")))
            })
            .collect()
    }

    /// A single-valued argument parsed with `FromStr`; `expected` describes a valid value.
    pub fn parse<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                v.trim().parse().map(Some).map_err(|_| {
                    ArgError::for_arg(name, format!("expected {expected}, found `{v}`"))
                })
            }
        }
    }

    /// A boolean argument (`true` or `false`, any case).
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ArgError> {
        match self.get(name).map(str::trim) {
            None => Ok(default),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ArgError::for_arg(
                name,
                format!("expected `true` or `false`, found `{v}`"),
            )),
        }
    }

    /// A duration argument such as `250ms`, `10s` or `1h30m`.
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .map_err(|e| ArgError::for_arg(name, e)),
        }
    }

    /// A size argument such as `64KiB`, `1MB` or `4096` (bytes).
    pub fn size(&self, name: &str) -> Result<Option<usize>, ArgError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_size(v)
                .map(Some)
                .map_err(|e| ArgError::for_arg(name, e)),
        }
    }

    /// Fails when an argument was given that the factory never read: a misspelled name, or
    /// one the factory does not take.
    pub fn finish(&self) -> Result<(), ArgError> {
        match self.entries.iter().find(|e| !e.used.get()) {
            None => Ok(()),
            Some(e) => {
                let known = self.known.borrow();
                let hint = closest(&e.name, known.iter().map(String::as_str))
                    .map(|k| format!("did you mean `{k}`? "))
                    .unwrap_or_default();
                Err(ArgError::for_arg(
                    &e.name,
                    format!(
                        "no such argument; {hint}the arguments are: {}",
                        if known.is_empty() {
                            "no arguments".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ))
            }
        }
    }

    /// A hash of the arguments (relaxed names and values, in order). Equal arguments give equal
    /// fingerprints within one build of weir, which is how a stateful filter recognises itself
    /// across a reload.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.factory.hash(&mut hasher);
        for entry in &self.entries {
            entry.key.hash(&mut hasher);
            entry.value.hash(&mut hasher);
        }
        hasher.finish()
    }

    /// Whether the value of the argument with relaxed key `key` is a credential: its name says
    /// so (`password`, `secret`, `token`, `credential`), or it is the value of a credential
    /// header (`AddRequestHeader=Authorization, Bearer x`, `Header=Cookie, session=.*`), or of a
    /// cookie (`Cookie=session, abc`).
    fn is_secret(&self, key: &str) -> bool {
        if secret_name(key) {
            return true;
        }
        let names_credential = self
            .entries
            .iter()
            .any(|e| (e.key == "name" || e.key == "header") && is_credential_header(&e.value));
        (names_credential && key != "name" && key != "header")
            || (self.factory == "Cookie" && key == "regexp")
    }

    /// The resolved arguments as `name=value` pairs, with list arguments gathered, for
    /// `weir check` and the admin API. Credentials are masked: values of arguments named like a secret (`password`, `secret`,
    /// `token`, `credential`), of credential headers and of cookies.
    pub fn display(&self) -> String {
        let mut out = String::new();
        let mut seen: Vec<&str> = Vec::new();
        for entry in &self.entries {
            if seen.contains(&entry.key.as_str()) {
                continue;
            }
            seen.push(&entry.key);
            let values: Vec<&str> = self
                .entries
                .iter()
                .filter(|e| e.key == entry.key)
                .map(|e| e.value.as_str())
                .collect();
            if !out.is_empty() {
                out.push_str(", ");
            }
            // The factory's own spelling, so that `include-request-params: true` and the
            // shortcut form display alike.
            let known = self.known.borrow();
            let name = known
                .iter()
                .find(|k| canonical(k) == entry.key)
                .map_or(entry.name.as_str(), String::as_str);
            let secret = self.is_secret(&entry.key);
            let _ = match (secret, values.as_slice()) {
                (true, _) => write!(out, "{name}=******"),
                (false, [one]) => write!(out, "{name}={one}"),
                (false, many) => write!(out, "{name}=[{}]", many.join(", ")),
            };
        }
        out
    }
}

/// The candidate closest to `name` by edit distance, if one is close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .map(|c| (levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance between two strings, by characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses a size: a number of bytes (`4096`), or a number with a unit. As in Spring's
/// `DataSize`, `KB`, `MB` and `GB` are powers of 1024, and so are `KiB`, `MiB` and `GiB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let expected = || format!("expected a size such as `64KiB`, `1MB` or `4096`, found `{text}`");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let number: usize = t[..split].parse().map_err(|_| expected())?;
    let unit = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(expected()),
    };
    number.checked_mul(unit).ok_or_else(expected)
}

/// Parses a duration written `250ms`, `10s`, `5m`, `1h30m` or `2d`. A bare number is rejected
/// here; callers that accept bare milliseconds (SCG's `metadata` timeouts) handle that first.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let expected =
        || format!("expected a duration such as `250ms`, `10s` or `1h30m`, found `{text}`");
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(expected());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(expected)?;
        if digits == 0 {
            return Err(expected());
        }
        let number: f64 = rest[..digits].parse().map_err(|_| expected())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(expected()),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(Duration::try_from_secs_f64(number * seconds).map_err(|_| expected())?)
            .ok_or_else(expected)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn shortcut_fields_map_in_order() {
        let a = Args::shortcut(
            "Header",
            Shortcut::Fields(&["header", "regexp"]),
            s(&["X-Id", "\\d+"]),
        )
        .unwrap();
        assert_eq!(a.get("header"), Some("X-Id"));
        assert_eq!(a.get("regexp"), Some("\\d+"));
        a.finish().unwrap();
    }

    #[test]
    fn too_many_positional_values_list_the_arguments() {
        let e = Args::shortcut(
            "Header",
            Shortcut::Fields(&["header", "regexp"]),
            s(&["a", "b", "c"]),
        )
        .unwrap_err();
        assert!(
            e.message.contains("at most 2 arguments (header, regexp)"),
            "{e}"
        );
    }

    #[test]
    fn gather_list_tail_flag() {
        let sc = Shortcut::GatherListTailFlag("patterns", "matchTrailingSlash");
        let a = Args::shortcut("Path", sc, s(&["/a", "/b", "false"])).unwrap();
        assert_eq!(a.list("patterns"), vec!["/a", "/b"]);
        assert!(!a.flag("matchTrailingSlash", true).unwrap());
        let a = Args::expanded(
            "Path",
            sc,
            vec![
                ("match-trailing-slash".into(), "false".into()),
                ("patterns[0]".into(), "/a".into()),
            ],
        );
        assert_eq!(a.list("patterns"), vec!["/a"]);
        assert!(!a.flag("matchTrailingSlash", true).unwrap());
    }

    #[test]
    fn relaxed_names_and_unknown_arguments() {
        let a = Args::expanded(
            "CircuitBreaker",
            Shortcut::Fields(&["name", "fallbackUri"]),
            vec![
                ("fallback-uri".into(), "forward:/x".into()),
                ("fallbak".into(), "y".into()),
            ],
        );
        assert_eq!(a.get("fallbackUri"), Some("forward:/x"));
        let e = a.finish().unwrap_err();
        assert_eq!(e.arg.as_deref(), Some("fallbak"));
        assert!(
            e.message.contains("the arguments are: name, fallbackUri"),
            "{e}"
        );
    }

    #[test]
    fn display_uses_the_factorys_names() {
        let sc = Shortcut::Fields(&["status", "url", "includeRequestParams"]);
        let short = Args::shortcut("RedirectTo", sc, s(&["302", "/x", "true"])).unwrap();
        let long = Args::expanded(
            "RedirectTo",
            sc,
            vec![
                ("Status".into(), "302".into()),
                ("url".into(), "/x".into()),
                ("include-request-params".into(), "true".into()),
            ],
        );
        assert_eq!(
            short.display(),
            "status=302, url=/x, includeRequestParams=true"
        );
        assert_eq!(long.display(), short.display());
    }

    #[test]
    fn a_misspelled_required_argument_is_named() {
        let a = Args::expanded(
            "AddRequestHeader",
            Shortcut::Fields(&["name", "value"]),
            vec![("value".into(), "b".into()), ("nmae".into(), "X-A".into())],
        );
        let e = a.require("name").unwrap_err();
        assert_eq!(e.arg.as_deref(), Some("nmae"), "{e}");
        assert!(e.message.contains("did you mean `name`?"), "{e}");
        // Nothing close to it: the plain "is required".
        let a = Args::expanded(
            "AddRequestHeader",
            Shortcut::Fields(&["name", "value"]),
            vec![],
        );
        let e = a.require("name").unwrap_err();
        assert_eq!(e.arg.as_deref(), Some("name"));
        assert!(e.message.starts_with("is required"), "{e}");
    }

    #[test]
    fn display_masks_secrets() {
        let a = Args::expanded(
            "BasicAuth",
            Shortcut::Fields(&[]),
            vec![
                ("user".into(), "admin".into()),
                ("password".into(), "hunter2".into()),
            ],
        );
        assert_eq!(a.display(), "user=admin, password=******");
    }

    #[test]
    fn display_masks_credential_headers_and_cookies() {
        let fields = Shortcut::Fields(&["name", "value"]);
        for name in [
            "Authorization",
            "proxy-authorization",
            " Cookie",
            "Set-Cookie",
        ] {
            let a =
                Args::shortcut("SetRequestHeader", fields, s(&[name, "Bearer s3cr3t"])).unwrap();
            assert_eq!(a.display(), format!("name={name}, value=******"));
        }
        let a = Args::shortcut("AddRequestHeader", fields, s(&["X-Id", "1"])).unwrap();
        assert_eq!(a.display(), "name=X-Id, value=1");
        let a = Args::shortcut(
            "Header",
            Shortcut::Fields(&["header", "regexp"]),
            s(&["Authorization", "Bearer s3cr3t"]),
        )
        .unwrap();
        assert_eq!(a.display(), "header=Authorization, regexp=******");
        let a = Args::shortcut(
            "Cookie",
            Shortcut::Fields(&["name", "regexp"]),
            s(&["session", "abc123"]),
        )
        .unwrap();
        assert_eq!(a.display(), "name=session, regexp=******");
        // Too many values: listed, but not a credential.
        let e = Args::shortcut(
            "SetRequestHeader",
            fields,
            s(&["Authorization", "Basic a", "b"]),
        )
        .unwrap_err();
        assert!(e.message.contains("Authorization, ******, ******"), "{e}");
        assert!(!e.message.contains("Basic a"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        // Each part fits, the sum does not: an error, not an overflow.
        assert!(parse_duration("10000000000000000000s10000000000000000000s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1MB").unwrap(), 1 << 20);
        assert_eq!(parse_size("2 GiB").unwrap(), 2 << 30);
        assert!(parse_size("1.5MB").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn methods_in_any_case_or_a_named_error() {
        let a = Args::shortcut(
            "Method",
            Shortcut::GatherList("methods"),
            s(&["get", "POST,put"]),
        )
        .unwrap();
        assert_eq!(
            a.methods("methods").unwrap(),
            [http::Method::GET, http::Method::POST, http::Method::PUT]
        );
        assert!(a.methods("absent").unwrap().is_empty());
        let bad = Args::shortcut("Method", Shortcut::GatherList("methods"), s(&["G T"])).unwrap();
        let e = bad.methods("methods").unwrap_err().to_string();
        assert!(e.contains("`G T` is not an HTTP method"), "{e}");
    }
}
