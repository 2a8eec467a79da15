//! Headers that belong to one connection, not to the request or response: removed when
//! forwarding in either direction (RFC 9110 §7.6.1).

use http::header::{self, HeaderMap, HeaderName};

/// Headers that are always hop-by-hop; `Connection` first.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// The elements of a comma-separated header value (RFC 9110 §5.6.1), without the whitespace
/// around them; empty elements are skipped.
pub fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
}

/// Removes the hop-by-hop headers, every header that `Connection` names, and `Upgrade`.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds those present (most messages carry none, or only
    // `Connection`): removing every listed name blindly is a hash lookup each.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        // `Connection` mostly says `keep-alive`, `close` or `upgrade`: names removed below
        // anyway, or of no header present. Only names of headers present are collected (and
        // only then is a list allocated).
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .flat_map(|v| list_elements(v.as_bytes()))
            .filter(|token| !is_listed(token))
            .filter_map(|token| HeaderName::from_bytes(token).ok())
            .filter(|name| headers.contains_key(name))
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// The position of `name` in [`HOP_BY_HOP`]. Most names are ruled out by their length alone.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    if !matches!(name.len(), 2 | 7 | 10 | 16..=19) {
        return None;
    }
    HOP_BY_HOP.iter().position(|hop| hop.as_str() == name)
}

/// Whether a `Connection` token names a header in [`HOP_BY_HOP`] (removed with the others
/// when present).
fn is_listed(token: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|hop| hop.as_str().as_bytes().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_listed_and_named_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, X-Secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("upgrade", "h2c".parse().unwrap());
        h.insert("proxy-authorization", "Basic x".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn every_listed_name_is_found_by_its_length() {
        for (i, hop) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(hop), Some(i), "{hop}");
        }
        assert_eq!(hop_by_hop_index(&header::CONTENT_LENGTH), None);
        assert_eq!(hop_by_hop_index(&HeaderName::from_static("x-te")), None);
    }

    #[test]
    fn connection_options_and_listed_names_in_any_case() {
        let mut h = HeaderMap::new();
        h.append("connection", "Keep-Alive, Close".parse().unwrap());
        h.append("connection", "TE, x-Hop, not-present".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-hop", "1".parse().unwrap());
        h.insert("close", "1".parse().unwrap()); // named by Connection: removed too
        h.insert("x-kept", "1".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}
