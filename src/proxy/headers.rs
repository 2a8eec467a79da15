//! Headers that belong to one connection, not to the request or response: removed when
//! forwarding in either direction (RFC 9110 §7.6.1); and the changes the forwarder makes to a
//! request's headers, kept apart from its header map until they are written or applied.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

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
    HopByHop::of(headers).remove_from(headers);
}

/// The hop-by-hop headers of one message: those of [`HOP_BY_HOP`] present, and the other
/// headers present that `Connection` names.
#[derive(Default)]
pub struct HopByHop {
    /// Bit `i` set: `HOP_BY_HOP[i]` is present.
    present: u16,
    /// Headers named by `Connection` (rare: allocated only then).
    named: Vec<HeaderName>,
}

impl HopByHop {
    /// Finds them in one pass over the names present (most messages carry none, or only
    /// `Connection`): looking up every listed name would be a hash lookup each.
    pub fn of(headers: &HeaderMap) -> Self {
        let mut present = 0u16;
        for name in headers.keys() {
            if let Some(i) = hop_by_hop_index(name) {
                present |= 1 << i;
            }
        }
        let named = if present & 1 != 0 {
            // `Connection` mostly says `keep-alive`, `close` or `upgrade`: names in the list
            // anyway, or of no header present. Only names of headers present are collected.
            let mut named = headers
                .get_all(header::CONNECTION)
                .iter()
                .flat_map(|v| named_by_connection(v.as_bytes()))
                .filter(|name| headers.contains_key(name))
                .collect();
            distinct(&mut named);
            named
        } else {
            Vec::new()
        };
        Self { present, named }
    }

    /// Whether `name` is one of them.
    pub fn covers(&self, name: &HeaderName) -> bool {
        if self.present == 0 {
            return false;
        }
        hop_by_hop_index(name).is_some_and(|i| self.present & (1 << i) != 0)
            || self.named.contains(name)
    }

    /// Removes them from `headers`, the map they were found in.
    pub fn remove_from(self, headers: &mut HeaderMap) {
        for name in self.named {
            headers.remove(name);
        }
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            if self.present & (1 << i) != 0 {
                headers.remove(name);
            }
        }
    }
}

/// Whether `name` is always hop-by-hop (`Connection`, `Transfer-Encoding`, `Keep-Alive`, ...).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_by_hop_index(name).is_some()
}

/// The position of `name` in [`HOP_BY_HOP`]. Most names are ruled out by their length alone.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    if !listed_length(name.len()) {
        return None;
    }
    HOP_BY_HOP.iter().position(|hop| hop.as_str() == name)
}

/// The headers a `Connection` value names besides those in [`HOP_BY_HOP`] (removed with
/// the others anyway). `close` names a header too: one called `Close` is hop-by-hop.
pub fn named_by_connection(value: &[u8]) -> impl Iterator<Item = HeaderName> + '_ {
    list_elements(value)
        .filter(|token| !is_listed(token))
        .filter_map(|token| HeaderName::from_bytes(token).ok())
}

/// Leaves each name in `names` once. A `Connection` header may repeat a name many times
/// (`a, a, a, ...` fills a head cheaply), and the list is searched once per header forwarded:
/// kept whole, that search would grow with the head's size squared.
pub fn distinct(names: &mut Vec<HeaderName>) {
    if names.len() > 1 {
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
    }
}

/// Whether a `Connection` token names a header in [`HOP_BY_HOP`].
fn is_listed(token: &[u8]) -> bool {
    listed_length(token.len())
        && HOP_BY_HOP
            .iter()
            .any(|hop| hop.as_str().as_bytes().eq_ignore_ascii_case(token))
}

/// Whether a name of `len` bytes may be in [`HOP_BY_HOP`] (whose names are 2, 7, 10 and 16 to
/// 19 bytes long).
fn listed_length(len: usize) -> bool {
    matches!(len, 2 | 7 | 10 | 16..=19)
}

/// A header value set by [`HeaderEdits`]. Both kinds hold only bytes valid in a header value.
pub enum EditValue {
    /// A value already made (a constant with [`HeaderValue::from_static`]), or copied from
    /// the request (`Host`).
    Header(HeaderValue),
    /// A short value written on the stack (an address, a port).
    Short(ShortValue),
}

impl EditValue {
    /// The value's bytes, as written in a head.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            EditValue::Header(value) => value.as_bytes(),
            EditValue::Short(short) => short.as_bytes(),
        }
    }

    fn into_header_value(self) -> HeaderValue {
        match self {
            EditValue::Header(value) => value,
            EditValue::Short(short) => HeaderValue::from_bytes(short.as_bytes())
                .expect("digits, dots, colons and hex digits are valid in a header value"),
        }
    }
}

/// The longest text of an IP address: an IPv6 address with an IPv4 tail, in full.
const MAX_IP_TEXT: usize = 45;

/// Up to [`MAX_IP_TEXT`] bytes of digits, `.`, `:` and hex letters: an IP address or a port.
pub struct ShortValue {
    bytes: [u8; MAX_IP_TEXT],
    len: u8,
}

impl ShortValue {
    /// `ip` as text, as `Display` writes it. IPv4, what almost every peer is, is written digit
    /// by digit: the formatting machinery costs several times more.
    pub fn ip(ip: std::net::IpAddr) -> Self {
        let mut short = Self {
            bytes: [0; MAX_IP_TEXT],
            len: 0,
        };
        let std::net::IpAddr::V4(v4) = ip else {
            use std::io::Write as _;
            let mut cursor = std::io::Cursor::new(&mut short.bytes[..]);
            let _ = write!(cursor, "{ip}");
            short.len = cursor.position() as u8;
            return short;
        };
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                short.push(b'.');
            }
            if octet >= 100 {
                short.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                short.push(b'0' + octet / 10 % 10);
            }
            short.push(b'0' + octet % 10);
        }
        short
    }

    /// A port: 1 to 5 ASCII digits; `None` for anything else.
    pub fn port(digits: &[u8]) -> Option<Self> {
        if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut short = Self {
            bytes: [0; MAX_IP_TEXT],
            len: 0,
        };
        digits.iter().for_each(|&d| short.push(d));
        Some(short)
    }

    fn push(&mut self, byte: u8) {
        self.bytes[usize::from(self.len)] = byte;
        self.len += 1;
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The most headers one [`HeaderEdits`] changes: the forwarder's seven.
const MAX_CHANGES: usize = 7;

/// A header name with the value it is set to, or `None` to remove it. Names are statics:
/// the edits are moved a few times per request, and a name is a quarter of their size.
type Change = (&'static HeaderName, Option<EditValue>);

/// Changes to a request's headers on the way upstream: its hop-by-hop headers dropped, and
/// some headers set or removed, each change replacing every header of its name. They stay
/// apart from the request's header map: weir's HTTP/1 client writes the head from the map and
/// the changes together, without editing the map (each insert into it is a hash lookup and a
/// possible reallocation); a request sent by hyper's client has them applied first.
#[derive(Default)]
pub struct HeaderEdits {
    hop_by_hop: HopByHop,
    /// The changes in the order made; the empty slots last.
    changes: [Option<Change>; MAX_CHANGES],
    /// How many slots are filled.
    made: usize,
}

impl HeaderEdits {
    /// Edits that drop the hop-by-hop headers of `headers` and change nothing else yet.
    pub fn dropping_hop_by_hop(headers: &HeaderMap) -> Self {
        Self {
            hop_by_hop: HopByHop::of(headers),
            ..Self::default()
        }
    }

    /// Whether `name` is among the hop-by-hop headers dropped.
    pub fn drops_hop_by_hop(&self, name: &HeaderName) -> bool {
        self.hop_by_hop.covers(name)
    }

    /// Sets `name` to `value`, replacing every header of that name. Each name is changed at
    /// most once, and at most [`MAX_CHANGES`] names.
    pub fn set(&mut self, name: &'static HeaderName, value: EditValue) {
        self.change(name, Some(value));
    }

    /// Removes every header named `name`.
    pub fn remove(&mut self, name: &'static HeaderName) {
        self.change(name, None);
    }

    fn change(&mut self, name: &'static HeaderName, value: Option<EditValue>) {
        debug_assert!(
            !self.changes().any(|(n, _)| *n == name),
            "{name} changed twice"
        );
        let slot = self
            .changes
            .get_mut(self.made)
            .expect("at most MAX_CHANGES header changes");
        *slot = Some((name, value));
        self.made += 1;
    }

    fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes[..self.made].iter().flatten()
    }

    /// Whether the request's own header `name` goes upstream: it is neither hop-by-hop nor
    /// changed.
    pub fn keeps(&self, name: &HeaderName) -> bool {
        !self.hop_by_hop.covers(name) && !self.changes().any(|(changed, _)| *changed == name)
    }

    /// The headers set, in the order they were set.
    pub fn added(&self) -> impl Iterator<Item = (&HeaderName, &[u8])> {
        self.changes()
            .filter_map(|(name, value)| Some((*name, value.as_ref()?.as_bytes())))
    }

    /// Makes the changes in `headers`, the map of the request they were made for.
    pub fn apply(self, headers: &mut HeaderMap) {
        // A parsed head's map has no room to spare: grown once, not once per insert.
        headers.reserve(self.made);
        self.hop_by_hop.remove_from(headers);
        for (name, value) in self.changes.into_iter().flatten() {
            match value {
                Some(value) => {
                    headers.insert(name.clone(), value.into_header_value());
                }
                None => {
                    headers.remove(name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_lengths_cover_every_listed_name() {
        for name in &HOP_BY_HOP {
            assert!(listed_length(name.as_str().len()), "{name}");
            assert_eq!(
                hop_by_hop_index(name).map(|i| HOP_BY_HOP[i].clone()),
                Some(name.clone())
            );
            assert!(is_listed(name.as_str().to_ascii_uppercase().as_bytes()));
        }
        assert!(!is_listed(b"x-secret") && !is_listed(b"close"));
    }

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

    /// The headers `edits` leave: written by the HTTP/1 client's `write_request` (read back
    /// from the head it writes), and applied to the map; both the same.
    fn edited(headers: &HeaderMap, edits: HeaderEdits) -> Vec<(String, String)> {
        let mut request = http::Request::new(());
        *request.headers_mut() = headers.clone();
        let mut head = Vec::new();
        assert!(crate::proxy::http1::head::write_request(
            &request, &edits, &mut head
        ));
        let head = String::from_utf8(head).unwrap();
        let written: Vec<(String, String)> = head
            .split("\r\n")
            .skip(1)
            .take_while(|line| !line.is_empty())
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_string(), value.to_string())
            })
            .collect();
        let mut applied = headers.clone();
        edits.apply(&mut applied);
        let mut applied: Vec<_> = applied
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let mut sorted = written.clone();
        sorted.sort();
        applied.sort();
        assert_eq!(sorted, applied, "written and applied differ");
        written
    }

    #[test]
    fn edits_written_and_applied_agree() {
        let mut h = HeaderMap::new();
        h.append("host", "client.example".parse().unwrap());
        h.append("connection", "x-hop".parse().unwrap());
        h.append("x-hop", "1".parse().unwrap());
        h.append("te", "trailers".parse().unwrap());
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        // Named by Connection and set as well: dropped, then set once.
        h.append("connection", "x-forwarded-port".parse().unwrap());
        h.append("x-forwarded-port", "1".parse().unwrap());
        h.append("forwarded", "for=x".parse().unwrap());
        h.append("accept", "a".parse().unwrap());
        h.append("accept", "b".parse().unwrap());
        static HOST: HeaderName = header::HOST;
        static FORWARDED: HeaderName = header::FORWARDED;
        static FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
        static PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
        let mut edits = HeaderEdits::dropping_hop_by_hop(&h);
        assert!(edits.drops_hop_by_hop(&HeaderName::from_static("x-hop")));
        assert!(!edits.drops_hop_by_hop(&header::ACCEPT));
        edits.set(&HOST, EditValue::Header(HeaderValue::from_static("up:80")));
        edits.set(
            &FOR,
            EditValue::Short(ShortValue::ip("10.0.0.1".parse().unwrap())),
        );
        edits.set(&PORT, EditValue::Short(ShortValue::port(b"8443").unwrap()));
        edits.remove(&FORWARDED);
        let headers: Vec<_> = edited(&h, edits)
            .into_iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        assert_eq!(
            headers,
            [
                "host: up:80",
                "x-forwarded-for: 10.0.0.1",
                "x-forwarded-port: 8443",
                "accept: a",
                "accept: b",
            ]
        );
    }

    #[test]
    fn no_edits_keep_every_header() {
        let mut h = HeaderMap::new();
        h.append("host", "a".parse().unwrap());
        h.append("x-one", "1".parse().unwrap());
        let kept = edited(&h, HeaderEdits::dropping_hop_by_hop(&h));
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(kept, [pair("host", "a"), pair("x-one", "1")]);
    }

    #[test]
    fn a_name_repeated_in_connection_is_kept_once() {
        let mut h = HeaderMap::new();
        let list = vec!["x-a, x-b"; 1000].join(", ");
        h.insert("connection", list.parse().unwrap());
        h.insert("x-a", "1".parse().unwrap());
        h.insert("x-b", "1".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        let hop = HopByHop::of(&h);
        assert_eq!(hop.named, ["x-a", "x-b"]);
        hop.remove_from(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "100.9.99.199",
            "::1",
            "2001:db8::8a2e:370:7334",
            "fe80::1:2:3:4",
            "::ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(ShortValue::ip(ip).as_bytes(), ip.to_string().as_bytes());
        }
    }

    #[test]
    fn ports_are_digits() {
        assert_eq!(ShortValue::port(b"8443").unwrap().as_bytes(), b"8443");
        for bad in [&b""[..], b"123456", b"80a", b" 80"] {
            assert!(ShortValue::port(bad).is_none(), "{bad:?}");
        }
    }
}
