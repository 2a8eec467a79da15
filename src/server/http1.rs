//! weir's own HTTP/1.1 server, for the common case: requests without a body. It reads and
//! parses each head with `httparse`, calls the handler, and writes the response head and body
//! itself, in the connection's task, with no dispatcher between them.
//!
//! Anything else is handed to hyper, at a request boundary and with the bytes already read
//! (see [`Ended::HandOver`]): a request with `Content-Length` or `Transfer-Encoding` (a body,
//! and every request-smuggling defence in `guard.rs` and `raw_framing.rs`), `Upgrade`,
//! `Expect`, HTTP/1.0, `CONNECT`, a request target not in origin form, a head not whole within
//! [`MAX_HEAD`] bytes or with over [`MAX_HEADERS`] headers, anything that does not parse (hyper
//! answers it, as before), and HTTP/2's preface. What it writes follows hyper's server: the
//! same status line, headers written as the map holds them, `Content-Length` or chunked
//! framing chosen the same way, `Date` added when missing, `Connection: close` added when the
//! connection closes after the response, trailers only to a client that sent `TE: trailers`.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice, Write as _};
use std::mem::MaybeUninit;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use weir_filters::{Body, BoxError};

use super::{date, HeadTimer, HeadWait, Stop, TimedBody, Timeouts};
use crate::proxy::http1::head::{header_name, header_value, same_name, Span};
use crate::proxy::Conn;

/// The most headers a request served here may have; one with more goes to hyper (which
/// allows 100).
pub const MAX_HEADERS: usize = 64;
/// A head not whole within this many bytes goes to hyper, with its larger limits.
pub const MAX_HEAD: usize = 16 * 1024;
/// How much room each read of the socket gets, at least.
const READ_ROOM: usize = 4 * 1024;
/// The first read buffer.
const FIRST_READ: usize = 8 * 1024;
/// How long a connection's close may wait for the client to take its last bytes.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// A body frame under this size is copied after the head or the frames before it, to go out
/// in one write; a larger one is written from its own bytes.
const COPY_UNDER: usize = 16 * 1024;
/// The longest request target hyper accepts (hyper's `MAX_URI_LEN`; it answers 414 beyond).
const MAX_URI_LEN: usize = 65534;

/// How a connection left weir's server.
pub(crate) enum Ended<S> {
    /// It is closed (or the client went away).
    Closed,
    /// hyper serves the rest of it: `read` holds the bytes read and not yet served, from the
    /// start of a request; `served` says whether any request was answered here (if not, the
    /// connection may still turn out to be HTTP/2).
    HandOver {
        /// The connection.
        stream: S,
        /// What was read of it and not yet served.
        read: BytesMut,
        /// Whether a request was answered here first.
        served: bool,
    },
}

/// What a connection's requests need, whichever server answers them.
pub(crate) struct Serving<H> {
    /// The handler.
    pub handler: H,
    /// The connection (its peer); each request gets a copy with its own deadline.
    pub conn: Conn,
    /// The listener's time limits.
    pub timeouts: Timeouts,
    /// The read timeout's state, when there is one.
    pub wait: Option<std::sync::Arc<HeadWait>>,
}

/// Serves requests on `stream` until it closes or a request goes to hyper.
pub(crate) async fn serve<S, H, F>(
    mut stream: S,
    serving: &Serving<H>,
    stop: &mut Stop,
    head_timer: &mut HeadTimer,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request<Body>, Conn) -> F,
    F: Future<Output = Response<Body>>,
{
    let mut read = BytesMut::with_capacity(FIRST_READ);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut served = false;
    loop {
        // Bytes of a head that were already parsed and found incomplete.
        let mut parsed = 0;
        let (request, asked) = loop {
            if served && stop.stopping() {
                // As hyper: after the response in progress when shutdown started, no other.
                close(&mut stream).await;
                return Ended::Closed;
            }
            if read.len() > parsed && may_end_head(&read, parsed) {
                match parse_head(&mut read) {
                    Head::Ready(request, asked) => break (request, asked),
                    Head::Partial if read.len() < MAX_HEAD => parsed = read.len(),
                    Head::Partial | Head::Hyper => {
                        return Ended::HandOver {
                            stream,
                            read,
                            served,
                        }
                    }
                }
            } else if read.len() >= MAX_HEAD {
                return Ended::HandOver {
                    stream,
                    read,
                    served,
                };
            } else {
                // No new empty line: still incomplete, and not to be looked at again.
                parsed = read.len();
            }
            let waited = poll_fn(|cx| {
                // At shutdown an idle connection closes, and so does one part-way through the
                // head of a request after the first; a first head begun is read to its end
                // (as hyper does).
                if (read.is_empty() || served) && stop.poll_stopping(cx) {
                    return Poll::Ready(false);
                }
                if let Some(wait) = &serving.wait {
                    if head_timer.poll_timed_out(cx, wait) {
                        tracing::debug!(peer = %serving.conn.peer, "no request head within server.read-timeout");
                        return Poll::Ready(false);
                    }
                }
                poll_read(cx, &mut stream, &mut read).map(|result| matches!(result, Ok(n) if n > 0))
            })
            .await;
            if !waited {
                return Ended::Closed;
            }
        };
        served = true;

        let method = request.method().clone();
        let deadline = serving.timeouts.write.map(|limit| Instant::now() + limit);
        let busy = serving.wait.as_ref().map(HeadWait::begin);
        let conn = Conn {
            deadline,
            ..serving.conn
        };
        // The handler's future (nearly 2 KiB for the gateway's) is pinned where it is made and
        // polled through a reference: passed by value, it would be copied in, and again to pin.
        let response = {
            let handled = pin!((serving.handler)(request, conn));
            answer(&mut stream, &mut read, handled).await
        };
        let Some(response) = response else {
            return Ended::Closed;
        };

        let keep_alive = !asked.close && !stop.stopping();
        let (mut head, body) = response.into_parts();
        let length = if body.is_end_stream() {
            Length::Ended
        } else {
            body.size_hint()
                .exact()
                .map_or(Length::Unknown, Length::Known)
        };
        out.clear();
        let Ok(mut encoded) = encode_head(&mut head, &method, length, keep_alive, &mut out) else {
            tracing::debug!(peer = %serving.conn.peer, "response head cannot be written (its framing headers disagree with its body)");
            return Ended::Closed;
        };
        if !asked.trailers {
            // As hyper: trailers only to a client that said `TE: trailers`.
            if let Encoder::Chunked(allowed) = &mut encoded.encoder {
                *allowed = None;
            }
        }
        let writing = Writing {
            stream: &mut stream,
            read: &mut read,
            out: &mut out,
            head_timer,
            wait: serving.wait.as_deref(),
        };
        let body = TimedBody::new(body, deadline, busy);
        let complete = writing.body(encoded.encoder, body).await;
        if !complete {
            // Cut off (or the client is gone): closed at once, with nothing more sent.
            return Ended::Closed;
        }
        if encoded.last {
            close(&mut stream).await;
            return Ended::Closed;
        }
    }
}

/// Ends a connection whose last response was written whole: a TCP stream sends its FIN at
/// once; a TLS stream also sends its close_notify, unless the client does not take it within
/// [`CLOSE_WAIT`] (a TLS close writes, and a client that reads nothing would hold it forever).
async fn close<S: AsyncWrite + Unpin>(stream: &mut S) {
    let _ = tokio::time::timeout(CLOSE_WAIT, stream.shutdown()).await;
}

/// Whether `read`, of which the first `parsed` bytes were found to be an incomplete head, may
/// now hold a whole one (it has a new empty line): parsing again only then keeps a head sent a
/// byte at a time from costing its length squared.
fn may_end_head(read: &[u8], parsed: usize) -> bool {
    if parsed == 0 {
        return true;
    }
    let new = &read[parsed.saturating_sub(3)..];
    memchr::memmem::find(new, b"\n\r\n").is_some() || memchr::memmem::find(new, b"\n\n").is_some()
}

/// Reads what the socket has into `read`: `Ok(0)` at its end. Through tokio's `AsyncRead`,
/// which takes a read that did not fill the buffer to mean the socket is drained: the next
/// poll waits for readiness instead of trying a read that would block (a system call per
/// request saved, against `try_read_buf`).
fn poll_read<S: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    stream: &mut S,
    read: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    if read.capacity() - read.len() < READ_ROOM {
        read.reserve(FIRST_READ);
    }
    pin!(tokio::io::AsyncReadExt::read_buf(stream, read)).poll(cx)
}

/// While a response is awaited or its body written, looks (as hyper does) whether the client
/// has gone: `true` when it has. Bytes it sends meanwhile (a pipelined request) are kept; once
/// some are, nothing more is read until they are served.
fn poll_client_gone<S: AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    stream: &mut S,
    read: &mut BytesMut,
) -> bool {
    if !read.is_empty() {
        return false;
    }
    matches!(poll_read(cx, stream, read), Poll::Ready(Ok(0) | Err(_)))
}

/// The handler's answer, or `None` if the client went away first (the caller then drops the
/// handler's future, which cancels whatever it was waiting for).
fn answer<'a, S: AsyncRead + Unpin, F: Future<Output = Response<Body>>>(
    stream: &'a mut S,
    read: &'a mut BytesMut,
    mut response: Pin<&'a mut F>,
) -> impl Future<Output = Option<Response<Body>>> + 'a {
    poll_fn(move |cx| {
        if let Poll::Ready(response) = response.as_mut().poll(cx) {
            return Poll::Ready(Some(response));
        }
        if poll_client_gone(cx, stream, read) {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
}

/// What the start of a connection's read buffer holds.
// Returned once per head and taken apart at once: boxing the request would allocate for each.
#[allow(clippy::large_enum_variant)]
pub enum Head {
    /// A request served here, and what it asked of the connection. Its head has been taken
    /// from the buffer.
    Ready(Request<Body>, Asked),
    /// Not a whole head yet.
    Partial,
    /// A request for hyper (see the module's documentation).
    Hyper,
}

/// What a request asked of the connection, in its `Connection` and `TE` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// Close it after the response.
    pub close: bool,
    /// Trailers are welcome (`TE: trailers`).
    pub trailers: bool,
}

/// Parses the request head at the start of `read`, and takes it from there if weir serves it.
/// Otherwise `read` is left as it was, for hyper.
pub fn parse_head(read: &mut BytesMut) -> Head {
    let mut inline = [Span::default(); MAX_HEADERS];
    let (len, method, target, count) = {
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
            &mut request,
            read,
            &mut headers,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Head::Partial,
            Err(_) => return Head::Hyper,
        };
        let (Some(1), Some(method), Some(path)) = (request.version, request.method, request.path)
        else {
            return Head::Hyper;
        };
        if !path.starts_with('/') || path.len() > MAX_URI_LEN {
            return Head::Hyper;
        }
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            return Head::Hyper;
        };
        if method == Method::CONNECT {
            return Head::Hyper;
        }
        let start = path.as_ptr() as usize - read.as_ptr() as usize;
        for (slot, header) in inline.iter_mut().zip(request.headers.iter()) {
            if for_hyper(header.name.as_bytes()) {
                return Head::Hyper;
            }
            *slot = Span::of(read, header);
        }
        (
            len,
            method,
            start..start + path.len(),
            request.headers.len(),
        )
    };
    let head = read.split_to(len).freeze();
    match request_parts(&head, target, &inline[..count]) {
        Some((uri, headers, asked)) => {
            let mut request = Request::new(Body::Empty);
            *request.method_mut() = method;
            *request.uri_mut() = uri;
            *request.headers_mut() = headers;
            Head::Ready(request, asked)
        }
        None => {
            // Rare (hyper answers these with 400): the head goes back in front of the rest.
            let mut whole = BytesMut::with_capacity(head.len() + read.len());
            whole.extend_from_slice(&head);
            whole.extend_from_slice(read);
            *read = whole;
            Head::Hyper
        }
    }
}

/// Whether a header of this name makes the request hyper's: framing of a body, an upgrade or
/// an expectation.
fn for_hyper(name: &[u8]) -> bool {
    let is = |listed: &[u8]| same_name(name, listed);
    match name.len() {
        6 => is(b"expect"),
        7 => is(b"upgrade"),
        14 => is(b"content-length"),
        17 => is(b"transfer-encoding"),
        _ => false,
    }
}

/// The uri and headers of a request head whose target and headers lie at `target` and `spans`
/// in `head`, and what it asked of the connection; `None` if any is not valid.
fn request_parts(
    head: &Bytes,
    target: std::ops::Range<usize>,
    spans: &[Span],
) -> Option<(Uri, HeaderMap, Asked)> {
    let uri = Uri::from_maybe_shared(head.slice(target)).ok()?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    let mut asked = Asked::default();
    for span in spans {
        let name = header_name(span.name(head))?;
        let value = header_value(span, head);
        if name == header::CONNECTION {
            asked.close |= is_close(&value);
        } else if name == header::TE {
            asked.trailers |= lists(&value, "trailers");
        }
        headers.append(name, value);
    }
    Some((uri, headers, asked))
}

/// Whether a `Connection` value says `close`.
fn is_close(value: &HeaderValue) -> bool {
    lists(value, "close")
}

/// Whether a comma-separated value lists `token` (as hyper reads `Connection` and `TE`: a
/// value that is not visible ASCII lists nothing).
fn lists(value: &HeaderValue, token: &str) -> bool {
    value
        .to_str()
        .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Whether a `Transfer-Encoding` value ends in `chunked` (as hyper reads it).
fn ends_chunked(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    })
}

/// What a response body says of its length before it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    /// It has already ended (hyper sends no body at all then).
    Ended,
    /// Exactly this many bytes.
    Known(u64),
    /// Unknown.
    Unknown,
}

/// How a response body is framed on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Encoder {
    /// This many bytes; more are not sent.
    Length(u64),
    /// Chunked, with the trailer fields the `Trailer` header declared.
    Chunked(Option<Vec<HeaderName>>),
    /// Until the connection closes.
    Close,
}

/// A response head written out.
#[derive(Debug)]
struct Encoded {
    encoder: Encoder,
    /// The connection closes after the response.
    last: bool,
}

/// A head that cannot be written: its `Content-Length` disagrees with itself, or with its
/// `Transfer-Encoding` (hyper drops the connection for these).
#[derive(Debug)]
struct BadHead;

/// Writes `head` into `out` as hyper's server does, for a request with `method`: the status
/// line, the headers (those of one name that hyper joins into one line, joined), framing for
/// `length`, and `Date` when missing. Without `keep_alive`, `Connection: close` is added.
fn encode_head(
    head: &mut http::response::Parts,
    method: &Method,
    mut length: Length,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Encoded, BadHead> {
    let mut last = !keep_alive;
    if last
        && !head
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .any(is_close)
    {
        head.headers
            .append(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        // Written as it is; the connection then closes (weir serves no upgrade here).
        last = true;
    } else if head.status.is_informational() {
        // Another 1xx cannot be the response: hyper answers a bare 500 and closes.
        *head = Response::new(()).into_parts().0;
        head.status = StatusCode::INTERNAL_SERVER_ERROR;
        length = Length::Ended;
        last = true;
    }
    let http10 = head.version == Version::HTTP_10;
    let reason = head.extensions.get::<hyper::ext::ReasonPhrase>();
    if !http10 && head.status == StatusCode::OK && reason.is_none() {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(if http10 { b"HTTP/1.0 " } else { b"HTTP/1.1 " });
        out.extend_from_slice(head.status.as_str().as_bytes());
        out.push(b' ');
        match reason {
            Some(reason) => out.extend_from_slice(reason.as_bytes()),
            None => out.extend_from_slice(
                head.status
                    .canonical_reason()
                    .unwrap_or("<none>")
                    .as_bytes(),
            ),
        }
        out.extend_from_slice(b"\r\n");
    }

    let can_chunk = !http10 && can_have_body(method, head.status);
    let mut encoder = Encoder::Length(0);
    let mut wrote_length = false;
    let mut wrote_date = false;
    let mut trailers: Option<Vec<HeaderName>> = None;
    let mut first_length = None;
    // A header line of several values being written (joined with ", "), and whether
    // `chunked` must end it.
    let mut open = false;
    let mut add_chunked = false;
    let mut previous: Option<&HeaderName> = None;
    for (name, value) in &head.headers {
        if previous != Some(name) {
            end_line(out, &mut open, add_chunked);
            previous = Some(name);
        }
        match *name {
            header::CONTENT_LENGTH => {
                if wrote_length && !open {
                    return Err(BadHead);
                }
                match length {
                    Length::Known(known) => {
                        if !open {
                            encoder = Encoder::Length(known);
                            start_line(out, "content-length: ", value);
                            wrote_length = true;
                            open = true;
                        }
                        continue;
                    }
                    Length::Unknown => {
                        let declared = content_length(value).ok_or(BadHead)?;
                        match first_length {
                            Some(first) if first != declared => return Err(BadHead),
                            Some(_) => {}
                            None => {
                                encoder = Encoder::Length(declared);
                                start_line(out, "content-length: ", value);
                                wrote_length = true;
                                open = true;
                                first_length = Some(declared);
                            }
                        }
                        continue;
                    }
                    // No body: kept for a HEAD request only (it says what a GET would get).
                    Length::Ended if *method != Method::HEAD => continue,
                    Length::Ended => wrote_length = true,
                }
            }
            header::TRANSFER_ENCODING => {
                if wrote_length && !open {
                    return Err(BadHead);
                }
                if !can_chunk {
                    continue;
                }
                wrote_length = true;
                add_chunked = !ends_chunked(value);
                if open {
                    continue_line(out, value);
                } else {
                    encoder = Encoder::Chunked(None);
                    start_line(out, "transfer-encoding: ", value);
                    open = true;
                }
                continue;
            }
            header::CONNECTION => {
                last |= is_close(value);
                if open {
                    continue_line(out, value);
                } else {
                    start_line(out, "connection: ", value);
                    open = true;
                }
                continue;
            }
            header::DATE => wrote_date = true,
            header::TRAILER => {
                if !can_chunk {
                    continue;
                }
                if open {
                    continue_line(out, value);
                } else {
                    start_line(out, "trailer: ", value);
                    open = true;
                }
                if let Ok(listed) = value.to_str() {
                    let names = listed
                        .split(',')
                        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok());
                    trailers.get_or_insert_with(Vec::new).extend(names);
                }
                continue;
            }
            _ => {}
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    end_line(out, &mut open, add_chunked);

    if !wrote_length {
        encoder = match length {
            Length::Unknown if can_chunk => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                Encoder::Chunked(None)
            }
            Length::Unknown if can_have_body(method, head.status) => Encoder::Close,
            Length::Unknown => Encoder::Length(0),
            Length::Ended | Length::Known(0) => {
                if can_have_length(head.status) && *method != Method::HEAD {
                    out.extend_from_slice(b"content-length: 0\r\n");
                }
                Encoder::Length(0)
            }
            Length::Known(known) => {
                if can_have_length(head.status) {
                    out.extend_from_slice(b"content-length: ");
                    let _ = write!(out, "{known}\r\n");
                    Encoder::Length(known)
                } else {
                    Encoder::Length(0)
                }
            }
        };
    }
    if !can_have_body(method, head.status) {
        encoder = Encoder::Length(0);
    }
    if !wrote_date {
        out.extend_from_slice(b"date: ");
        date::extend(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if let (Encoder::Chunked(allowed), Some(declared)) = (&mut encoder, trailers) {
        *allowed = Some(declared);
    }
    last |= encoder == Encoder::Close;
    Ok(Encoded { encoder, last })
}

fn start_line(out: &mut Vec<u8>, name: &str, value: &HeaderValue) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(value.as_bytes());
}

fn continue_line(out: &mut Vec<u8>, value: &HeaderValue) {
    out.extend_from_slice(b", ");
    out.extend_from_slice(value.as_bytes());
}

fn end_line(out: &mut Vec<u8>, open: &mut bool, add_chunked: bool) {
    if std::mem::take(open) {
        out.extend_from_slice(if add_chunked {
            b", chunked\r\n"
        } else {
            b"\r\n"
        });
    }
}

/// Whether a response to `method` with `status` has a body (not for HEAD, 1xx, 204, 304).
fn can_have_body(method: &Method, status: StatusCode) -> bool {
    *method != Method::HEAD && can_have_length(status)
}

/// Whether a response with `status` may say `Content-Length` (not 1xx, 204, 304).
fn can_have_length(status: StatusCode) -> bool {
    !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
}

/// A `Content-Length` value a response head gives for a body of unknown length: digits only
/// (as hyper's server reads it; stricter than what weir accepts from upstreams).
fn content_length(value: &HeaderValue) -> Option<u64> {
    let digits = value.as_bytes();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// What writing a body waits for next.
enum Step {
    /// The body's next frame (or its end).
    Frame(Option<Result<Frame<Bytes>, BoxError>>),
    /// The body has nothing yet: what is buffered goes out first.
    Flush,
    /// The client went away.
    Gone,
}

/// A response being written on a connection.
struct Writing<'a, S> {
    stream: &'a mut S,
    /// Bytes of the next request read meanwhile.
    read: &'a mut BytesMut,
    /// The head and what is buffered of the body.
    out: &'a mut Vec<u8>,
    head_timer: &'a mut HeadTimer,
    wait: Option<&'a HeadWait>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Writing<'_, S> {
    /// Writes the head in `out`, then `body` framed by `encoder`. Whether the response was
    /// written whole (the connection may serve another).
    async fn body(mut self, encoder: Encoder, body: TimedBody) -> bool {
        if encoder == Encoder::Length(0) {
            // Nothing of the body is sent, or read (hyper drops it unread as well).
            drop(body);
            return self.send(&[], None).await;
        }
        let mut left = match encoder {
            Encoder::Length(n) => n,
            _ => 0,
        };
        // Dropped (and with it the request's mark on the connection) once its end is taken,
        // before the last bytes are written: from then on, as with hyper, the read timeout
        // counts for a client that does not read them.
        let mut body = pin!(Some(body));
        loop {
            let step = poll_fn(|cx| {
                let Some(frame) = body.as_mut().as_pin_mut().map(|b| b.poll_frame(cx)) else {
                    return Poll::Ready(Step::Frame(None));
                };
                if let Poll::Ready(frame) = frame {
                    return Poll::Ready(Step::Frame(frame));
                }
                if !self.out.is_empty() {
                    return Poll::Ready(Step::Flush);
                }
                if poll_client_gone(cx, self.stream, self.read) {
                    return Poll::Ready(Step::Gone);
                }
                Poll::Pending
            })
            .await;
            let frame = match step {
                Step::Flush => {
                    if !self.send(&[], body.as_mut().as_pin_mut()).await {
                        return false;
                    }
                    continue;
                }
                Step::Gone => return false,
                Step::Frame(Some(Err(e))) => {
                    tracing::debug!(error = %e, "response body failed; connection closed");
                    return false;
                }
                Step::Frame(None) => {
                    body.set(None);
                    if left > 0 {
                        // Shorter than its length, found at a later poll: as hyper, nothing
                        // more is sent, and the connection closes.
                        return false;
                    }
                    return self.end(&encoder).await;
                }
                Step::Frame(Some(Ok(frame))) => frame,
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    // Trailers end the body, written or not (as hyper).
                    body.set(None);
                    if let (Encoder::Chunked(Some(allowed)), Ok(fields)) =
                        (&encoder, frame.into_trailers())
                    {
                        if write_trailers(self.out, allowed, &fields) {
                            return self.send(&[], None).await;
                        }
                    }
                    if left > 0 {
                        return false;
                    }
                    return self.end(&encoder).await;
                }
            };
            let data = match &encoder {
                Encoder::Length(_) => {
                    let take = left.min(data.len() as u64) as usize;
                    left -= take as u64;
                    data.slice(..take)
                }
                Encoder::Chunked(_) if data.is_empty() => continue,
                Encoder::Chunked(_) => {
                    let _ = write!(self.out, "{:X}\r\n", data.len());
                    data
                }
                Encoder::Close => data,
            };
            // The last frame (all that was announced, or the body says it has ended): the
            // body goes now, before its bytes are written.
            let last = (matches!(encoder, Encoder::Length(_)) && left == 0)
                || body.as_ref().as_pin_ref().is_none_or(|b| b.is_end_stream());
            if last {
                body.set(None);
            }
            let sent = if data.len() < COPY_UNDER {
                self.out.extend_from_slice(&data);
                true
            } else {
                self.send(&data, body.as_mut().as_pin_mut()).await
            };
            if matches!(encoder, Encoder::Chunked(_)) {
                self.out.extend_from_slice(b"\r\n");
            }
            if !sent {
                return false;
            }
            if last {
                if left > 0 {
                    // Shorter than its length: sent as far as it goes, then the close (as
                    // hyper does when the body says so with its last frame).
                    let _ = self.send(&[], None).await;
                    return false;
                }
                return self.end(&encoder).await;
            }
            if self.out.len() >= COPY_UNDER && !self.send(&[], body.as_mut().as_pin_mut()).await {
                return false;
            }
        }
    }

    /// Ends a body whose last frame has been taken, whole: the last chunk of a chunked one,
    /// and what is buffered written out.
    async fn end(&mut self, encoder: &Encoder) -> bool {
        if matches!(encoder, Encoder::Chunked(_)) {
            self.out.extend_from_slice(b"0\r\n\r\n");
        }
        self.send(&[], None).await
    }

    /// Writes `out`, then `data`, whole, and empties `out`: whether it was written. While the
    /// body is still being written (`body`), its write deadline cuts it off here too (hyper
    /// keeps polling a body, and so its deadline, while it buffers up to ~400 KiB); once the
    /// body is done with, a client that stops reading is closed by the read timeout (as
    /// hyper's connection is).
    async fn send(&mut self, data: &[u8], mut body: Option<Pin<&mut TimedBody>>) -> bool {
        let Writing {
            stream,
            out,
            head_timer,
            wait,
            ..
        } = self;
        let mut written = pin!(write_all(stream, out, data));
        poll_fn(|cx| {
            if let Poll::Ready(result) = written.as_mut().poll(cx) {
                return Poll::Ready(result.is_ok());
            }
            if let Some(body) = &mut body {
                if body.as_mut().poll_deadline(cx) {
                    tracing::debug!("the response was not written within server.write-timeout");
                    return Poll::Ready(false);
                }
            }
            if let Some(wait) = wait {
                if head_timer.poll_timed_out(cx, wait) {
                    tracing::debug!("a response not read within server.read-timeout after its end");
                    return Poll::Ready(false);
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Writes `out`, then `data`, whole, and flushes them (a TLS stream may hold written bytes
/// until flushed; a TCP stream's flush does nothing); `out` is left empty.
async fn write_all<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Vec<u8>,
    data: &[u8],
) -> io::Result<()> {
    if data.is_empty() {
        let written = stream.write_all(out).await;
        out.clear();
        written?;
        return stream.flush().await;
    }
    let (mut from_out, mut from_data) = (0, 0);
    while from_out < out.len() || from_data < data.len() {
        let slices = [
            IoSlice::new(&out[from_out..]),
            IoSlice::new(&data[from_data..]),
        ];
        let n = stream.write_vectored(&slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let of_out = n.min(out.len() - from_out);
        from_out += of_out;
        from_data += n - of_out;
    }
    out.clear();
    stream.flush().await
}

/// Writes the end of a chunked body with the trailer fields `allowed` lets through (as hyper:
/// declared in `Trailer`, and not one of the fields a trailer may not carry). False when none
/// are left (the body then ends without them).
fn write_trailers(out: &mut Vec<u8>, allowed: &[HeaderName], fields: &HeaderMap) -> bool {
    let start = out.len();
    out.extend_from_slice(b"0\r\n");
    let mut any = false;
    for (name, value) in fields {
        if allowed.contains(name) && valid_trailer(name) {
            any = true;
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    if !any {
        out.truncate(start);
        return false;
    }
    out.extend_from_slice(b"\r\n");
    true
}

/// Whether a field may be sent as a trailer.
fn valid_trailer(name: &HeaderName) -> bool {
    !matches!(
        *name,
        header::AUTHORIZATION
            | header::CACHE_CONTROL
            | header::CONTENT_ENCODING
            | header::CONTENT_LENGTH
            | header::CONTENT_RANGE
            | header::CONTENT_TYPE
            | header::HOST
            | header::MAX_FORWARDS
            | header::SET_COOKIE
            | header::TRAILER
            | header::TRANSFER_ENCODING
            | header::TE
    )
}

#[cfg(test)]
mod tests;
