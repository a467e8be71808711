//! One bound each for the connector and the request body, so generic code
//! over [`Client`](crate::Client) does not restate seven.

use http::Uri;
use hyper::rt::{Read, Write};
use hyper_util::client::legacy::connect::Connection;
use tower_service::Service;

use crate::Probe;

/// A connector [`Client`](crate::Client) can use: what
/// [`Client::request`](crate::Client::request) requires of `C`, as one
/// bound.
///
/// It is implemented for every type that meets the requirements (a
/// cloneable `tower::Service<Uri>` whose IO is `hyper::rt::Read + Write +
/// Connection +` [`Probe`]), so it never needs implementing by hand, and
/// the bounds on its associated types are implied wherever `C: Connect` is
/// written:
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Empty};
///
/// /// Fetches a URL's body as text, through any connector.
/// async fn fetch<C: freshpool::Connect>(
///     client: &freshpool::Client<C, Empty<Bytes>>,
///     url: &str,
/// ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
///     let response = client.get(url.parse()?).await?;
///     let body = response.into_body().collect().await?.to_bytes();
///     Ok(String::from_utf8_lossy(&body).into_owned())
/// }
///
/// /// The same, with the body type left generic too.
/// async fn status<C, B>(client: &freshpool::Client<C, B>, request: http::Request<B>) -> u16
/// where
///     C: freshpool::Connect,
///     B: freshpool::RequestBody,
/// {
///     client.request(request).await.map_or(0, |r| r.status().as_u16())
/// }
///
/// # fn main() -> Result<(), freshpool::BuildError> {
/// let client = freshpool::Client::builder().build_http::<Empty<Bytes>>()?;
/// let _ = fetch(&client, "http://127.0.0.1:8080/");
/// let _ = status(&client, http::Request::new(Empty::new()));
/// # Ok(())
/// # }
/// ```
///
/// With the `rustls` feature, hyper-rustls's `HttpsConnector` is one; a
/// connector whose IO cannot be probed becomes one through
/// [`Unprobed`](crate::Unprobed).
pub trait Connect:
    Service<
        Uri,
        Response: Read + Write + Connection + Probe + Unpin + Send + 'static,
        Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<C> Connect for C
where
    C: Service<Uri> + Clone + Send + Sync + 'static,
    C::Response: Read + Write + Connection + Probe + Unpin + Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C::Future: Send + 'static,
{
}

/// A request body [`Client`](crate::Client) can send: what
/// [`Client::request`](crate::Client::request) requires of `B`, as one
/// bound. Implemented for every type that meets the requirements; see
/// [`Connect`] for an example.
pub trait RequestBody:
    http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + Unpin
    + 'static
{
}

impl<B> RequestBody for B
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
}
