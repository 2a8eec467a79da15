//! weir's own HTTP/1.1 client connection, for the common case: a request without a body to a
//! plain `http://` upstream. It writes the head itself, parses the response head with
//! `httparse` and frames the body itself, in the task of the request that holds it: no
//! channel, callback or dispatcher between the request and the socket. Requests with a body,
//! and `https://` upstreams, go through hyper's client connection (see `client.rs`).
//!
//! What it refuses, as hyper's client does or more strictly: a response head over
//! [`head::MAX_HEAD`] bytes or [`head::MAX_HEADERS`] headers, a malformed head or chunk, a 101
//! (weir never asks to upgrade), and a response framed both by `Content-Length` and
//! `Transfer-Encoding`, or by unequal lengths (how responses are smuggled). A connection is
//! reused only when the response was read exactly to its end and the upstream keeps it open.

pub mod decode;
pub mod head;

use std::future::Future;
use std::io;
use std::task::{ready, Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::Method;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use decode::{Decoded, Decoder};
use head::{Framing, ResponseHead};

/// The first read buffer; reads that fill it double it, up to [`MAX_READ`].
const FIRST_READ: usize = 8 * 1024;
/// The largest read buffer (for large bodies).
const MAX_READ: usize = 256 * 1024;
/// Below this much room, the buffer is grown before reading.
const MIN_ROOM: usize = 1024;

/// What went wrong with an upstream exchange on an HTTP/1 connection.
#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    /// Writing the request failed.
    #[error("writing the request failed")]
    Write(#[source] io::Error),
    /// Reading the response failed.
    #[error("reading the response failed")]
    Read(#[source] io::Error),
    /// The upstream closed the connection before its response head was complete.
    #[error("the upstream closed the connection before a complete response head")]
    Closed,
    /// The response head is not HTTP/1.x.
    #[error("malformed response head")]
    Parse(#[source] httparse::Error),
    /// A status outside 100-999.
    #[error("invalid response status {0}")]
    Status(u16),
    /// A header name the http crate refuses.
    #[error("invalid header name in the response")]
    HeaderName,
    /// A `Content-Length` that is not a number, or lengths that differ.
    #[error("invalid or conflicting Content-Length in the response")]
    ContentLength,
    /// `Transfer-Encoding` with `Content-Length`, or in an HTTP/1.0 response.
    #[error("the response is framed by both Transfer-Encoding and Content-Length, or by Transfer-Encoding in HTTP/1.0")]
    AmbiguousFraming,
    /// The head is longer than weir reads.
    #[error("the response head is longer than {} bytes", head::MAX_HEAD)]
    HeadTooLarge,
    /// A 101 Switching Protocols to a request that asked for no upgrade.
    #[error("the upstream switched protocols unasked")]
    UnexpectedUpgrade,
    /// A chunk size line or the CRLF after a chunk is malformed.
    #[error("malformed chunk in the response body")]
    ChunkSize,
    /// Chunk extensions longer than weir reads.
    #[error("too many chunk extensions in the response body")]
    ChunkExtensions,
    /// A malformed or overlong trailer section.
    #[error("malformed or overlong trailers in the response body")]
    Trailers,
    /// The connection ended before the body did.
    #[error("the upstream closed the connection before the end of the response body")]
    BodyCutShort,
}

impl Http1Error {
    /// Whether the upstream answered, with something that is not a valid, unambiguous
    /// HTTP/1 response.
    pub fn is_malformed(&self) -> bool {
        !matches!(
            self,
            Http1Error::Write(_)
                | Http1Error::Read(_)
                | Http1Error::Closed
                | Http1Error::BodyCutShort
        )
    }
}

/// A request that failed, and whether sending it again on another connection is safe.
#[derive(Debug)]
pub struct Failed {
    /// What went wrong.
    pub error: Http1Error,
    /// Nothing of a response came back, and either the request was not completely written or
    /// its method is idempotent: the upstream cannot have acted on it, or may do so twice.
    pub retry_safe: bool,
}

/// An HTTP/1.1 connection to an upstream.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet taken.
    buf: BytesMut,
    read_size: usize,
    /// The body of the response being read.
    decoder: Decoder,
    keep_alive: bool,
}

impl Connection {
    /// A connection over `stream`, connected to the upstream.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            read_size: FIRST_READ,
            decoder: Decoder::new(Framing::Empty),
            keep_alive: true,
        }
    }

    /// Sends the request whose head is `head` (made by [`head::write_request`]) and reads the
    /// response head. The body is then read with [`Connection::poll_frame`].
    pub async fn send(&mut self, head: &[u8], method: &Method) -> Result<ResponseHead, Failed> {
        let idempotent = method.is_idempotent();
        if let Err(e) = self.stream.write_all(head).await {
            return Err(Failed {
                error: Http1Error::Write(e),
                retry_safe: true,
            });
        }
        let mut received = false;
        let mut taken = 0;
        loop {
            match head::parse_response(&mut self.buf, method, &mut taken) {
                Ok(Some(head)) => {
                    self.decoder = Decoder::new(head.framing);
                    self.keep_alive = head.keep_alive;
                    return Ok(head);
                }
                Ok(None) => {}
                Err(error) => {
                    self.keep_alive = false;
                    return Err(Failed {
                        error,
                        retry_safe: false,
                    });
                }
            }
            let read = std::future::poll_fn(|cx| self.poll_read(cx)).await;
            let error = match read {
                Ok(0) => Http1Error::Closed,
                Ok(_) => {
                    received = true;
                    continue;
                }
                Err(e) => Http1Error::Read(e),
            };
            self.keep_alive = false;
            return Err(Failed {
                error,
                retry_safe: !received && idempotent,
            });
        }
    }

    /// The next frame of the response body, reading the socket as needed.
    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Http1Error>>> {
        loop {
            let frame = match self.decoder.decode(&mut self.buf) {
                Ok(Decoded::Data(data)) => Ok(Some(Frame::data(data))),
                Ok(Decoded::Trailers(trailers)) => Ok(Some(Frame::trailers(trailers))),
                Ok(Decoded::End) => Ok(None),
                Ok(Decoded::More) => match ready!(self.poll_read(cx)) {
                    Ok(0) => self.decoder.eof().map(|()| None),
                    Ok(_) => continue,
                    Err(e) => Err(Http1Error::Read(e)),
                },
                Err(e) => Err(e),
            };
            return Poll::Ready(match frame {
                Ok(frame) => frame.map(Ok),
                Err(e) => {
                    self.keep_alive = false;
                    Some(Err(e))
                }
            });
        }
    }

    /// Whether the response body has been read to its end.
    pub fn is_end_stream(&self) -> bool {
        self.decoder.is_end()
    }

    /// What is known of the rest of the response body.
    pub fn size_hint(&self) -> SizeHint {
        self.decoder.size_hint()
    }

    /// Whether the connection can carry another request: the response was read exactly to
    /// its end, and the upstream keeps the connection open.
    pub fn reusable(&self) -> bool {
        self.keep_alive && self.decoder.is_end() && self.buf.is_empty()
    }

    /// Readies a reusable connection to wait in a pool: a large read buffer is let go.
    pub fn rest(&mut self) {
        if self.buf.capacity() > 2 * FIRST_READ {
            self.buf = BytesMut::new();
        }
        self.read_size = FIRST_READ;
    }

    /// Whether this idle connection can take a request now: the upstream has neither closed
    /// it nor sent anything. Looks at the socket only when it was signalled readable.
    pub fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Reads what the socket has into the buffer. `Ok(0)` at the connection's end.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < MIN_ROOM {
            self.buf.reserve(self.read_size);
        }
        let room = self.buf.capacity() - self.buf.len();
        // `read_buf` keeps no state between polls: a future made for one poll is enough.
        let n = ready!(std::pin::pin!(self.stream.read_buf(&mut self.buf)).poll(cx))?;
        if n == room && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }
}

/// What [`read_response`] made of a response.
#[derive(Debug, PartialEq)]
pub struct ReadOutcome {
    /// The status, once the head was complete.
    pub status: Option<u16>,
    /// The headers, in order, as text.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body's bytes.
    pub body: Vec<u8>,
    /// The trailer fields.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// How it ended: the body complete (`Ok`, with the connection then reusable or not), or
    /// the error.
    pub end: Result<bool, String>,
}

/// Reads the response to a `method` request from `reads`, the successive reads of one
/// connection whose end follows the last, as [`Connection`] does. For tests and fuzzing.
pub fn read_response<'a>(
    reads: impl IntoIterator<Item = &'a [u8]>,
    method: &Method,
) -> ReadOutcome {
    fn fields(map: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
        map.iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect()
    }
    let mut reads = reads.into_iter();
    let mut buf = BytesMut::new();
    let mut outcome = ReadOutcome {
        status: None,
        headers: Vec::new(),
        body: Vec::new(),
        trailers: Vec::new(),
        end: Err(Http1Error::Closed.to_string()),
    };
    let mut taken = 0;
    let (mut decoder, keep_alive) = loop {
        match head::parse_response(&mut buf, method, &mut taken) {
            Ok(Some(head)) => {
                outcome.status = Some(head.response.status().as_u16());
                outcome.headers = fields(head.response.headers());
                break (Decoder::new(head.framing), head.keep_alive);
            }
            Ok(None) => match reads.next() {
                Some(read) => buf.extend_from_slice(read),
                None => return outcome,
            },
            Err(e) => {
                outcome.end = Err(e.to_string());
                return outcome;
            }
        }
    };
    loop {
        let decoded = match decoder.decode(&mut buf) {
            Ok(Decoded::More) => match reads.next() {
                Some(read) => {
                    buf.extend_from_slice(read);
                    continue;
                }
                None => decoder.eof().map(|()| Decoded::End),
            },
            other => other,
        };
        match decoded {
            Ok(Decoded::Data(data)) => outcome.body.extend_from_slice(&data),
            Ok(Decoded::Trailers(trailers)) => outcome.trailers = fields(&trailers),
            // `More` was read past above.
            Ok(Decoded::End | Decoded::More) => {
                // Reusable as `Connection::reusable` says: nothing more was read than the
                // response (a read that is still to come counts too).
                let rest = reads.next().is_some_and(|r| !r.is_empty());
                outcome.end = Ok(keep_alive && buf.is_empty() && !rest);
                return outcome;
            }
            Err(e) => {
                outcome.end = Err(e.to_string());
                return outcome;
            }
        }
    }
}
