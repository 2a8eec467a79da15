//! Message heads: a bodiless request written out, a response head parsed and its body's
//! framing decided (RFC 9112 §6.3).

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};

use super::Http1Error;
use crate::proxy::headers::{
    distinct, is_hop_by_hop, list_elements, named_by_connection, HeaderEdits,
};

/// The most headers a response head may have (as hyper's client allows).
pub const MAX_HEADERS: usize = 100;

/// The longest a response head may be, 1xx heads before it included (as hyper's client's
/// read buffer allows).
pub const MAX_HEAD: usize = 8192 + 4096 * 100;

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (a response to HEAD, a 204 or a 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// The status, version, end-to-end headers (and a non-standard reason phrase, as hyper's
    /// [`hyper::ext::ReasonPhrase`] extension). The hop-by-hop headers (RFC 9110 §7.6.1:
    /// `Connection`, every header it names, `Transfer-Encoding`, `Keep-Alive`, ...) describe
    /// this connection: the connection acts on them (`framing`, `keep_alive`) and leaves them
    /// out. (A response from hyper's client keeps them, and the forwarder removes them from
    /// those.)
    pub response: Response<()>,
    /// How the body that follows is delimited.
    pub framing: Framing,
    /// Whether the upstream lets the connection carry another request after this response.
    pub keep_alive: bool,
}

/// The longest request head this client writes. The connection reads nothing until its head is
/// written, so a head must fit in what the sockets buffer even when the upstream has stopped
/// reading to answer early (a 431, say); longer heads go through hyper's client, which reads
/// while it writes.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Writes `request`'s head into `out` as HTTP/1.1, its uri in origin form, with `edits` made
/// to its headers: the headers they set first, then the request's own that they keep. Returns
/// `false`, with `out` in an unspecified state, if the request is not one this client sends:
/// it has a body, announces one (`Content-Length` other than 0, or `Transfer-Encoding`), is a
/// `CONNECT`, or its head is longer than [`MAX_REQUEST_HEAD`].
pub fn write_request<B>(request: &Request<B>, edits: &HeaderEdits, out: &mut Vec<u8>) -> bool {
    if request.method() == Method::CONNECT {
        return false;
    }
    out.clear();
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // The http crate keeps CR, LF and NUL out of names and values; edits hold only values
    // valid in a header.
    let mut header = |name: &HeaderName, value: &[u8]| {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    for (name, value) in edits.added() {
        header(name, value);
    }
    for (name, value) in request.headers() {
        // Checked before the edits drop `Transfer-Encoding` as hop-by-hop.
        if name == header::TRANSFER_ENCODING
            || (name == header::CONTENT_LENGTH && value.as_bytes() != b"0")
        {
            return false;
        }
        if edits.keeps(name) {
            header(name, value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out.len() <= MAX_REQUEST_HEAD
}

/// Parses the response head at the start of `buf`, skipping interim (1xx) responses, and
/// removes it from `buf`. `Ok(None)` when more bytes are needed. `taken` counts the bytes of
/// the heads taken so far for this response (start it at 0): all of them together may not
/// exceed [`MAX_HEAD`].
pub fn parse_response(
    buf: &mut BytesMut,
    request_method: &Method,
    taken: &mut usize,
) -> Result<Option<ResponseHead>, Http1Error> {
    loop {
        let before = buf.len();
        let parsed = parse_one(buf, request_method)?;
        *taken += before - buf.len();
        let Some(head) = parsed else {
            if *taken + buf.len() >= MAX_HEAD {
                return Err(Http1Error::HeadTooLarge);
            }
            return Ok(None);
        };
        if *taken > MAX_HEAD {
            return Err(Http1Error::HeadTooLarge);
        }
        // 100 Continue, 102 Processing, 103 Early Hints: a final response follows.
        if head.response.status().is_informational() {
            if head.response.status() == StatusCode::SWITCHING_PROTOCOLS {
                // weir never asks to upgrade an upstream connection (Upgrade is hop-by-hop).
                return Err(Http1Error::UnexpectedUpgrade);
            }
            continue;
        }
        return Ok(Some(head));
    }
}

/// Where a header's name and value lie in the head (which is under 4 GiB).
#[derive(Clone, Copy, Default)]
pub(crate) struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

impl Span {
    /// Where `header`, parsed by httparse from `base`, lies in it.
    pub(crate) fn of(base: &[u8], header: &httparse::Header<'_>) -> Self {
        let range = |part: &[u8]| {
            let start = part.as_ptr() as usize - base.as_ptr() as usize;
            (start as u32, (start + part.len()) as u32)
        };
        Span {
            name: range(header.name.as_bytes()),
            value: range(header.value),
        }
    }

    /// The header's name in `head`.
    pub(crate) fn name<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.name.0 as usize..self.name.1 as usize]
    }

    /// The header's value in `head`, sharing its bytes.
    pub(crate) fn value(&self, head: &bytes::Bytes) -> bytes::Bytes {
        head.slice(self.value.0 as usize..self.value.1 as usize)
    }

    /// The header's value in `head`, borrowed.
    pub(crate) fn value_bytes<'a>(&self, head: &'a [u8]) -> &'a [u8] {
        &head[self.value.0 as usize..self.value.1 as usize]
    }
}

/// Heads with up to this many headers keep their spans on the stack.
const INLINE_SPANS: usize = 16;

fn parse_one(
    buf: &mut BytesMut,
    request_method: &Method,
) -> Result<Option<ResponseHead>, Http1Error> {
    let mut inline = [Span::default(); INLINE_SPANS];
    let mut spilled = Vec::new();
    let (len, code, version, reason) = {
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut headers,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(Http1Error::Parse(e)),
        };
        let spans = response.headers.iter().map(|h| Span::of(buf, h));
        if response.headers.len() <= INLINE_SPANS {
            inline
                .iter_mut()
                .zip(spans)
                .for_each(|(slot, span)| *slot = span);
        } else {
            spilled.extend(spans);
        }
        // httparse gives a reason that is not UTF-8 as a static "": only one in the head is
        // kept.
        let reason = response.reason.and_then(|r| {
            let start = (r.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
            (!r.is_empty() && start + r.len() <= buf.len()).then_some((start, start + r.len()))
        });
        (
            len,
            response.code.unwrap_or(0),
            response.version.unwrap_or(1),
            (reason, response.headers.len()),
        )
    };
    let (reason, count) = reason;
    let spans = if spilled.is_empty() {
        &inline[..count]
    } else {
        &spilled[..]
    };
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| Http1Error::Status(code))?;
    let version = if version == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };

    let mut headers = HeaderMap::with_capacity(count);
    // Framing headers are checked only for a response that has a body: a HEAD, 204 or 304
    // answer's are not read (as hyper does).
    let bodiless = request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut content_length = Ok(None);
    let mut chunked = None;
    // HTTP/1.0 closes unless the upstream says `keep-alive`; a `close` anywhere wins.
    let mut saw_close = false;
    let mut saw_keep_alive = false;
    // Other headers `Connection` names: rare, so collected only when there are some.
    let mut named = Vec::new();
    for span in spans {
        let name = header_name(span.name(&head)).ok_or(Http1Error::HeaderName)?;
        let value = span.value_bytes(&head);
        if name == header::CONTENT_LENGTH {
            content_length = match (content_length, parse_content_length(value)) {
                (Ok(Some(earlier)), Ok(length)) if earlier != length => {
                    Err(Http1Error::ContentLength)
                }
                (Ok(_), length) => length.map(Some),
                (Err(e), _) => Err(e),
            };
        } else if name == header::TRANSFER_ENCODING {
            // Only the last coding of the last header says whether the body is chunked.
            let last = list_elements(value).last();
            chunked = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
        } else if name == header::CONNECTION {
            // `keep-alive`, the usual value, names no header but its own (hop-by-hop anyway).
            let mut names_others = false;
            for token in list_elements(value) {
                if token.eq_ignore_ascii_case(b"keep-alive") {
                    saw_keep_alive = true;
                    continue;
                }
                names_others = true;
                if token.eq_ignore_ascii_case(b"close") {
                    saw_close = true;
                }
            }
            if names_others {
                named.extend(named_by_connection(value));
            }
        }
        if !is_hop_by_hop(&name) {
            headers.append(name, header_value(span, &head));
        }
    }
    distinct(&mut named);
    for name in named {
        headers.remove(name);
    }

    let framing = if bodiless {
        Framing::Empty
    } else {
        match (chunked, content_length?) {
            // Both framings at once is how responses are smuggled: refused, not guessed.
            (Some(_), Some(_)) => return Err(Http1Error::AmbiguousFraming),
            (Some(_), None) if version == Version::HTTP_10 => {
                return Err(Http1Error::AmbiguousFraming)
            }
            (Some(true), None) => Framing::Chunked,
            (Some(false), None) | (None, None) => Framing::Close,
            (None, Some(length)) => Framing::Length(length),
        }
    };

    let close = saw_close || (version == Version::HTTP_10 && !saw_keep_alive);
    let mut response = Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    if let Some((start, end)) = reason {
        let phrase = &head[start..end];
        if status.canonical_reason().map(str::as_bytes) != Some(phrase) {
            if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(head.slice(start..end)) {
                response.extensions_mut().insert(phrase);
            }
        }
    }
    *response.headers_mut() = headers;
    Ok(Some(ResponseHead {
        response,
        keep_alive: !close && framing != Framing::Close,
        framing,
    }))
}

/// A header name from a message head (checked by httparse to be a token). The names most
/// heads carry are told apart by their length and one word-wise comparison, a fraction of
/// what [`HeaderName::from_bytes`]'s general parse costs; any other name goes through it.
pub(crate) fn header_name(bytes: &[u8]) -> Option<HeaderName> {
    let is = |name: &[u8]| same_name(bytes, name);
    Some(match bytes.len() {
        4 if is(b"date") => header::DATE,
        4 if is(b"host") => header::HOST,
        4 if is(b"etag") => header::ETAG,
        4 if is(b"vary") => header::VARY,
        6 if is(b"server") => header::SERVER,
        6 if is(b"accept") => header::ACCEPT,
        6 if is(b"cookie") => header::COOKIE,
        8 if is(b"location") => header::LOCATION,
        10 if is(b"connection") => header::CONNECTION,
        10 if is(b"user-agent") => header::USER_AGENT,
        10 if is(b"set-cookie") => header::SET_COOKIE,
        12 if is(b"content-type") => header::CONTENT_TYPE,
        13 if is(b"cache-control") => header::CACHE_CONTROL,
        13 if is(b"last-modified") => header::LAST_MODIFIED,
        13 if is(b"accept-ranges") => header::ACCEPT_RANGES,
        13 if is(b"authorization") => header::AUTHORIZATION,
        14 if is(b"content-length") => header::CONTENT_LENGTH,
        15 if is(b"accept-encoding") => header::ACCEPT_ENCODING,
        16 if is(b"content-encoding") => header::CONTENT_ENCODING,
        17 if is(b"transfer-encoding") => header::TRANSFER_ENCODING,
        _ => return HeaderName::from_bytes(bytes).ok(),
    })
}

/// Whether `name` is `lower` (lowercase letters, digits and `-`) in any case. The bytes are
/// compared all at once, without an early exit, so the comparison with a literal compiles to
/// a few word-wide operations; `eq_ignore_ascii_case` folds both sides byte by byte.
pub(crate) fn same_name(name: &[u8], lower: &[u8]) -> bool {
    debug_assert!(
        !lower.iter().any(u8::is_ascii_uppercase),
        "{lower:?} is not lowercase"
    );
    name.len() == lower.len()
        && name.iter().zip(lower).fold(0, |diff, (&byte, &want)| {
            // Only a letter may differ in case: `| 0x20` lowercases exactly the two spellings.
            let fold = if want.is_ascii_lowercase() { 0x20 } else { 0 };
            diff | ((byte | fold) ^ want)
        }) == 0
}

/// A header value that httparse took from `head`, sharing its bytes. With httparse's default
/// config (no obsolete line folding, which would leave CR LF inside a value; both weir's
/// parsers use it), httparse admits in a value exactly the bytes [`HeaderValue`] does: tab,
/// space, visible ASCII and obs-text 0x80-0xFF (`header_values_as_httparse_reads_them` tries
/// every byte). The http crate's second check of every byte is therefore left to debug builds
/// (and the fuzz targets, built with debug assertions). About 60 instructions a header, on
/// both the request's and the response's head.
#[allow(unsafe_code)]
pub(crate) fn header_value(span: &Span, head: &bytes::Bytes) -> HeaderValue {
    // SAFETY: what `HeaderValue` relies on is that its bytes are a valid header value, and
    // these passed httparse's check of the same set (see above). The function's documentation
    // asks for UTF-8 instead, which obs-text is not: upstream calls that a documentation
    // error (hyperium/http#871), and hyper's own HTTP/1 parser (`header_value!` in
    // proto/h1/role.rs) builds every parsed value this way, obs-text included.
    unsafe { HeaderValue::from_maybe_shared_unchecked(span.value(head)) }
}

/// A `Content-Length` value: digits, or a list of equal digit strings.
fn parse_content_length(value: &[u8]) -> Result<u64, Http1Error> {
    let mut length = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(Http1Error::ContentLength);
        }
        // Leading zeros say nothing; 19 digits always fit in a u64.
        let first = part.iter().position(|&d| d != b'0').unwrap_or(part.len());
        let part = &part[first..];
        if part.len() > 19 {
            return Err(Http1Error::ContentLength);
        }
        let n = part.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        if length.is_some_and(|l| l != n) {
            return Err(Http1Error::ContentLength);
        }
        length = Some(n);
    }
    length.ok_or(Http1Error::ContentLength)
}

#[cfg(test)]
fn parse(bytes: &[u8], method: &Method) -> Result<Option<ResponseHead>, Http1Error> {
    parse_response(&mut BytesMut::from(bytes), method, &mut 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason phrase kept beside the status, if any.
    fn reason(head: &ResponseHead) -> Option<&[u8]> {
        let phrase = head.response.extensions().get::<hyper::ext::ReasonPhrase>();
        phrase.map(|p| p.as_bytes())
    }

    #[test]
    fn header_names_as_the_http_crate_reads_them() {
        let names = [
            "date",
            "server",
            "connection",
            "content-type",
            "content-length",
            "x-custom",
            "keep-alive",
            "content-lengths",
            "dat",
            "etag",
            "Server",
            "transfer-encoding",
            "vary",
            "cookie",
            "set-cookie",
            "location",
            "cache-control",
            "last-modified",
            "accept-ranges",
            "authorization",
            "accept-encoding",
            "content-encoding",
            "accept-encodinh",
        ];
        for name in names.map(String::from) {
            for spelled in [name.clone(), name.to_ascii_uppercase()] {
                let ours = header_name(spelled.as_bytes()).unwrap();
                assert_eq!(ours, HeaderName::from_bytes(spelled.as_bytes()).unwrap());
            }
        }
        assert_eq!(header_name(b"bad name"), None);
    }

    #[test]
    fn same_name_folds_only_letters() {
        assert!(same_name(b"Content-Length", b"content-length"));
        assert!(same_name(b"CONTENT-LENGTH", b"content-length"));
        assert!(!same_name(b"content-lengt", b"content-length"));
        // `\r | 0x20` is `-`, `\x10 | 0x20` is `0`: only letters may differ in case.
        assert!(!same_name(b"content\rlength", b"content-length"));
        assert!(!same_name(b"x\x10", b"x0"));
        assert!(!same_name(b"content_length", b"content-length"));
    }

    /// `header_value` skips the second check: every value httparse takes, in requests and
    /// responses, on its byte-wise path (short values) and on the vectored path this machine
    /// selects (SSE4.2 or AVX2, for long values), is one `HeaderValue` takes.
    #[test]
    fn header_values_as_httparse_reads_them() {
        let mut taken = 0;
        for byte in 0..=255u8 {
            for (before, after) in [(1, 1), (40, 3), (3, 70)] {
                let mut value = vec![b'a'; before];
                value.push(byte);
                value.extend(std::iter::repeat_n(b'b', after));
                for start in [&b"HTTP/1.1 200 OK\r\n"[..], b"GET / HTTP/1.1\r\n"] {
                    let mut head = start.to_vec();
                    head.extend(b"x-v: ");
                    head.extend(&value);
                    head.extend(b"\r\n\r\n");
                    let mut headers = [httparse::EMPTY_HEADER; 4];
                    let parsed = if start.starts_with(b"HTTP") {
                        let mut response = httparse::Response::new(&mut headers);
                        matches!(response.parse(&head), Ok(httparse::Status::Complete(_)))
                    } else {
                        let mut request = httparse::Request::new(&mut headers);
                        matches!(request.parse(&head), Ok(httparse::Status::Complete(_)))
                    };
                    if !parsed {
                        continue;
                    }
                    taken += 1;
                    for header in headers.iter().filter(|h| !h.name.is_empty()) {
                        assert!(
                            HeaderValue::from_bytes(header.value).is_ok(),
                            "httparse took {:?} (byte {byte:#04x}), HeaderValue refuses it",
                            header.value
                        );
                    }
                }
            }
        }
        // Tab, space, visible ASCII and obs-text, three placings each, in both heads.
        assert_eq!(taken, (1 + 95 + 128) * 3 * 2);
    }

    fn ok(bytes: &str) -> ResponseHead {
        parse(bytes.as_bytes(), &Method::GET).unwrap().unwrap()
    }

    fn err(bytes: &str) -> Http1Error {
        parse(bytes.as_bytes(), &Method::GET).unwrap_err()
    }

    #[test]
    fn writes_a_bodiless_request_in_origin_form() {
        let request = Request::get("/a/b?c=d")
            .header("host", "up:8080")
            .header("x-one", "1")
            .header("content-length", "0")
            .body(())
            .unwrap();
        let mut out = Vec::new();
        assert!(write_request(&request, &HeaderEdits::default(), &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /a/b?c=d HTTP/1.1\r\nhost: up:8080\r\nx-one: 1\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn hop_by_hop_headers_are_acted_on_not_passed_on() {
        let head = ok(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop, Close\r\n\
                       X-Hop: 1\r\nClose: 1\r\nKeep-Alive: timeout=5\r\n\
                       Transfer-Encoding: chunked\r\n\
                       Proxy-Authenticate: Basic\r\nX-Kept: 1\r\nConnection: TE\r\n\r\n",
        );
        let names: Vec<_> = head.response.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
        assert_eq!(head.framing, Framing::Chunked);
        assert!(!head.keep_alive);
    }

    #[test]
    fn writes_the_changes_first_and_the_headers_they_keep() {
        let request = Request::get("/")
            .header("host", "client.example")
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("x-forwarded-proto", "https")
            .header("x-one", "1")
            .body(())
            .unwrap();
        static HOST: HeaderName = header::HOST;
        static PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
        let mut edits = HeaderEdits::dropping_hop_by_hop(request.headers());
        edits.set(
            &HOST,
            crate::proxy::headers::EditValue::Header(HeaderValue::from_static("up:8080")),
        );
        edits.remove(&PROTO);
        let mut out = Vec::new();
        assert!(write_request(&request, &edits, &mut out));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nhost: up:8080\r\nx-one: 1\r\n\r\n"
        );
        // `Transfer-Encoding` is hop-by-hop, but a request that has one is still refused.
        let chunked = Request::get("/")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        let edits = HeaderEdits::dropping_hop_by_hop(chunked.headers());
        assert!(!write_request(&chunked, &edits, &mut Vec::new()));
    }

    #[test]
    fn refuses_requests_that_announce_a_body() {
        let mut out = Vec::new();
        let with_length = Request::post("/")
            .header("content-length", "3")
            .body(())
            .unwrap();
        assert!(!write_request(
            &with_length,
            &HeaderEdits::default(),
            &mut out
        ));
        let chunked = Request::post("/")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        assert!(!write_request(&chunked, &HeaderEdits::default(), &mut out));
        let connect = Request::connect("up:443").body(()).unwrap();
        assert!(!write_request(&connect, &HeaderEdits::default(), &mut out));
        let long = "a".repeat(MAX_REQUEST_HEAD);
        let large = Request::get("/").header("x-long", long).body(()).unwrap();
        assert!(!write_request(&large, &HeaderEdits::default(), &mut out));
    }

    #[test]
    fn frames_by_content_length_and_keeps_the_connection() {
        let head = ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(head.response.status(), 200);
        assert_eq!(head.response.headers()["x-a"], "b");
        assert_eq!(reason(&head), None);
    }

    #[test]
    fn the_head_is_taken_from_the_buffer_and_the_body_left() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"[..]);
        let head = parse_response(&mut buf, &Method::GET, &mut 0)
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn chunked_close_delimited_and_bodiless_responses() {
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").framing,
            Framing::Chunked
        );
        // Empty list elements count for nothing (RFC 9110 §5.6.1).
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, \r\n\r\n").framing,
            Framing::Chunked
        );
        let gzip_only = ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(gzip_only.framing, Framing::Close);
        assert!(!gzip_only.keep_alive);
        let no_length = ok("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(no_length.framing, Framing::Close);
        assert!(!no_length.keep_alive);
        assert_eq!(
            ok("HTTP/1.1 204 No Content\r\n\r\n").framing,
            Framing::Empty
        );
        assert_eq!(
            ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n").framing,
            Framing::Empty
        );
        let head = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            &Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.framing, Framing::Empty);
        assert!(head.keep_alive);
        assert_eq!(head.response.headers()["content-length"], "10");
    }

    #[test]
    fn connection_tokens_and_versions_decide_keep_alive() {
        assert!(
            !ok("HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 0\r\n\r\n")
                .keep_alive
        );
        assert!(!ok("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive);
        // A `close` is never undone by a `keep-alive` after it.
        for head in [
            "HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.0 200 OK\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(!ok(head).keep_alive, "{head}");
        }
        let kept = ok("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(kept.keep_alive);
        assert_eq!(kept.response.version(), Version::HTTP_10);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let head = ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(head.response.status(), 201);
        assert!(head.response.headers().get("link").is_none());
        // An interim response alone is not a response yet.
        assert!(parse(b"HTTP/1.1 100 Continue\r\n\r\n", &Method::GET)
            .unwrap()
            .is_none());
        assert!(matches!(
            err("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
            Http1Error::UnexpectedUpgrade
        ));
    }

    #[test]
    fn ambiguous_or_malformed_framing_is_refused() {
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(matches!(err(head), Http1Error::AmbiguousFraming), "{head}");
        }
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        ] {
            assert!(matches!(err(head), Http1Error::ContentLength), "{head}");
        }
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n").framing,
            Framing::Length(5)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 000000000000000000012\r\n\r\n").framing,
            Framing::Length(12)
        );
        // A response without a body is not framed: its framing headers are not read.
        for head in [
            "HTTP/1.1 204 No Content\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(ok(head).framing, Framing::Empty, "{head}");
        }
        let head = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            &Method::HEAD,
        );
        assert_eq!(head.unwrap().unwrap().framing, Framing::Empty);
        assert!(matches!(
            err("HTTP/1.1 099 Odd\r\n\r\n"),
            Http1Error::Status(99)
        ));
        assert!(matches!(
            err("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"),
            Http1Error::Parse(_)
        ));
        assert!(matches!(err("HTTP/2 200 OK\r\n\r\n"), Http1Error::Parse(_)));
    }

    #[test]
    fn a_partial_head_waits_and_an_endless_one_is_refused() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Le", &Method::GET)
            .unwrap()
            .is_none());
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        while endless.len() < MAX_HEAD {
            endless.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        // Over the header count first.
        assert!(parse(&endless, &Method::GET).is_err());
        let mut long = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert!(matches!(
            parse(&long, &Method::GET).unwrap_err(),
            Http1Error::HeadTooLarge
        ));
        // A complete head over the limit, read in one go, is refused too.
        let mut complete = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        complete.resize(MAX_HEAD + 10, b'a');
        complete.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(
            parse(&complete, &Method::GET).unwrap_err(),
            Http1Error::HeadTooLarge
        ));
        // So is an endless run of interim responses, however it is read.
        let mut buf = BytesMut::new();
        let mut taken = 0;
        let result = loop {
            buf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            match parse_response(&mut buf, &Method::GET, &mut taken) {
                Ok(None) => continue,
                other => break other,
            }
        };
        assert!(matches!(result, Err(Http1Error::HeadTooLarge)));
    }

    #[test]
    fn a_reason_phrase_that_is_not_utf8_is_dropped() {
        let bytes = b"HTTP/1.1 200 Fine \xff\r\nContent-Length: 0\r\n\r\n";
        let head = parse(bytes, &Method::GET).unwrap().unwrap();
        assert_eq!(reason(&head), None);
    }

    #[test]
    fn a_reason_phrase_of_its_own_is_kept() {
        let head = ok("HTTP/1.1 200 Fine Thanks\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(reason(&head), Some(&b"Fine Thanks"[..]));
    }
}
