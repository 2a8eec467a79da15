//! What hyper does not tell weir: how a request's framing headers were written on the wire.
//!
//! Before any service sees an HTTP/1 head, hyper resolves `Content-Length` sent together with
//! `Transfer-Encoding` (it drops the length and reads the body as chunked) and merges repeated
//! equal `Content-Length` lines into one. Both are classic request-smuggling material, and
//! weir answers both with 400 (README, "Security"). [`Watched`] wraps a client connection and
//! reads the bytes hyper reads, as hyper reads them: it finds where each request head starts
//! and ends (skipping bodies by their `Content-Length` or their chunks), counts the framing
//! lines of each head, and records the first head whose framing is ambiguous in a
//! [`FramingLog`] that the connection's requests look at.
//!
//! The scan is cheap: `memchr` to each line end, and the first bytes of each head line looked
//! at; a body is skipped without looking at its bytes, except for the size lines of chunks.
//! It stops for good on an HTTP/2 connection, at the first ambiguous head (the connection is
//! closed after its answer), and on anything it cannot follow (which hyper rejects anyway).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Why a head's framing is ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// `Content-Length` and `Transfer-Encoding` both.
    LengthAndEncoding,
    /// `Content-Length` more than once (with equal values: hyper rejects different ones).
    RepeatedLength,
}

/// What the scan found on one connection, for its requests to look up in order.
#[derive(Debug, Default)]
pub struct FramingLog {
    /// The 1-based index of the first head with ambiguous framing; 0 for none.
    suspect: AtomicU64,
    /// Its [`Ambiguity`], as 1 or 2.
    kind: AtomicU8,
    /// Requests handed to the service so far.
    served: AtomicU64,
    /// The connection opened with HTTP/2's preface (prior knowledge).
    http2: AtomicBool,
}

impl FramingLog {
    /// Called once per request, in order (HTTP/1 requests on a connection are sequential):
    /// whether that request's head was ambiguous.
    pub fn next_request(&self) -> Option<Ambiguity> {
        let index = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if self.suspect.load(Ordering::Acquire) != index {
            return None;
        }
        match self.kind.load(Ordering::Relaxed) {
            1 => Some(Ambiguity::LengthAndEncoding),
            _ => Some(Ambiguity::RepeatedLength),
        }
    }

    /// Whether the connection opened with HTTP/2's preface: it has no HTTP/1 heads to time.
    pub fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    fn record(&self, index: u64, ambiguity: Ambiguity) {
        let kind = match ambiguity {
            Ambiguity::LengthAndEncoding => 1,
            Ambiguity::RepeatedLength => 2,
        };
        self.kind.store(kind, Ordering::Relaxed);
        self.suspect.store(index, Ordering::Release);
    }
}

/// Which lines a line start begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineOf {
    /// The request line (or an empty line before it).
    Request,
    /// A header line, or the empty line that ends the head.
    Header,
    /// A trailer line after the last chunk, or the empty line that ends them.
    Trailer,
}

/// Where the scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Gathering the first bytes of a line into the stash.
    LineStart(LineOf),
    /// In a line whose rest does not matter, up to its `\n`.
    SkipLine(LineOf),
    /// In a `Content-Length` value.
    Length(LengthValue),
    /// In a body of known length: this many bytes left.
    Body(u64),
    /// In a chunk-size line (`size[;ext]\r\n`).
    ChunkSize { size: u64, digits: bool, ext: bool },
    /// In a chunk's data: this many bytes left.
    ChunkData(u64),
    /// At the CRLF after a chunk's data.
    ChunkEnd,
    /// Stopped for good.
    Off,
}

/// A `Content-Length` value being read: optional whitespace, digits, optional whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LengthValue {
    value: u64,
    digits: bool,
    after: bool,
}

/// The longest header name prefix that matters: `transfer-encoding:`.
const STASH: usize = 18;

/// The scanner of one connection's bytes.
#[derive(Debug)]
struct Scanner {
    state: State,
    stash: [u8; STASH],
    stashed: usize,
    /// Heads begun so far (the current one included).
    heads: u64,
    /// `Content-Length` and `Transfer-Encoding` lines in the current head.
    lengths: u32,
    encodings: u32,
    /// The current head's `Content-Length`.
    length: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            state: State::LineStart(LineOf::Request),
            stash: [0; STASH],
            stashed: 0,
            heads: 0,
            lengths: 0,
            encodings: 0,
            length: 0,
        }
    }
}

impl Scanner {
    /// Scans the next bytes read from the connection.
    fn scan(&mut self, mut buf: &[u8], log: &FramingLog) {
        while !buf.is_empty() {
            match self.state {
                State::Off => return,
                State::LineStart(line) => {
                    // The line's first bytes, up to STASH or its end, even across reads.
                    let room = (STASH - self.stashed).min(buf.len());
                    let take = memchr::memchr(b'\n', &buf[..room]).map_or(room, |i| i + 1);
                    self.stash[self.stashed..self.stashed + take].copy_from_slice(&buf[..take]);
                    self.stashed += take;
                    buf = &buf[take..];
                    let ended = self.stash[self.stashed - 1] == b'\n';
                    if !ended && self.stashed < STASH {
                        return; // the rest of the line's start is still to come
                    }
                    let len = std::mem::take(&mut self.stashed);
                    let start = self.stash;
                    self.line_start(line, &start[..len], ended, log);
                }
                State::SkipLine(next) => match memchr::memchr(b'\n', buf) {
                    Some(i) => {
                        buf = &buf[i + 1..];
                        self.state = State::LineStart(next);
                    }
                    None => return,
                },
                State::Body(left) | State::ChunkData(left) => {
                    let n = left.min(buf.len() as u64);
                    buf = &buf[n as usize..];
                    self.state = match (self.state, left - n) {
                        (State::Body(_), 0) => State::LineStart(LineOf::Request),
                        (State::Body(_), left) => State::Body(left),
                        (_, 0) => State::ChunkEnd,
                        (_, left) => State::ChunkData(left),
                    };
                }
                State::Length(_) | State::ChunkSize { .. } | State::ChunkEnd => {
                    let b = buf[0];
                    buf = &buf[1..];
                    self.byte(b);
                }
            }
        }
    }

    /// Decides what a line is from its first bytes (all of it when `ended`).
    fn line_start(&mut self, line: LineOf, start: &[u8], ended: bool, log: &FramingLog) {
        let empty = start == b"\n" || start == b"\r\n";
        let rest = |line| {
            if ended {
                State::LineStart(line)
            } else {
                State::SkipLine(line)
            }
        };
        match line {
            // Empty lines before a request line are allowed and skipped.
            LineOf::Request if empty => self.state = State::LineStart(LineOf::Request),
            LineOf::Request => {
                self.heads += 1;
                (self.lengths, self.encodings, self.length) = (0, 0, 0);
                self.state = if self.heads == 1 && start.starts_with(b"PRI * HTTP/2") {
                    // HTTP/2 with prior knowledge: hyper parses its frames itself.
                    log.http2.store(true, Ordering::Relaxed);
                    State::Off
                } else {
                    rest(LineOf::Header)
                };
            }
            LineOf::Header if empty => self.end_of_head(log),
            LineOf::Header if starts_with_ignore_case(start, b"content-length:") => {
                self.lengths += 1;
                self.state = State::Length(LengthValue {
                    value: 0,
                    digits: false,
                    after: false,
                });
                for &b in &start[b"content-length:".len()..] {
                    self.byte(b);
                }
            }
            LineOf::Header => {
                if starts_with_ignore_case(start, b"transfer-encoding:") {
                    self.encodings += 1;
                }
                self.state = rest(LineOf::Header);
            }
            LineOf::Trailer if empty => self.state = State::LineStart(LineOf::Request),
            LineOf::Trailer => self.state = rest(LineOf::Trailer),
        }
    }

    /// One byte of a `Content-Length` value, a chunk-size line or a chunk's CRLF. Anything
    /// hyper would reject stops the scan: the connection ends there anyway.
    fn byte(&mut self, b: u8) {
        self.state = match (self.state, b) {
            (State::Length(v), b'\n') if v.digits => {
                if self.lengths > 1 && self.length != v.value {
                    State::Off // different lengths: hyper answers 400 itself
                } else {
                    self.length = v.value;
                    State::LineStart(LineOf::Header)
                }
            }
            (State::Length(v), b' ' | b'\t' | b'\r') => State::Length(LengthValue {
                after: v.digits,
                ..v
            }),
            (State::Length(v), b'0'..=b'9') if !v.after => {
                match v
                    .value
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(b - b'0')))
                {
                    Some(value) => State::Length(LengthValue {
                        value,
                        digits: true,
                        after: false,
                    }),
                    None => State::Off,
                }
            }
            (State::ChunkSize { size, digits, .. }, b'\n') => match (digits, size) {
                (false, _) => State::Off,
                (true, 0) => State::LineStart(LineOf::Trailer),
                (true, size) => State::ChunkData(size),
            },
            (
                State::ChunkSize {
                    size, ext: false, ..
                },
                _,
            ) if b.is_ascii_hexdigit() => {
                let digit = (b as char).to_digit(16).unwrap_or(0);
                match size
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(u64::from(digit)))
                {
                    Some(size) => State::ChunkSize {
                        size,
                        digits: true,
                        ext: false,
                    },
                    None => State::Off,
                }
            }
            // An extension, or whitespace or CR after the size: up to the `\n`.
            (State::ChunkSize { size, digits, .. }, b';' | b' ' | b'\t' | b'\r') => {
                State::ChunkSize {
                    size,
                    digits,
                    ext: true,
                }
            }
            (State::ChunkSize { ext: true, .. }, _) => self.state,
            (State::ChunkEnd, b'\r') => State::ChunkEnd,
            (State::ChunkEnd, b'\n') => State::ChunkSize {
                size: 0,
                digits: false,
                ext: false,
            },
            _ => State::Off,
        };
    }

    fn end_of_head(&mut self, log: &FramingLog) {
        let ambiguity = if self.encodings > 0 && self.lengths > 0 {
            Some(Ambiguity::LengthAndEncoding)
        } else if self.lengths > 1 {
            Some(Ambiguity::RepeatedLength)
        } else {
            None
        };
        self.state = match ambiguity {
            Some(ambiguity) => {
                log.record(self.heads, ambiguity);
                State::Off
            }
            None if self.encodings > 0 => State::ChunkSize {
                size: 0,
                digits: false,
                ext: false,
            },
            None if self.length > 0 => State::Body(self.length),
            None => State::LineStart(LineOf::Request),
        };
    }
}

/// Scans `reads` as the successive reads of one connection and returns what the log says of
/// its first `n` requests, as [`FramingLog::next_request`] would. For tests and fuzzing.
pub fn scan_reads<'a>(
    reads: impl IntoIterator<Item = &'a [u8]>,
    n: usize,
) -> Vec<Option<Ambiguity>> {
    let log = FramingLog::default();
    let mut scanner = Scanner::default();
    for read in reads {
        scanner.scan(read, &log);
    }
    (0..n).map(|_| log.next_request()).collect()
}

fn starts_with_ignore_case(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A client connection whose bytes are scanned as hyper reads them.
#[derive(Debug)]
pub struct Watched<T> {
    inner: T,
    scanner: Scanner,
    log: std::sync::Arc<FramingLog>,
}

impl<T> Watched<T> {
    /// Watches `inner`, recording in `log`.
    pub fn new(inner: T, log: std::sync::Arc<FramingLog>) -> Self {
        Self {
            inner,
            scanner: Scanner::default(),
            log,
        }
    }
}

/// The most one read takes from the socket. The bytes pass through this buffer on the stack
/// on their way to hyper's: reading into hyper's uninitialised buffer directly would take
/// `unsafe` (weir's only uses are the allocator and `proxy::http1::head::header_value`).
const READ_CHUNK: usize = 16 * 1024;

impl<T: AsyncRead + Unpin> hyper::rt::Read for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let room = buf.remaining().min(READ_CHUNK);
        let mut read = ReadBuf::uninit(&mut chunk[..room]);
        match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                this.scanner.scan(read.filled(), &this.log);
                buf.put_slice(read.filled());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scans `wire` cut into pieces of `step` bytes; returns what the log says of requests
    /// 1..=n.
    fn verdicts(wire: &str, step: usize, n: usize) -> Vec<Option<Ambiguity>> {
        scan_reads(wire.as_bytes().chunks(step), n)
    }

    const CLEAN: &str = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n\
        POST /b HTTP/1.1\r\nHost: x\r\ncontent-length: 5\r\n\r\nhello\
        POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nCont\n\r\n0\r\nX-Trailer: 1\r\n\r\n\
        \r\nGET /d HTTP/1.1\nHost: x\nContent-Length:0\n\n";

    #[test]
    fn clean_requests_are_followed_through_bodies_and_chunks() {
        for step in [1, 2, 3, 7, 18, 19, 64, 4096] {
            let mut wire = CLEAN.to_string();
            // A fifth request, ambiguous: proves the scan kept its place through the others.
            wire.push_str("POST /e HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
            let got = verdicts(&wire, step, 5);
            assert_eq!(
                got,
                [None, None, None, None, Some(Ambiguity::LengthAndEncoding)],
                "pieces of {step} bytes"
            );
        }
    }

    #[test]
    fn ambiguous_framing_is_found_in_either_order_and_case() {
        for (wire, expected) in [
            (
                "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Ambiguity::LengthAndEncoding,
            ),
            (
                "POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\ncontent-LENGTH: 3\r\n\r\n",
                Ambiguity::LengthAndEncoding,
            ),
            (
                "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length:3\r\n\r\nabc",
                Ambiguity::RepeatedLength,
            ),
            (
                "POST / HTTP/1.1\nContent-Length: 3\nContent-Length: 3  \n\nabc",
                Ambiguity::RepeatedLength,
            ),
        ] {
            for step in [1, 5, 4096] {
                assert_eq!(
                    verdicts(wire, step, 1),
                    [Some(expected)],
                    "{wire:?} in pieces of {step}"
                );
            }
        }
    }

    #[test]
    fn the_scan_stops_where_hyper_rejects_or_http2_starts() {
        // Different lengths (hyper's 400), a bad chunk size, HTTP/2: nothing is recorded, and
        // what follows is not read as a request.
        for wire in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let wire =
                format!("{wire}POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx");
            assert_eq!(verdicts(&wire, 3, 2), [None, None], "{wire:?}");
        }
    }

    #[test]
    fn the_http2_preface_marks_the_connection() {
        for (wire, http2) in [
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true),
            (
                "GET / HTTP/1.1\r\nHost: x\r\n\r\nPRI * HTTP/2.0\r\n\r\n",
                false,
            ),
        ] {
            let log = FramingLog::default();
            let mut scanner = Scanner::default();
            for read in wire.as_bytes().chunks(4) {
                scanner.scan(read, &log);
            }
            assert_eq!(log.is_http2(), http2, "{wire:?}");
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_skipped() {
        let body = "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let wire = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /y HTTP/1.1\r\n\r\n",
            body.len()
        );
        assert_eq!(verdicts(&wire, 10, 2), [None, None]);
    }
}
