//! The one path normalisation, applied before any predicate runs. What the predicates match is
//! exactly what the upstream receives.
//!
//! A path is **rejected** (400) when it
//! - holds a byte that RFC 3986 does not allow in a path: not ASCII, a control character, a
//!   backslash (`\`), `"`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`, `[`, `]`: upstreams read these
//!   differently (as UTF-8 or Latin-1, `\` as a separator on Windows servers);
//! - holds a malformed escape (`%`, `%4`, `%zz`), an encoded control character (`%00` to
//!   `%1F`, `%7F`) or an overlong UTF-8 encoding (`%C0%AE` is `.` to a lax decoder): some
//!   upstreams keep them, some decode them, some cut the path at `%00`;
//! - has a segment that is a dot segment under another reading of it: once fully
//!   percent-decoded (`%252e%252e`), with `%2F`, `%5C` or `\` taken as separators
//!   (`..%2F`, `a%5C..`), or with its `;` parameters removed as Tomcat does (`..;`, `.;x`).
//!
//! Otherwise it is **normalised**:
//! 1. Percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, in either
//!    case (`%2e%2E` is `..`, `%41` is `A`). Other escapes stay as sent, in the case sent.
//! 2. Dot segments (`.`, `..`) are resolved as RFC 3986 §5.2.4 says; `..` never climbs above
//!    the root.
//! 3. Runs of `/` become one `/`.
//! 4. An encoded slash (`%2F`) or backslash (`%5C`) is never decoded, so it is never a
//!    separator: `/system%2Ffunctions` is one segment, matched and forwarded as such.
//!
//! Normalising a normalised path changes nothing.

use std::borrow::Cow;

use weir_predicates::percent::hex;

/// Why a path was rejected. The message is safe to show the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRejected(pub &'static str);

impl std::fmt::Display for PathRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for PathRejected {}

/// Whether `b` is one of RFC 3986's unreserved characters.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What [`scan`] found in a path that it did not reject.
struct Scanned {
    /// A `%` escape.
    percent: bool,
    /// A `;`.
    semicolon: bool,
    /// A `/` followed by `.` or `/`: a possible dot segment or an empty one.
    slash_dot_or_slash: bool,
}

/// Checks every byte and escape of `path`, and notes what normalising it must look at.
fn scan(path: &[u8]) -> Result<Scanned, PathRejected> {
    let (mut percent, mut semicolon, mut slash_dot_or_slash) = (false, false, false);
    // The byte the previous escape decoded to, when that escape came right before this one.
    let mut previous: Option<u8> = None;
    let mut i = 0;
    while i < path.len() {
        match path[i] {
            b'%' => {
                percent = true;
                let (Some(&h), Some(&l)) = (path.get(i + 1), path.get(i + 2)) else {
                    return Err(PathRejected(
                        "the path has a malformed percent-escape (`%` must be followed by two hex digits)",
                    ));
                };
                let (Some(h), Some(l)) = (hex(h), hex(l)) else {
                    return Err(PathRejected(
                        "the path has a malformed percent-escape (`%` must be followed by two hex digits)",
                    ));
                };
                let c = h << 4 | l;
                if c < 0x20 || c == 0x7f {
                    return Err(PathRejected(
                        "the path has an encoded control character (such as %00, %0A or %0D)",
                    ));
                }
                // Overlong UTF-8 (`%C0%AE` is a `.` to a lax decoder): C0 and C1 never start a
                // valid sequence, nor E0 or F0 with a second byte this low.
                let overlong = matches!(c, 0xc0 | 0xc1)
                    || matches!(
                        (previous, c),
                        (Some(0xe0), 0x80..=0x9f) | (Some(0xf0), 0x80..=0x8f)
                    );
                if overlong {
                    return Err(PathRejected(
                        "the path has an overlong UTF-8 encoding (such as %C0%AE)",
                    ));
                }
                previous = Some(c);
                i += 3;
                continue;
            }
            b';' => semicolon = true,
            b'/' => slash_dot_or_slash |= matches!(path.get(i + 1), Some(b'.' | b'/')),
            b'\\' => {
                return Err(PathRejected(
                    "the path has a backslash; write it as %5C if it is data",
                ))
            }
            b if b >= 0x80 => {
                return Err(PathRejected(
                    "the path has bytes that are not ASCII; percent-encode them",
                ))
            }
            b if is_unreserved(b) || b"/!$&'()*+,=:@".contains(&b) => {}
            _ => return Err(PathRejected(
                "the path has a character that RFC 3986 does not allow there; percent-encode it",
            )),
        }
        previous = None;
        i += 1;
    }
    Ok(Scanned {
        percent,
        semicolon,
        slash_dot_or_slash,
    })
}

/// Whether `segment` (neither `.` nor `..` itself) would be a dot segment to an upstream that
/// decodes escapes (once or repeatedly), splits on `/` or `\` after decoding, or drops `;`
/// parameters.
fn hides_dot_segment(segment: &str) -> bool {
    let mut bytes = segment.as_bytes().to_vec();
    loop {
        for piece in bytes.split(|b| *b == b'/' || *b == b'\\') {
            let piece = match piece.iter().position(|b| *b == b';') {
                Some(at) => &piece[..at],
                None => piece,
            };
            if piece == b"." || piece == b".." {
                return true;
            }
        }
        // Decode once more; stop when nothing changes (each round shortens the text).
        let decoded = percent_decode_all(&bytes);
        if decoded.len() == bytes.len() {
            return false;
        }
        bytes = decoded;
    }
}

fn percent_decode_all(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Normalises a request path, or rejects it. Borrows when the path is already normal. A
/// target that is not a path (`*` of `OPTIONS *`) is returned as it is.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathRejected> {
    if !path.starts_with('/') {
        return Ok(Cow::Borrowed(path));
    }
    let Scanned {
        percent,
        semicolon,
        slash_dot_or_slash,
    } = scan(path.as_bytes())?;
    if !percent && !semicolon && !slash_dot_or_slash {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = if percent {
        decode_unreserved(path)
    } else {
        Cow::Borrowed(path)
    };
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
                if s.contains(['%', ';']) && hides_dot_segment(s) {
                    return Err(PathRejected(
                        "the path has a dot segment hidden by encoding, an encoded slash or backslash, or a `;` parameter",
                    ));
                }
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
        Ok(Cow::Borrowed(path))
    } else {
        Ok(Cow::Owned(result))
    }
}

/// Decodes the escapes of unreserved characters. `path` has passed [`scan`]: every `%` starts a
/// valid escape, and every byte is ASCII.
fn decode_unreserved(path: &str) -> Cow<'_, str> {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                let c = h << 4 | l;
                if is_unreserved(c) {
                    out.push(c as char);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::normalize_path;

    fn n(path: &str) -> String {
        normalize_path(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into_owned()
    }

    fn rejected(path: &str) -> bool {
        normalize_path(path).is_err()
    }

    #[test]
    fn policy() {
        assert_eq!(n("/a/b"), "/a/b");
        assert_eq!(n("/"), "/");
        assert_eq!(n("/function/../system/functions"), "/system/functions");
        assert_eq!(n("/function/%2e%2e/system/functions"), "/system/functions");
        assert_eq!(n("/function/%2E%2e/system"), "/system");
        assert_eq!(n("/function/.%2e/system"), "/system");
        assert_eq!(n("/a/./b/"), "/a/b/");
        assert_eq!(n("/a/%2e/b"), "/a/b");
        assert_eq!(n("/a/.."), "/");
        assert_eq!(n("/../../x"), "/x");
        assert_eq!(n("//system//functions"), "/system/functions");
        assert_eq!(n("/system%2Ffunctions"), "/system%2Ffunctions");
        assert_eq!(n("/system%2ffunctions"), "/system%2ffunctions");
        assert_eq!(n("/a%5Cb"), "/a%5Cb");
        assert_eq!(n("/%7Euser/%41"), "/~user/A");
        assert_eq!(n("/a%20b"), "/a%20b");
        assert_eq!(n("/a/.hidden"), "/a/.hidden");
        assert_eq!(n("/a/b/."), "/a/b/");
        assert_eq!(n("/a/.../b"), "/a/.../b");
        assert_eq!(n("/a;v=1/b;jsessionid=x"), "/a;v=1/b;jsessionid=x");
        assert_eq!(n("/a/%25/b"), "/a/%25/b");
        // Well-formed UTF-8, and Latin-1, stay encoded.
        assert_eq!(
            n("/caf%C3%A9/%E0%A4%85/%F0%9F%98%80"),
            "/caf%C3%A9/%E0%A4%85/%F0%9F%98%80"
        );
        assert_eq!(n("/caf%E9"), "/caf%E9");
        assert_eq!(n("*"), "*");
    }

    #[test]
    fn hostile_paths_are_rejected() {
        for path in [
            "/a\\..\\b",
            "/a\\b",
            "/caf\u{e9}",
            "/a%00b",
            "/a%0d%0aSet-Cookie:x",
            "/a%7f",
            "/a%",
            "/a%4",
            "/a%zz",
            "/a%%32%65",
            "/public/..%2Fsystem",
            "/public/..%2fsystem",
            "/public/%2e%2e%2fsystem",
            "/public/a%2F..%2Fb",
            "/public/..%5Csystem",
            "/public/..;/system",
            "/public/.;/system",
            "/public/..;jsessionid=x/system",
            "/public/%2e%2e;/system",
            "/public/..%3b/system",
            "/public/%252e%252e/system",
            "/public/%25252e%25252e/system",
            "/public/a%252F..%252Fb",
            "/a\tb",
            "/a\"b",
            "/a<b>",
            "/a[0]",
            "/a|b",
            "/public/%c0%ae%c0%ae/system",
            "/public/%C0%AE./system",
            "/public/%e0%80%ae%e0%80%ae/system",
            "/public/%f0%80%80%ae/system",
            "/a%C1%9C",
        ] {
            assert!(rejected(path), "{path:?} should be rejected");
        }
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for path in [
            "/a/./b/../c//d/",
            "/%2e%2E/%41%7e",
            "/x%2Fy/%2e/z",
            "/a;b/../c",
        ] {
            let once = n(path);
            assert_eq!(n(&once), once, "{path}");
        }
    }
}
