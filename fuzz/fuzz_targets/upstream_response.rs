//! weir's own HTTP/1 client reading an upstream's response: never panics, and reads the same
//! head, body, trailers and ending however the bytes are split into reads.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use weir::proxy::http1::read_response;

fuzz_target!(|data: &[u8]| {
    let Some((&step, wire)) = data.split_first() else {
        return;
    };
    // The low bit picks the request method (HEAD reads no body); the rest the read size.
    let method = if step & 1 == 0 { Method::GET } else { Method::HEAD };
    let whole = read_response([wire], &method);
    let pieces = read_response(wire.chunks(usize::from(step >> 1).max(1)), &method);
    assert_eq!(whole, pieces, "split every {} bytes", step >> 1);
});
