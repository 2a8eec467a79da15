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
            Body::Upstream(body) => Pin::new(body).poll_frame(cx),
            Body::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::Incoming(body) => body.is_end_stream(),
            Body::Upstream(body) => body.is_end_stream(),
            Body::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Incoming(body) => body.size_hint(),
            Body::Upstream(body) => body.size_hint(),
            Body::Boxed(body) => body.size_hint(),
        }
    }
}

/// An upstream connection lent to the response body being read from it. No task of its own
/// drives the connection: whoever polls the body drives it, and gives it back at the end.
pub trait Lease: Send {
    /// Reads the next frame of the response body, driving the connection (which may also
    /// finish writing the request). `None` at the body's end.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>;

    /// Whether the body has nothing left to read.
    fn is_end_stream(&self) -> bool;

    /// What is known of the body's length.
    fn size_hint(&self) -> SizeHint;

    /// The response was read to its end: the connection can serve another request.
    fn release(self: Box<Self>);
}

/// A response body read from an upstream connection that it holds as a [`Lease`]: read to the
/// end, it hands the connection back; dropped before its end, or after an error, it closes the
/// connection (the rest of the response would otherwise be read as the next one).
pub struct UpstreamBody {
    lease: Option<Box<dyn Lease>>,
}

impl UpstreamBody {
    /// The response body read from `lease`.
    pub fn new(lease: Box<dyn Lease>) -> Self {
        Self { lease: Some(lease) }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("leased", &self.lease.is_some())
            .finish()
    }
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(lease) = &mut this.lease else {
            return Poll::Ready(None);
        };
        let frame = lease.poll_frame(cx);
        match &frame {
            Poll::Ready(None) => {
                if let Some(lease) = this.lease.take() {
                    lease.release();
                }
            }
            // The connection is in an unknown state: closed, never reused.
            Poll::Ready(Some(Err(_))) => this.lease = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.lease
            .as_ref()
            .is_none_or(|lease| lease.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.lease
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |lease| lease.size_hint())
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // A body with nothing left to read (its last frame taken, or none at all, as for a
        // 204 or a HEAD) leaves the connection ready for the next request.
        if let Some(lease) = self.lease.take() {
            if lease.is_end_stream() {
                lease.release();
            }
        }
    }
}
