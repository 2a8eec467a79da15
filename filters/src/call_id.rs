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

use http::HeaderValue;

use crate::{
    random_u64, ArgError, Args, Exchange, Filter, FilterContext, FilterFactory, HttpService,
    LayerFilter, Shortcut,
};

/// `X-Served-By`'s value.
pub const SERVED_BY: &str = concat!("weir/", env!("CARGO_PKG_VERSION"));

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

/// A random (version 4) UUID.
pub fn uuid_v4() -> String {
    let (a, b) = (random_u64(), random_u64());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The layer.
pub struct CallId;

impl LayerFilter for CallId {
    fn layer(&self, inner: HttpService) -> HttpService {
        HttpService::from_fn(move |mut exchange: Exchange| {
            let inner = inner.clone();
            async move {
                let headers = exchange.request.headers_mut();
                let call_id = match headers.get("x-call-id") {
                    Some(id) if !id.is_empty() => id.clone(),
                    _ => HeaderValue::from_str(&uuid_v4()).expect("a uuid is a header value"),
                };
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let start = HeaderValue::from(nanos as u64);
                headers.insert("x-call-id", call_id.clone());
                headers.insert("x-start-time", start.clone());
                let mut response = inner.handle(exchange).await;
                let headers = response.headers_mut();
                headers.insert("x-call-id", call_id);
                headers.insert("x-start-time", start);
                headers.insert("x-served-by", HeaderValue::from_static(SERVED_BY));
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
    }
}
