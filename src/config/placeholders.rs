//! `${NAME}` and `${NAME:default}` in config values, read from the environment.
//!
//! `$\{x}` is SCG's escape for a literal `${x}` (needed in `RewritePath` replacements).
//!
//! `${NAME|UNIT:default}` appends `UNIT` to a value that is a bare number, so that a duration
//! can come from a variable that means seconds when it has no unit, as OpenFaaS's
//! `upstream_timeout=65` does: `${upstream_timeout|s:60s}` reads `65` as `65s` and `1m5s` as
//! it is.

/// Resolves the placeholders in `text` with `lookup`; an unset variable without a default is
/// an error naming it.
pub fn resolve(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(escaped) = after.strip_prefix("\\{") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = body
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{text}`"))?;
            let inner = &body[..close];
            let (name, default) = match inner.split_once(':') {
                Some((n, d)) => (n.trim(), Some(d)),
                None => (inner.trim(), None),
            };
            let (name, unit) = match name.split_once('|') {
                Some((n, u)) => (n.trim(), Some(u.trim())),
                None => (name, None),
            };
            if name.is_empty() {
                return Err(format!(
                    "empty placeholder in `{text}`; write `${{NAME}}` or `${{NAME:default}}`"
                ));
            }
            let start = out.len();
            match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!(
                        "environment variable `{name}` is not set; set it, or give a default as `${{{name}:value}}`"
                    ))
                }
            }
            if let Some(unit) = unit {
                let value = out[start..].trim();
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                    out.push_str(unit);
                }
            }
            rest = &body[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::resolve;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "example.org".to_string())
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            resolve("http://${HOST}:80", &env).unwrap(),
            "http://example.org:80"
        );
        assert_eq!(resolve("${PORT:8080}", &env).unwrap(), "8080");
        assert_eq!(resolve("${EMPTY:}", &env).unwrap(), "");
        assert_eq!(resolve("/$\\{segment}", &env).unwrap(), "/${segment}");
        assert_eq!(resolve("cost: $5", &env).unwrap(), "cost: $5");
        assert!(resolve("${MISSING}", &env)
            .unwrap_err()
            .contains("`MISSING` is not set"));
        assert!(resolve("${OPEN", &env).is_err());
        let timeout = |v: &'static str| move |n: &str| (n == "T").then(|| v.to_string());
        assert_eq!(resolve("${T|s:60s}", &timeout("65")).unwrap(), "65s");
        assert_eq!(resolve("${T|s:60s}", &timeout("1m30s")).unwrap(), "1m30s");
        assert_eq!(resolve("${NONE|s:60}", &env).unwrap(), "60s");
        assert_eq!(resolve("${NONE|s:60s}", &env).unwrap(), "60s");
    }
}
