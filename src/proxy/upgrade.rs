//! WebSocket: an HTTP/1.1 request that asks to upgrade to `websocket` goes upstream with its
//! `Upgrade: websocket` and `Connection: upgrade`, over a connection of its own. When the
//! upstream answers 101 and that 101 reaches the client, the client's connection and the
//! upstream's are joined, and bytes are copied both ways until either side closes; any other
//! answer is forwarded as usual.
//!
//! Other upgrades (`h2c`, ...) are not tunnelled: their `Upgrade` is dropped as hop-by-hop
//! and the request forwarded as a plain one, as before.

use std::any::Any;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::Body as _;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use weir_filters::Body;

use super::headers::list_elements;

/// A client's request to switch its connection to WebSocket.
pub struct Upgrade {
    /// The client's side, ready once weir's 101 has been written to it.
    client: OnUpgrade,
}

/// Takes the upgrade out of `request` when it asks for WebSocket over HTTP/1.1 and its
/// connection can be handed over (it came through hyper's server, which answers every request
/// that asks to upgrade).
pub fn take(request: &mut Request<Body>) -> Option<Upgrade> {
    // Most requests carry no extensions at all: that is looked at first.
    // RFC 6455's handshake has no body: one with a body is forwarded as a plain request.
    if request.extensions().get::<OnUpgrade>().is_none()
        || request.version() != Version::HTTP_11
        || !request.body().is_end_stream()
        || !asks_for_websocket(request.headers())
    {
        return None;
    }
    let client = request.extensions_mut().remove::<OnUpgrade>()?;
    Some(Upgrade { client })
}

/// Whether `headers` ask to upgrade to WebSocket: `Upgrade` names `websocket` and `Connection`
/// names `upgrade` (RFC 6455 §4.1; both case-insensitive).
fn asks_for_websocket(headers: &HeaderMap) -> bool {
    let names = |name, token: &[u8]| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| list_elements(v.as_bytes()))
            .any(|element| element.eq_ignore_ascii_case(token))
    };
    names(header::UPGRADE, b"websocket") && names(header::CONNECTION, b"upgrade")
}

/// Puts back the two headers that ask for (or agree to) the switch, after the hop-by-hop
/// headers were dropped.
pub fn ask(headers: &mut HeaderMap) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

impl Upgrade {
    /// Readies the switch when `response`, the upstream's answer, is 101: the client's side
    /// and the upstream's are put in its extensions as a [`Tunnel`], which the server opens
    /// if the 101 is still what the client gets ([`open`]). A filter that answers something
    /// else drops it, and with it the upstream connection.
    pub fn agreed(self, response: &mut Response<hyper::body::Incoming>) {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let upstream = hyper::upgrade::on(&mut *response);
        response.extensions_mut().insert(Tunnel {
            client: self.client,
            upstream,
            held: None,
        });
    }
}

/// Both sides of a switch to WebSocket the upstream agreed to, and what the tunnel keeps
/// until it ends.
#[derive(Clone)]
pub struct Tunnel {
    client: OnUpgrade,
    upstream: OnUpgrade,
    held: Option<Arc<dyn Any + Send + Sync>>,
}

/// Keeps `held` (a balancer's in-flight mark, say) until the tunnel `response` carries ends;
/// dropped with the response if it carries none.
pub fn hold<B>(response: &mut Response<B>, held: impl Any + Send + Sync) {
    if let Some(tunnel) = response.extensions_mut().get_mut::<Tunnel>() {
        tunnel.held = Some(Arc::new(held));
    }
}

/// Whether `response` (a 101) carries a switch weir asked for.
pub fn is_agreed<B>(response: &Response<B>) -> bool {
    response.extensions().get::<Tunnel>().is_some()
}

/// Called by the server with each response it is about to write: when it is a 101 that
/// carries a [`Tunnel`], joins the client's connection and the upstream's, in a task of its
/// own, once the 101 has been written; bytes are copied both ways until either side closes.
/// A tunnel on any other response is dropped, closing the upstream connection.
pub fn open<B>(response: &mut Response<B>) {
    let Some(tunnel) = response.extensions_mut().remove::<Tunnel>() else {
        return;
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // A filter answered something else: the client is not told of a switch either.
        response.headers_mut().remove(header::UPGRADE);
        response.headers_mut().remove(header::CONNECTION);
        return;
    }
    tokio::spawn(async move {
        let _held = tunnel.held;
        let (client, upstream) = match tokio::try_join!(tunnel.client, tunnel.upstream) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket switch not completed");
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((sent, received)) => tracing::debug!(sent, received, "WebSocket closed"),
            Err(e) => tracing::debug!(error = %e, "WebSocket ended"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn websocket_is_asked_for_by_both_headers_in_any_case() {
        let yes = [
            headers(&[("upgrade", "websocket"), ("connection", "Upgrade")]),
            headers(&[
                ("upgrade", "WebSocket"),
                ("connection", "keep-alive, upgrade"),
            ]),
        ];
        for h in &yes {
            assert!(asks_for_websocket(h), "{h:?}");
        }
        let no = [
            headers(&[("upgrade", "websocket")]),
            headers(&[("connection", "upgrade")]),
            headers(&[("upgrade", "h2c"), ("connection", "upgrade")]),
            headers(&[("upgrade", "websocketx"), ("connection", "upgrade")]),
        ];
        for h in &no {
            assert!(!asks_for_websocket(h), "{h:?}");
        }
    }
}
