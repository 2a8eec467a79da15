//! weir's own HTTP/1 server's request heads: never a panic; a head it does not serve is left
//! whole for hyper; a head it serves is taken exactly, and never one with a body, an upgrade
//! or an expectation (those, and every request-smuggling defence, are hyper's and the guard's).
#![no_main]

use bytes::BytesMut;
use http::header;
use libfuzzer_sys::fuzz_target;
use weir::server::http1::{parse_head, Head};

fuzz_target!(|data: &[u8]| {
    let mut read = BytesMut::from(data);
    match parse_head(&mut read) {
        Head::Ready(request, _) => {
            let taken = data.len() - read.len();
            assert_eq!(&data[taken..], &read[..], "only the head is taken");
            assert!(data[..taken].ends_with(b"\n"), "a head ends with an empty line");
            for name in [
                header::CONTENT_LENGTH,
                header::TRANSFER_ENCODING,
                header::UPGRADE,
                header::EXPECT,
            ] {
                assert!(!request.headers().contains_key(&name), "{name} served here");
            }
            assert_eq!(request.version(), http::Version::HTTP_11);
            assert!(request.uri().path().starts_with('/'));
            assert!(request.uri().scheme().is_none() && request.uri().authority().is_none());
        }
        Head::Partial | Head::Hyper => assert_eq!(&read[..], data, "every byte is left for hyper"),
    }
});
