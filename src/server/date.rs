//! The `Date` header weir adds to a response that has none (RFC 9110 §6.6.1), formatted once
//! a second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is this long.
const LENGTH: usize = 29;

thread_local! {
    /// The second last formatted, and its text.
    static CACHED: RefCell<(u64, [u8; LENGTH])> = const { RefCell::new((u64::MAX, [0; LENGTH])) };
}

/// Appends the current time as an HTTP date to `out`.
pub fn extend(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let text = httpdate::fmt_http_date(now);
            if let Ok(bytes) = <[u8; LENGTH]>::try_from(text.as_bytes()) {
                *cached = (second, bytes);
            }
        }
        out.extend_from_slice(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imf_fixdate_of_now() {
        let mut out = Vec::new();
        extend(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        let parsed = httpdate::parse_http_date(text).unwrap();
        let off = SystemTime::now().duration_since(parsed).unwrap();
        assert!(off.as_secs() < 5, "{text}");
        assert!(text.ends_with(" GMT") && text.len() == LENGTH, "{text}");
    }
}
