//! The one path normalisation, applied before any predicate runs. What the predicates match is
//! exactly what the upstream receives.
//!
//! 1. Percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, so `%2e%2e`
//!    is a dot segment and `%41` is `A`. Other escapes stay as sent, in the case sent.
//! 2. Dot segments (`.`, `..`) are resolved as RFC 3986 §5.2.4 says; `..` never climbs above
//!    the root.
//! 3. Runs of `/` become one `/`.
//! 4. An encoded slash (`%2F`) or backslash (`%5C`) is never decoded, so it is never a
//!    separator: `/system%2Ffunctions` is one segment, matched and forwarded as such.

use std::borrow::Cow;

use weir_predicates::percent::hex;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Normalises a request path. Borrows when the path is already normal. A target that is not
/// a path (`*` of `OPTIONS *`) is returned as it is.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    if !path.starts_with('/') {
        return Cow::Borrowed(path);
    }
    if !path.contains('%') && !path.contains("/.") && !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                out.pop();
                trailing_slash = i == last;
            }
            "" => trailing_slash = i == last,
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut result = String::with_capacity(decoded.len());
    for seg in &out {
        result.push('/');
        result.push_str(seg);
    }
    if trailing_slash || result.is_empty() {
        result.push('/');
    }
    if result == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(result)
    }
}

fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let c = h << 4 | l;
                if is_unreserved(c) {
                    out.push(c as char);
                    i += 3;
                    continue;
                }
            }
        }
        // Paths reaching here come from a parsed URI: ASCII only.
        out.push(b[i] as char);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::normalize_path as n;

    #[test]
    fn policy() {
        assert_eq!(n("/a/b"), "/a/b");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/function/../system/functions"), "/system/functions");
        assert_eq!(n("/function/%2e%2e/system/functions"), "/system/functions");
        assert_eq!(n("/a/./b/"), "/a/b/");
        assert_eq!(n("/a/.."), "/");
        assert_eq!(n("/../../x"), "/x");
        assert_eq!(n("//system//functions"), "/system/functions");
        assert_eq!(n("/system%2Ffunctions"), "/system%2Ffunctions");
        assert_eq!(n("/%7Euser/%41"), "/~user/A");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a/.hidden"), "/a/.hidden");
        assert_eq!(n("/a/b/."), "/a/b/");
    }
}
