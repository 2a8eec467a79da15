use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;

/// The error type of bodies and services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body. The common cases (a streamed body from hyper, a small body
/// made by weir, no body) need no allocation; anything else is boxed.
#[derive(Debug, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A body held in memory, sent as one frame.
    Full(Option<Bytes>),
    /// A body streamed from a client or an upstream.
    Incoming(Incoming),
    /// A response body read from a pooled upstream connection, which it drives.
    Upstream(UpstreamBody),
    /// Any other body.
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body {
    /// A body holding `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(Some(bytes.into()))
    }

    /// Wraps any body.
    pub fn boxed<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        Body::Boxed(body.map_err(Into::into).boxed_unsync())
    }
}

impl From<Incoming> for Body {
    fn from(body: Incoming) -> Self {
        Body::Incoming(body)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Body::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Body::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::Incoming(body) => body.is_end_stream(),
            Body::Upstream(body) => body.body.is_end_stream(),
            Body::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Incoming(body) => body.size_hint(),
            Body::Upstream(body) => body.body.size_hint(),
            Body::Boxed(body) => body.size_hint(),
        }
    }
}

/// An upstream connection lent to the response body being read from it. No task of its own
/// drives the connection: whoever polls the body drives it, and gives it back at the end.
pub trait Lease: Send {
    /// Drives the connection: reads the response from the socket (and finishes writing the
    /// request). Ready once the connection has ended; the body keeps what was already read.
    fn poll_connection(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// The response was read to its end: the connection can serve another request.
    fn release(self: Box<Self>);
}

/// A response body from an upstream connection that it holds as a [`Lease`]: read to the end,
/// it hands the connection back; dropped before its end, it closes the connection (the rest of
/// the response would otherwise be read as the next one).
pub struct UpstreamBody {
    body: Incoming,
    lease: Option<Box<dyn Lease>>,
}

impl UpstreamBody {
    /// `body`, read from the connection `lease`.
    pub fn new(body: Incoming, lease: Box<dyn Lease>) -> Self {
        Self {
            body,
            lease: Some(lease),
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("body", &self.body)
            .field("leased", &self.lease.is_some())
            .finish()
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(lease) = &mut this.lease {
            if lease.poll_connection(cx).is_ready() {
                this.lease = None;
            }
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            if let Some(lease) = this.lease.take() {
                lease.release();
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body with nothing left to read (its last frame taken, or none at all, as for a
        // 204 or a HEAD) leaves the connection ready for the next request.
        if http_body::Body::is_end_stream(&self.body) {
            if let Some(lease) = self.lease.take() {
                lease.release();
            }
        }
    }
}
