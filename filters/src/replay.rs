//! Keeping a request so that it can be sent more than once (Retry, a CircuitBreaker fallback),
//! when its body is small enough to keep.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::Request;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::{Body, BoxError, Exchange};

/// A request read into memory.
pub enum Replay {
    /// The body, whole: the exchange can be sent again with it.
    Kept(Bytes),
    /// The body is larger than the cap: here it is whole again (what was read, then the
    /// rest), to be sent once.
    TooLarge(Body),
    /// The client's body failed while being read.
    Failed,
}

/// Reads `body` if it is at most `cap` bytes; otherwise gives back a body that streams it all.
pub async fn read_replayable(mut body: Body, cap: usize) -> Replay {
    if body.is_end_stream() {
        return Replay::Kept(Bytes::new());
    }
    if body.size_hint().lower() > cap as u64 {
        return Replay::TooLarge(body);
    }
    let mut kept = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Replay::Kept(kept.freeze()),
            Some(Err(_)) => return Replay::Failed,
            Some(Ok(frame)) => {
                // Trailers are not kept: a replayed request is sent without them.
                if let Ok(data) = frame.into_data() {
                    kept.extend_from_slice(&data);
                    if kept.len() > cap {
                        return Replay::TooLarge(Body::boxed(Chain {
                            first: Some(kept.freeze()),
                            rest: body,
                        }));
                    }
                }
            }
        }
    }
}

/// Bytes already read, then the rest of the body.
struct Chain {
    first: Option<Bytes>,
    rest: Body,
}

impl http_body::Body for Chain {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, |b| b.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

impl Exchange {
    /// A copy of this exchange with `body`: same head (method, uri, version, headers), same
    /// variables and routing facts. Request extensions are not copied.
    pub fn replay(&self, body: Bytes) -> Exchange {
        let mut request = Request::new(if body.is_empty() {
            Body::Empty
        } else {
            Body::full(body)
        });
        *request.method_mut() = self.request.method().clone();
        *request.uri_mut() = self.request.uri().clone();
        *request.version_mut() = self.request.version();
        *request.headers_mut() = self.request.headers().clone();
        Exchange {
            request,
            vars: self.vars.clone(),
            client: self.client,
            tls: self.tls,
            route_id: self.route_id.clone(),
            preserve_host: self.preserve_host,
            stripped_prefix: self.stripped_prefix.clone(),
            request_id: self.request_id,
            forwards: self.forwards,
            balance: self.balance,
            tried_instances: self.tried_instances.clone(),
            cut_off: self.cut_off.clone(),
        }
    }
}
