//! A response body taken off the bytes read from the connection: by length, in chunks
//! (RFC 9112 §7.1), or up to the connection's close. Pure: the bytes come in, frames go out.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::SizeHint;

use super::head::{Framing, MAX_HEADERS};
use super::Http1Error;

/// The most bytes of chunk extensions a body may carry, in all (as hyper allows).
const MAX_EXTENSIONS: u64 = 16 * 1024;

/// The longest a trailer section may be.
const MAX_TRAILERS: usize = 16 * 1024;

/// What the decoder took from the buffer.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The trailer fields after the last chunk.
    Trailers(HeaderMap),
    /// The body has ended.
    End,
    /// More bytes are needed from the connection.
    More,
}

/// Decodes one response body.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    /// Chunk-extension bytes seen so far.
    extensions: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// This many bytes left.
    Length(u64),
    /// Until the connection closes.
    Close,
    /// Hex digits of a chunk size.
    Size { size: u64, digits: bool },
    /// Whitespace after the size, before `;` or the CR.
    SizeLws { size: u64 },
    /// A chunk extension, up to the CR.
    Extension { size: u64 },
    /// The LF after a chunk size line.
    SizeLf { size: u64 },
    /// Bytes of the current chunk left.
    Data(u64),
    /// The CR after a chunk's data.
    DataCr,
    /// The LF after a chunk's data.
    DataLf,
    /// The trailer section after the last chunk.
    Trailers,
    /// Done.
    End,
}

impl Decoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::End,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size {
                size: 0,
                digits: false,
            },
            Framing::Close => State::Close,
        };
        Self {
            state,
            extensions: 0,
        }
    }

    /// Whether the whole body has been decoded.
    pub fn is_end(&self) -> bool {
        self.state == State::End
    }

    /// What is known of the length still to come.
    pub fn size_hint(&self) -> SizeHint {
        match self.state {
            State::End => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }

    /// The connection has no more bytes: the end of a body delimited by the close, and an
    /// error for any other body that is not complete.
    pub fn eof(&mut self) -> Result<(), Http1Error> {
        match self.state {
            State::Close | State::End => {
                self.state = State::End;
                Ok(())
            }
            _ => Err(Http1Error::BodyCutShort),
        }
    }

    /// Takes the next piece of the body off the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Http1Error> {
        loop {
            match self.state {
                State::End => return Ok(Decoded::End),
                State::Length(left) | State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let left = left - take as u64;
                    self.state = match self.state {
                        State::Length(_) if left == 0 => State::End,
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::DataCr,
                        _ => State::Data(left),
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::Close => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::Trailers => return self.trailers(buf),
                _ => {
                    let Some(&byte) = buf.first() else {
                        return Ok(Decoded::More);
                    };
                    self.state = self.chunk_byte(byte)?;
                    buf.advance(1);
                }
            }
        }
    }

    /// The state after `byte` in a chunk's size line or after its data.
    fn chunk_byte(&mut self, byte: u8) -> Result<State, Http1Error> {
        let next = match (self.state, byte) {
            (State::Size { size, .. }, _) if byte.is_ascii_hexdigit() => {
                if size > u64::MAX >> 4 {
                    return Err(Http1Error::ChunkSize);
                }
                let digit = (byte as char).to_digit(16).unwrap_or(0);
                State::Size {
                    size: size << 4 | u64::from(digit),
                    digits: true,
                }
            }
            (State::Size { digits: false, .. }, _) => return Err(Http1Error::ChunkSize),
            (State::Size { size, .. } | State::SizeLws { size }, b' ' | b'\t') => {
                State::SizeLws { size }
            }
            (
                State::Size { size, .. } | State::SizeLws { size } | State::Extension { size },
                b'\r',
            ) => State::SizeLf { size },
            (State::Size { size, .. } | State::SizeLws { size }, b';') => {
                self.extension_byte()?;
                State::Extension { size }
            }
            (State::Extension { size }, _) if byte != b'\n' => {
                self.extension_byte()?;
                State::Extension { size }
            }
            (State::SizeLf { size: 0 }, b'\n') => State::Trailers,
            (State::SizeLf { size }, b'\n') => State::Data(size),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size {
                size: 0,
                digits: false,
            },
            _ => return Err(Http1Error::ChunkSize),
        };
        Ok(next)
    }

    /// Counts a byte of chunk extensions against their limit.
    fn extension_byte(&mut self) -> Result<(), Http1Error> {
        self.extensions += 1;
        if self.extensions > MAX_EXTENSIONS {
            return Err(Http1Error::ChunkExtensions);
        }
        Ok(())
    }

    /// The trailer section: an empty line, or header fields up to one.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Decoded, Http1Error> {
        if buf.len() < 2 {
            return Ok(Decoded::More);
        }
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::End;
            return Ok(Decoded::End);
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (len, fields) = match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((len, fields))) => (len, fields),
            Ok(httparse::Status::Partial) if buf.len() <= MAX_TRAILERS => return Ok(Decoded::More),
            _ => return Err(Http1Error::Trailers),
        };
        // The section ends with CRLF CRLF (httparse also takes a bare LF), within the limit.
        if len > MAX_TRAILERS || !buf[..len].ends_with(b"\r\n\r\n") {
            return Err(Http1Error::Trailers);
        }
        let mut trailers = HeaderMap::with_capacity(fields.len());
        for field in fields {
            let name = http::HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| Http1Error::Trailers)?;
            let value =
                http::HeaderValue::from_bytes(field.value).map_err(|_| Http1Error::Trailers)?;
            trailers.append(name, value);
        }
        buf.advance(len);
        self.state = State::End;
        Ok(Decoded::Trailers(trailers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed `step` bytes at a time, then the connection's end; the body's
    /// bytes, trailers and how it ended.
    fn decode_in_steps(
        framing: Framing,
        wire: &[u8],
        step: usize,
    ) -> (Vec<u8>, Option<HeaderMap>, Result<usize, Http1Error>) {
        let mut decoder = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut trailers = None;
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(data)) => body.extend_from_slice(&data),
                Ok(Decoded::Trailers(t)) => trailers = Some(t),
                Ok(Decoded::End) => return (body, trailers, Ok(buf.len())),
                Ok(Decoded::More) if fed < wire.len() => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
                Ok(Decoded::More) => {
                    return (body, trailers, decoder.eof().map(|()| 0));
                }
                Err(e) => return (body, trailers, Err(e)),
            }
        }
    }

    #[test]
    fn a_length_delimited_body_stops_at_its_length() {
        for step in [1, 3, 100] {
            let (body, _, end) = decode_in_steps(Framing::Length(5), b"helloHTTP/1.1", step);
            assert_eq!(body, b"hello");
            // What follows the body stays in the buffer: the connection is then not reused.
            assert!(end.is_ok());
        }
        let (body, _, end) = decode_in_steps(Framing::Length(5), b"hel", 2);
        assert_eq!(body, b"hel");
        assert!(matches!(end, Err(Http1Error::BodyCutShort)));
    }

    #[test]
    fn a_chunked_body_however_it_is_split() {
        let wire = b"5\r\nhello\r\n6 ; name=value\r\n world\r\nA \r\n0123456789\r\n000000000000000000000001\r\n!\r\n0\r\n\r\n";
        for step in 1..wire.len() {
            let (body, trailers, end) = decode_in_steps(Framing::Chunked, wire, step);
            assert_eq!(body, b"hello world0123456789!", "step {step}");
            assert!(trailers.is_none());
            assert_eq!(end.unwrap(), 0);
        }
    }

    #[test]
    fn trailers_after_the_last_chunk() {
        let wire = b"3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-Other: y\r\n\r\n";
        for step in [1, 7, 64] {
            let (body, trailers, end) = decode_in_steps(Framing::Chunked, wire, step);
            assert_eq!(body, b"abc");
            let trailers = trailers.unwrap();
            assert_eq!(trailers["x-checksum"], "42");
            assert_eq!(trailers["x-other"], "y");
            assert_eq!(end.unwrap(), 0);
        }
    }

    #[test]
    fn bytes_after_the_trailers_stay_in_the_buffer() {
        let wire = b"1\r\na\r\n0\r\nX: 1\r\n\r\nEXTRA";
        let (body, trailers, end) = decode_in_steps(Framing::Chunked, wire, 64);
        assert_eq!(body, b"a");
        assert!(trailers.is_some());
        assert_eq!(end.unwrap(), 5, "left for the connection to refuse reuse");
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [
            &b"x\r\nabc\r\n0\r\n\r\n"[..],
            b"\r\n",
            b"3\nabc\r\n0\r\n\r\n",
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"3\r\nabc\r\r0\r\n\r\n",
            b"11111111111111111\r\n",
            // Whitespace after the size, then anything but `;` or CR.
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"5 junk\r\nhello\r\n0\r\n\r\n",
            // The trailer section ends with CRLF CRLF, not a bare LF.
            b"0\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"0\r\nX: 1\r\n\n",
            b"0\r\nBad Name: x\r\n\r\n",
        ] {
            let (_, _, end) = decode_in_steps(Framing::Chunked, wire, 4);
            assert!(end.is_err(), "{:?}", String::from_utf8_lossy(wire));
        }
        let mut long = b"1;".to_vec();
        long.resize(MAX_EXTENSIONS as usize + 10, b'a');
        assert!(matches!(
            decode_in_steps(Framing::Chunked, &long, 4096).2,
            Err(Http1Error::ChunkExtensions)
        ));
        let mut trailers = b"0\r\nX: ".to_vec();
        trailers.resize(MAX_TRAILERS + 10, b'a');
        assert!(matches!(
            decode_in_steps(Framing::Chunked, &trailers, 4096).2,
            Err(Http1Error::Trailers)
        ));
    }

    #[test]
    fn a_chunked_body_cut_short_is_an_error() {
        let (body, _, end) = decode_in_steps(Framing::Chunked, b"5\r\nhel", 100);
        assert_eq!(body, b"hel");
        assert!(matches!(end, Err(Http1Error::BodyCutShort)));
    }

    #[test]
    fn a_close_delimited_body_runs_to_the_end() {
        let (body, _, end) = decode_in_steps(Framing::Close, b"all of it", 4);
        assert_eq!(body, b"all of it");
        assert!(end.is_ok());
    }

    #[test]
    fn size_hints() {
        assert_eq!(
            Decoder::new(Framing::Length(7)).size_hint().exact(),
            Some(7)
        );
        assert_eq!(Decoder::new(Framing::Empty).size_hint().exact(), Some(0));
        assert!(Decoder::new(Framing::Empty).is_end());
        assert_eq!(Decoder::new(Framing::Chunked).size_hint().exact(), None);
    }
}
