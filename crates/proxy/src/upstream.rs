//! The client a [`Proxy`](crate::Proxy) forwards with, behind one small
//! trait that both `freshpool::Client` and hyper-util's legacy `Client`
//! implement.

use std::error::Error as StdError;
use std::future::Future;

use bytes::Bytes;
use freshpool::Probe;
use http::{Request, Response, Uri};
use hyper::rt::{Read, Write};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::{Connect, Connection};
use tower_service::Service;

use crate::body::{BoxError, RequestBody};

/// An HTTP client the proxy sends upstream requests with.
///
/// Implemented for [`freshpool::Client`] (the point of this crate) and for
/// hyper-util's legacy [`Client`](LegacyClient) (so the same proxy can be
/// measured on both). The proxy calls [`send`](Upstream::send) once per
/// request and never retries: whatever retry the client does is its own
/// (freshpool's follow RFC 9112 §9.3.1, and an `Idempotency-Key` from the
/// client is passed on for them).
pub trait Upstream: Send + Sync + 'static {
    /// The response body.
    type Body: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;
    /// The client's error.
    type Error: StdError + Send + Sync + 'static;
    /// The future of a response head.
    type Future: Future<Output = Result<Response<Self::Body>, Self::Error>> + Send + 'static;

    /// Sends `req` (an absolute URI) and resolves to the response head.
    fn send(&self, req: Request<RequestBody>) -> Self::Future;

    /// Whether `error` says the connection to the upstream could not be
    /// made (nothing was sent).
    fn is_connect_error(error: &Self::Error) -> bool;

    /// The client's pool counters, when it keeps any.
    fn pool_stats(&self) -> Option<freshpool::Stats> {
        None
    }
}

impl<C> Upstream for freshpool::Client<C, RequestBody>
where
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: Read + Write + Connection + Probe + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
{
    type Body = freshpool::Body;
    type Error = freshpool::Error;
    type Future = freshpool::ResponseFuture;

    fn send(&self, req: Request<RequestBody>) -> Self::Future {
        self.request(req)
    }

    fn is_connect_error(error: &freshpool::Error) -> bool {
        error.is_connect()
    }

    fn pool_stats(&self) -> Option<freshpool::Stats> {
        Some(self.stats())
    }
}

impl<C> Upstream for LegacyClient<C, RequestBody>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    type Body = hyper::body::Incoming;
    type Error = hyper_util::client::legacy::Error;
    type Future = hyper_util::client::legacy::ResponseFuture;

    fn send(&self, req: Request<RequestBody>) -> Self::Future {
        self.request(req)
    }

    fn is_connect_error(error: &Self::Error) -> bool {
        error.is_connect()
    }
}
