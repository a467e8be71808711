//! [`ConnectorLayer`]: the [`Connector`] as a tower `Layer`.

use freshpool_expiry::EstimatorConfig;
use tower_layer::Layer;

use crate::connector::Connector;

/// A tower [`Layer`] that wraps a connector in a [`Connector`], for code
/// that assembles its connector with `tower::ServiceBuilder`.
///
/// `ServiceBuilder::new().layer(ConnectorLayer::new()).service(http)` is
/// `Connector::new(http)`; [`with_config`](ConnectorLayer::with_config) is
/// [`Connector::with_config`]. The layer goes *outside* a TLS layer
/// (hyper-rustls's `HttpsConnector` is the service it wraps), so that the
/// connections it follows carry plain HTTP.
///
/// Each call of [`layer`](Layer::layer) makes a new [`Connector`] with
/// estimates, counters and a driver of its own; clone the `Connector` to
/// share them, as with [`Connector::new`].
///
/// ```
/// use bytes::Bytes;
/// use freshpool_legacy::{Connector, ConnectorLayer};
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
/// use tower_layer::Layer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let connector: Connector<HttpConnector> = ConnectorLayer::new().layer(HttpConnector::new());
/// let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
/// # drop(client);
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectorLayer {
    config: EstimatorConfig,
}

impl ConnectorLayer {
    /// A layer making [`Connector`]s with the default estimator settings,
    /// as [`Connector::new`].
    pub fn new() -> ConnectorLayer {
        ConnectorLayer::default()
    }

    /// A layer making [`Connector`]s with the given estimator settings, as
    /// [`Connector::with_config`].
    pub fn with_config(config: EstimatorConfig) -> ConnectorLayer {
        ConnectorLayer { config }
    }
}

impl<C> Layer<C> for ConnectorLayer {
    type Service = Connector<C>;

    fn layer(&self, inner: C) -> Connector<C> {
        Connector::with_config(inner, self.config)
    }
}
