//! `CallId`: OpenFaaS's call-id headers.
//!
//! ```yaml
//! - CallId
//! ```
//! The request and the response get `X-Call-Id` (the client's, or a new random UUID when it
//! sent none) and `X-Start-Time` (when weir received the request, in Unix nanoseconds); the
//! response also gets `X-Served-By: weir/<version>`. Unlike the OpenFaaS gateway, a client's own
//! `X-Call-Id` is echoed on the response too, and `X-Start-Time` is replaced rather than added to.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue};

use crate::{
    random_u64, ArgError, Args, Exchange, Filter, FilterContext, FilterFactory, HttpService,
    LayerFilter, Shortcut,
};

/// `X-Served-By`'s value.
pub const SERVED_BY: &str = concat!("weir/", env!("CARGO_PKG_VERSION"));

const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
const X_START_TIME: HeaderName = HeaderName::from_static("x-start-time");
const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

/// Builds [`CallId`].
pub struct CallIdFactory;

impl FilterFactory for CallIdFactory {
    fn name(&self) -> &'static str {
        "CallId"
    }

    fn shortcut(&self) -> Shortcut {
        Shortcut::Fields(&[])
    }

    fn build(&self, _: &Args, _: &FilterContext<'_>) -> Result<Filter, ArgError> {
        Ok(Filter::Layer(Arc::new(CallId)))
    }
}

/// A random (version 4) UUID in its 36-character text form, written without allocating.
fn uuid_v4_bytes() -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(b >> 4)];
        text[at + 1] = HEX[usize::from(b & 0x0f)];
        at += 2;
    }
    text
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    uuid_v4_bytes().iter().map(|&b| char::from(b)).collect()
}

/// The layer.
pub struct CallId;

impl LayerFilter for CallId {
    fn layer(&self, inner: HttpService) -> HttpService {
        // The headers are set and the call made before the future: it holds only the inner
        // call's future and the two values, not the exchange.
        HttpService::from_fn(move |mut exchange: Exchange| {
            let headers = exchange.request.headers_mut();
            let call_id = match headers.get(&X_CALL_ID) {
                Some(id) if !id.is_empty() => id.clone(),
                _ => HeaderValue::from_bytes(&uuid_v4_bytes()).expect("a uuid is a header value"),
            };
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let start = HeaderValue::from(nanos as u64);
            // Room made once: a map sized to a small head would otherwise grow twice.
            let _ = headers.try_reserve(2);
            headers.insert(X_CALL_ID, call_id.clone());
            headers.insert(X_START_TIME, start.clone());
            let response = inner.handle(exchange);
            async move {
                let mut response = response.await;
                let headers = response.headers_mut();
                let _ = headers.try_reserve(3);
                headers.insert(X_CALL_ID, call_id);
                headers.insert(X_START_TIME, start);
                headers.insert(X_SERVED_BY, HeaderValue::from_static(SERVED_BY));
                response
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(a, uuid_v4());
        let groups: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{a}");
        assert!(a
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }
}
