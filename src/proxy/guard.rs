//! What is checked in a request head before anything else looks at it: the framing, the
//! method, the request target and the host. hyper already rejects most malformed requests
//! (see the README's Security section for the whole list); these are the cases it lets
//! through and weir does not.
//!
//! Every rejection here is answered by weir itself, with the connection closed, and never
//! reaches a predicate, a filter or an upstream.

use http::request::Parts;
use http::{header, HeaderValue, Method, StatusCode, Version};

use super::normalize::is_unreserved;
use super::raw_framing::Ambiguity;

/// The longest request target (path and query) weir accepts; a longer one is answered 414.
/// (hyper answers 414 itself above 64 KiB, and 431 when the whole head is over ~400 KiB.)
pub const MAX_TARGET: usize = 8 * 1024;

/// A request weir answers itself instead of routing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Route it.
    Pass,
    /// `OPTIONS *`: answered with the methods weir forwards.
    OptionsStar,
    /// Rejected with this status and message (safe to show the client).
    Reject(StatusCode, &'static str),
}

const REPEATED_LENGTH: &str = "the request has more than one Content-Length";
const LENGTH_AND_ENCODING: &str = "the request has both Transfer-Encoding and Content-Length";

fn reject(status: StatusCode, message: &'static str) -> Verdict {
    Verdict::Reject(status, message)
}

/// The methods `OPTIONS *` lists.
pub const ALLOW: &str = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE";

/// Checks the head of a request. With an absolute-form target (`GET http://host/path`) the
/// target's authority replaces the `Host` header, as RFC 9112 §3.2.2 requires, so that what
/// the Host predicates match is what the upstream is told.
///
/// `raw` is what the connection's bytes showed of the head's framing
/// ([`super::raw_framing`]): what hyper resolved before this head was parsed.
pub fn check(parts: &mut Parts, raw: Option<Ambiguity>) -> Verdict {
    let h1 = parts.version < Version::HTTP_2;

    // The method.
    if parts.method == Method::CONNECT {
        return reject(
            StatusCode::METHOD_NOT_ALLOWED,
            "weir is a gateway, not a forward proxy: CONNECT is not supported",
        );
    }
    if parts
        .method
        .as_str()
        .bytes()
        .any(|b| b.is_ascii_lowercase())
    {
        return reject(
            StatusCode::BAD_REQUEST,
            "methods are case-sensitive and weir accepts only upper-case ones",
        );
    }

    // The framing: hyper has already rejected a malformed or conflicting Content-Length, and a
    // Transfer-Encoding that does not end in `chunked`.
    match raw {
        Some(Ambiguity::RepeatedLength) => return reject(StatusCode::BAD_REQUEST, REPEATED_LENGTH),
        Some(Ambiguity::LengthAndEncoding) => {
            return reject(StatusCode::BAD_REQUEST, LENGTH_AND_ENCODING)
        }
        None => {}
    }
    let counts = Counts::of(&parts.headers);
    if h1 {
        let lengths = counts.lengths;
        let (first, another) = (counts.first_encoding, counts.encodings > 1);
        if lengths > 1 {
            return reject(StatusCode::BAD_REQUEST, REPEATED_LENGTH);
        }
        if first.is_some() && lengths > 0 {
            return reject(StatusCode::BAD_REQUEST, LENGTH_AND_ENCODING);
        }
        match (first, another) {
            (None, _) => {}
            (Some(one), false) if one.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") => {}
            _ => {
                return reject(
                    StatusCode::BAD_REQUEST,
                    "the only Transfer-Encoding weir accepts is a single `chunked`",
                )
            }
        }
    }

    // The request target.
    let uri = &parts.uri;
    if uri.path() == "*" && uri.authority().is_none() {
        return if parts.method == Method::OPTIONS {
            Verdict::OptionsStar
        } else {
            reject(
                StatusCode::BAD_REQUEST,
                "the target `*` is only for OPTIONS",
            )
        };
    }
    if let Some(pq) = uri.path_and_query() {
        if pq.as_str().len() > MAX_TARGET {
            return reject(
                StatusCode::URI_TOO_LONG,
                "the request target is longer than 8 KiB",
            );
        }
        // hyper lets raw UTF-8 (or any byte over 0x7F) through; upstreams read it as UTF-8 or
        // Latin-1. The path policy says the same of the path; this covers the query.
        if !pq.as_str().is_ascii() {
            return reject(
                StatusCode::BAD_REQUEST,
                "the request target has bytes that are not ASCII; percent-encode them",
            );
        }
    }
    if !uri.path().starts_with('/') {
        return reject(
            StatusCode::BAD_REQUEST,
            "the request target must be a path (or an absolute http URI)",
        );
    }

    // The host.
    if counts.hosts > 1 {
        return reject(
            StatusCode::BAD_REQUEST,
            "the request has more than one Host header",
        );
    }
    if let Some(authority) = uri.authority() {
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
            _ => {
                return reject(
                    StatusCode::BAD_REQUEST,
                    "an absolute request target must be an http or https URI",
                )
            }
        }
        if authority.as_str().contains('@') {
            return reject(
                StatusCode::BAD_REQUEST,
                "the request target must not carry credentials (user@host)",
            );
        }
        match HeaderValue::from_str(authority.as_str()) {
            Ok(value) => {
                parts.headers.insert(header::HOST, value);
            }
            Err(_) => {
                return reject(
                    StatusCode::BAD_REQUEST,
                    "the request target's host is not valid",
                )
            }
        }
    }
    match parts.headers.get(header::HOST) {
        None if parts.version == Version::HTTP_11 => {
            return reject(
                StatusCode::BAD_REQUEST,
                "an HTTP/1.1 request must have a Host header",
            )
        }
        Some(host) if !valid_host(host.as_bytes()) => {
            return reject(StatusCode::BAD_REQUEST, "the Host header is not valid");
        }
        _ => {}
    }
    Verdict::Pass
}

/// How many times the headers that must not repeat appear in a head, counted in one pass over
/// its headers: cheaper than a hash lookup for each name in the few headers a request has.
struct Counts<'a> {
    lengths: usize,
    encodings: usize,
    first_encoding: Option<&'a HeaderValue>,
    hosts: usize,
}

impl<'a> Counts<'a> {
    fn of(headers: &'a http::HeaderMap) -> Self {
        let mut counts = Counts {
            lengths: 0,
            encodings: 0,
            first_encoding: None,
            hosts: 0,
        };
        for (name, value) in headers {
            if name == header::HOST {
                counts.hosts += 1;
            } else if name == header::CONTENT_LENGTH {
                counts.lengths += 1;
            } else if name == header::TRANSFER_ENCODING {
                counts.encodings += 1;
                counts.first_encoding.get_or_insert(value);
            }
        }
        counts
    }
}

/// Whether `host` is a valid `Host` value (RFC 9110 §7.2): `uri-host [ ":" port ]`, where
/// the host is a bracketed IPv6 literal, or a name or IPv4 address of unreserved characters
/// and sub-delimiters, and the port is at most five digits. Stricter than the URI grammar
/// where a Host header has no use for it: no user info, no percent-encoding, no zone id.
/// Checked in place: nothing is copied.
fn valid_host(host: &[u8]) -> bool {
    let (name_ok, port) = match host.strip_prefix(b"[") {
        Some(literal) => {
            let Some(close) = literal.iter().position(|&b| b == b']') else {
                return false;
            };
            let address = &literal[..close];
            let ok = address.contains(&b':')
                && address
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            (ok, &literal[close + 1..])
        }
        None => {
            let end = host.iter().position(|&b| b == b':').unwrap_or(host.len());
            let name = &host[..end];
            let ok = !name.is_empty() && name.iter().copied().all(is_host_name_byte);
            (ok, &host[end..])
        }
    };
    name_ok
        && match port {
            [] => true,
            [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
            _ => false,
        }
}

/// Whether a host name may hold `b`: RFC 3986's unreserved characters and sub-delimiters.
fn is_host_name_byte(b: u8) -> bool {
    is_unreserved(b) || b"!$&'()*+,;=".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(request: http::Request<()>) -> Verdict {
        let (mut parts, ()) = request.into_parts();
        check(&mut parts, None)
    }

    fn get(uri: &str) -> http::request::Builder {
        http::Request::get(uri)
    }

    #[test]
    fn plain_requests_pass() {
        assert_eq!(
            verdict(get("/a?b").header("host", "x").body(()).unwrap()),
            Verdict::Pass
        );
        // HTTP/1.0 may leave out Host.
        assert_eq!(
            verdict(get("/a").version(Version::HTTP_10).body(()).unwrap()),
            Verdict::Pass
        );
    }

    #[test]
    fn host_values() {
        for good in [
            "x",
            "a.example",
            "a.example:8080",
            "a.example:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8080",
            "[2001:db8::7]",
            "under_score.example",
        ] {
            assert!(valid_host(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            ":80",
            "u@h",
            "u:p@h",
            "a b",
            "a/b",
            "a?b",
            "a#b",
            "h:1:2",
            "h:80a",
            "h:123456",
            "a%2eexample",
            "[::1",
            "[]",
            "[::1]x",
            "[::1]:8a",
            "[fe80::1%25eth0]",
            "[v1.x]",
            "h\u{e9}",
        ] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn absolute_form_authority_replaces_host() {
        let (mut parts, ()) = get("http://a.example:81/p")
            .header("host", "b.example")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(check(&mut parts, None), Verdict::Pass);
        assert_eq!(parts.headers["host"], "a.example:81");
    }

    #[test]
    fn rejections() {
        let bad = |r: http::Request<()>| matches!(verdict(r), Verdict::Reject(..));
        assert!(bad(get("/a").body(()).unwrap()), "no Host in HTTP/1.1");
        assert!(bad(get("/a")
            .header("host", "a")
            .header("host", "b")
            .body(())
            .unwrap()));
        assert!(bad(get("/a").header("host", "u@h").body(()).unwrap()));
        assert!(bad(get("/a").header("host", "a b").body(()).unwrap()));
        assert!(bad(get("/a").header("host", "").body(()).unwrap()));
        assert!(bad(get("ftp://h/a").body(()).unwrap()));
        assert!(bad(get("http://u:p@h/a").body(()).unwrap()));
        assert!(bad(get("*").header("host", "x").body(()).unwrap()));
        assert!(bad(http::Request::post("/a")
            .header("host", "x")
            .header("content-length", "1")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap()));
        assert!(bad(http::Request::post("/a")
            .header("host", "x")
            .header("transfer-encoding", "gzip, chunked")
            .body(())
            .unwrap()));
        assert!(bad(http::Request::post("/a")
            .header("host", "x")
            .header("content-length", "1")
            .header("content-length", "1")
            .body(())
            .unwrap()));
        assert_eq!(
            verdict(
                http::Request::connect("h:443")
                    .header("host", "h:443")
                    .body(())
                    .unwrap()
            ),
            Verdict::Reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "weir is a gateway, not a forward proxy: CONNECT is not supported"
            )
        );
        let long = format!("/{}", "a".repeat(MAX_TARGET));
        assert!(matches!(
            verdict(get(&long).header("host", "x").body(()).unwrap()),
            Verdict::Reject(StatusCode::URI_TOO_LONG, _)
        ));
        assert_eq!(
            verdict(
                http::Request::options("*")
                    .header("host", "x")
                    .body(())
                    .unwrap()
            ),
            Verdict::OptionsStar
        );
    }
}
