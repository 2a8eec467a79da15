use super::*;
use tokio::net::TcpStream;

fn parsed(bytes: &str) -> Head {
    parse_head(&mut BytesMut::from(bytes.as_bytes()))
}

#[test]
fn a_bodiless_request_is_served_here() {
    let mut read = BytesMut::from(
        &b"GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\nConnection: keep-alive\r\n\r\nGET /next"[..],
    );
    let Head::Ready(request, asked) = parse_head(&mut read) else {
        panic!("not served here");
    };
    assert_eq!(asked, Asked::default());
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri(), "/a/b?c=d");
    assert_eq!(request.version(), Version::HTTP_11);
    assert_eq!(request.headers()["host"], "x");
    let twos: Vec<_> = request.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["1", "2"]);
    assert_eq!(
        &read[..],
        b"GET /next",
        "the next request stays in the buffer"
    );
}

#[test]
fn connection_close_is_seen_in_any_line_and_case() {
    for head in [
        "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: foo, close\r\n\r\n",
    ] {
        assert!(
            matches!(parsed(head), Head::Ready(_, Asked { close: true, .. })),
            "{head}"
        );
    }
    // As hyper reads it: a value that is not visible ASCII says nothing.
    let head = "GET / HTTP/1.1\r\nConnection: close, \u{e9}\r\nTE: trailers\r\n\r\n";
    let asked = Asked {
        close: false,
        trailers: true,
    };
    assert!(
        matches!(parsed(head), Head::Ready(_, a) if a == asked),
        "{head}"
    );
}

#[test]
fn a_head_is_parsed_again_only_when_it_may_have_ended() {
    assert!(may_end_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
    assert!(!may_end_head(b"GET / HTTP/1.1\r\nHost: x\r\nA", 27));
    assert!(may_end_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27));
    assert!(may_end_head(b"GET / HTTP/1.1\nHost: x\n\n", 24));
}

#[test]
fn everything_else_goes_to_hyper() {
    for head in [
        "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "PUT / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "CONNECT x:443 HTTP/1.1\r\n\r\n",
        "CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "G@T / HTTP/1.1\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\n\r\n",
        // httparse takes this target, the http crate does not: the head is put back.
        "GET /<a> HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let whole = format!("{head}GET /next HTTP/1.1\r\n\r\n");
        let mut read = BytesMut::from(whole.as_bytes());
        assert!(matches!(parse_head(&mut read), Head::Hyper), "{head:?}");
        assert_eq!(&read[..], whole.as_bytes(), "hyper gets every byte read");
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
    assert!(matches!(
        parsed(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
        Head::Hyper
    ));
    assert!(matches!(
        parsed("GET / HTTP/1.1\r\nHost: x\r\n"),
        Head::Partial
    ));
}

/// The head written for a response with `headers` to `method`, and how it was encoded.
fn encode(
    status: u16,
    headers: &[(&str, &str)],
    method: Method,
    length: Length,
    keep_alive: bool,
) -> (String, Encoded) {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (mut head, ()) = response.into_parts();
    let mut out = Vec::new();
    let encoded = encode_head(&mut head, &method, length, keep_alive, &mut out).unwrap();
    (String::from_utf8(out).unwrap(), encoded)
}

const DATE: (&str, &str) = ("date", "Sun, 22 Nov 2026 14:00:00 GMT");

#[test]
fn writes_heads_as_hyper_does() {
    let (head, e) = encode(
        200,
        &[DATE, ("content-length", "6")],
        Method::GET,
        Length::Known(6),
        true,
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\ncontent-length: 6\r\n\r\n"
    );
    assert_eq!((e.encoder, e.last), (Encoder::Length(6), false));

    // A length from the body, when the head has none.
    let (head, e) = encode(404, &[DATE], Method::GET, Length::Known(3), true);
    assert_eq!(head, "HTTP/1.1 404 Not Found\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\ncontent-length: 3\r\n\r\n");
    assert_eq!(e.encoder, Encoder::Length(3));

    // Unknown length: chunked.
    let (head, e) = encode(200, &[DATE], Method::GET, Length::Unknown, true);
    assert_eq!(head, "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\ntransfer-encoding: chunked\r\n\r\n");
    assert_eq!(e.encoder, Encoder::Chunked(None));

    // No body: an explicit zero, but not for HEAD, 204 or 304.
    let (head, _) = encode(
        200,
        &[DATE, ("content-length", "9")],
        Method::GET,
        Length::Ended,
        true,
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\ncontent-length: 0\r\n\r\n"
    );
    let (head, e) = encode(
        200,
        &[DATE, ("content-length", "9")],
        Method::HEAD,
        Length::Ended,
        true,
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\ncontent-length: 9\r\n\r\n"
    );
    assert_eq!(e.encoder, Encoder::Length(0));
    let (head, e) = encode(204, &[DATE], Method::GET, Length::Unknown, true);
    assert_eq!(
        head,
        "HTTP/1.1 204 No Content\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\n\r\n"
    );
    assert_eq!(e.encoder, Encoder::Length(0));
    let (_, e) = encode(200, &[DATE], Method::HEAD, Length::Known(10), true);
    assert_eq!(e.encoder, Encoder::Length(0), "no body for HEAD");
}

#[test]
fn joins_connection_and_transfer_encoding_and_closes_when_asked() {
    let (head, e) = encode(
        200,
        &[
            DATE,
            ("connection", "x-a"),
            ("connection", "close"),
            ("transfer-encoding", "gzip"),
        ],
        Method::GET,
        Length::Unknown,
        true,
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\nconnection: x-a, close\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
    );
    assert_eq!((e.encoder, e.last), (Encoder::Chunked(None), true));

    // Closing after the response says so.
    let (head, e) = encode(200, &[DATE], Method::GET, Length::Known(0), false);
    assert_eq!(head, "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
    assert!(e.last);
}

#[test]
fn adds_a_date_and_keeps_a_reason_and_a_version() {
    let (head, _) = encode(200, &[], Method::GET, Length::Known(0), true);
    let date = head
        .strip_prefix("HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: ")
        .unwrap();
    assert!(httpdate::parse_http_date(date.trim_end()).is_ok(), "{head}");

    let mut response = Response::new(());
    *response.version_mut() = Version::HTTP_10;
    response
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"Fine"));
    response
        .headers_mut()
        .insert(header::DATE, HeaderValue::from_static("d"));
    let (mut parts, ()) = response.into_parts();
    let mut out = Vec::new();
    let e = encode_head(&mut parts, &Method::GET, Length::Unknown, true, &mut out).unwrap();
    assert_eq!(out, b"HTTP/1.0 200 Fine\r\ndate: d\r\n\r\n");
    assert_eq!(
        (e.encoder, e.last),
        (Encoder::Close, true),
        "HTTP/1.0 cannot chunk"
    );
}

#[test]
fn refuses_framing_that_disagrees() {
    let mut out = Vec::new();
    let mut head = |headers: &[(&'static str, &'static str)], length| {
        let mut response = Response::new(());
        for (name, value) in headers {
            response
                .headers_mut()
                .append(*name, HeaderValue::from_static(value));
        }
        let (mut parts, ()) = response.into_parts();
        encode_head(&mut parts, &Method::GET, length, true, &mut out).is_err()
    };
    assert!(head(
        &[("content-length", "1"), ("content-length", "2")],
        Length::Unknown
    ));
    assert!(head(&[("content-length", "x")], Length::Unknown));
    assert!(head(
        &[("content-length", "1"), ("transfer-encoding", "chunked")],
        Length::Unknown
    ));
    assert!(!head(
        &[("content-length", "1"), ("content-length", "1")],
        Length::Unknown
    ));
}

#[test]
fn a_1xx_becomes_a_bare_500_and_a_101_is_written_as_it_is() {
    let (head, e) = encode(
        103,
        &[("link", "</x>")],
        Method::GET,
        Length::Known(4),
        true,
    );
    let date = head
        .strip_prefix("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\ndate: ")
        .unwrap_or_else(|| panic!("{head}"));
    assert!(date.ends_with(" GMT\r\n\r\n"), "{head}");
    assert!(e.last);
    let (head, e) = encode(
        101,
        &[DATE, ("upgrade", "x")],
        Method::GET,
        Length::Ended,
        true,
    );
    assert_eq!(head, "HTTP/1.1 101 Switching Protocols\r\ndate: Sun, 22 Nov 2026 14:00:00 GMT\r\nupgrade: x\r\n\r\n");
    assert_eq!((e.encoder, e.last), (Encoder::Length(0), true));
}

#[test]
fn framing_values_read_as_hyper_reads_them() {
    // `chunked,` does not end in `chunked`: hyper adds it.
    let (head, _) = encode(
        200,
        &[DATE, ("transfer-encoding", "chunked,")],
        Method::GET,
        Length::Unknown,
        true,
    );
    assert!(
        head.contains("\r\ntransfer-encoding: chunked,, chunked\r\n"),
        "{head}"
    );
    for bad in ["5, 5", " 5", "", "99999999999999999999"] {
        assert_eq!(
            content_length(&HeaderValue::from_str(bad).unwrap()),
            None,
            "{bad:?}"
        );
    }
    assert_eq!(content_length(&HeaderValue::from_static("007")), Some(7));
}

#[test]
fn trailers_only_as_declared() {
    let mut fields = HeaderMap::new();
    fields.insert("x-sum", HeaderValue::from_static("1"));
    fields.insert("content-type", HeaderValue::from_static("no"));
    let mut out = Vec::new();
    assert!(write_trailers(
        &mut out,
        &[HeaderName::from_static("x-sum"), header::CONTENT_TYPE],
        &fields
    ));
    assert_eq!(out, b"0\r\nx-sum: 1\r\n\r\n");
    out.clear();
    assert!(!write_trailers(
        &mut out,
        &[HeaderName::from_static("x-other")],
        &fields
    ));
    assert!(out.is_empty());
}

/// What a client reads when `encoder` writes `frames` (data, or trailers when the text starts
/// with `trailer:`) after a head of `HEAD`, and whether the response was written whole.
async fn written(encoder: Encoder, frames: &[&'static str]) -> (String, bool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(client, listener.accept());
    let (mut client, mut server) = (client.unwrap(), accepted.unwrap().0);
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = frames
        .iter()
        .map(|f| match f.strip_prefix("trailer:") {
            Some(field) => {
                let (name, value) = field.split_once('=').unwrap();
                let mut fields = HeaderMap::new();
                fields.insert(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
                Ok(Frame::trailers(fields))
            }
            None => Ok(Frame::data(Bytes::from_static(f.as_bytes()))),
        })
        .collect();
    let body = Body::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )));
    let (mut read, mut out) = (BytesMut::new(), b"HEAD\r\n".to_vec());
    let mut head_timer = HeadTimer::new(None);
    let writing = Writing {
        stream: &mut server,
        read: &mut read,
        out: &mut out,
        head_timer: &mut head_timer,
        wait: None,
    };
    let whole = writing
        .body(encoder, TimedBody::new(body, None, None))
        .await;
    drop(server);
    let mut got = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut client, &mut got)
        .await
        .unwrap();
    (got, whole)
}

#[tokio::test]
async fn bodies_are_framed_as_hyper_frames_them() {
    let chunked = Encoder::Chunked(None);
    assert_eq!(
        written(chunked.clone(), &["ab", "", "cde"]).await,
        ("HEAD\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n".into(), true)
    );
    // Declared trailers are written, and end the body; undeclared ones are not.
    let declared = Encoder::Chunked(Some(vec![HeaderName::from_static("x-sum")]));
    assert_eq!(
        written(declared, &["ab", "trailer:x-sum=1", "never"]).await,
        ("HEAD\r\n2\r\nab\r\n0\r\nx-sum: 1\r\n\r\n".into(), true)
    );
    assert_eq!(
        written(chunked, &["ab", "trailer:x-sum=1", "never"]).await,
        ("HEAD\r\n2\r\nab\r\n0\r\n\r\n".into(), true)
    );
    // Not beyond the length announced.
    assert_eq!(
        written(Encoder::Length(5), &["hel", "lo world"]).await,
        ("HEAD\r\nhello".into(), true)
    );
    // Short of it: nothing more, and the response is not whole.
    assert!(!written(Encoder::Length(10), &["abc"]).await.1);
    assert_eq!(
        written(Encoder::Close, &["a", "b"]).await,
        ("HEAD\r\nab".into(), true)
    );
}

#[tokio::test]
async fn a_large_frame_goes_out_whole_between_its_chunk_lines() {
    let big: &'static str = Box::leak("x".repeat(3 * COPY_UNDER).into_boxed_str());
    let (got, whole) = written(Encoder::Chunked(None), &["ab", big, "cd"]).await;
    assert!(whole);
    let expected = format!(
        "HEAD\r\n2\r\nab\r\n{:X}\r\n{big}\r\n2\r\ncd\r\n0\r\n\r\n",
        big.len()
    );
    assert!(
        got == expected,
        "{} bytes, not the {} expected",
        got.len(),
        expected.len()
    );
}
