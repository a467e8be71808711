//! Helpers shared by the adapter's integration tests: hyper-util's real
//! `Client` over the adapter, against `freshpool-origin` on loopback.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::time::Duration;

use bytes::Bytes;
use freshpool_legacy::Connector;
use freshpool_origin::{Advertise, CloseMode, Origin};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub(crate) type Body = Full<Bytes>;

/// An origin on loopback with the given idle timeout and advertisement.
pub(crate) async fn origin(idle: Duration, advertise: Advertise) -> Origin {
    Origin::builder()
        .idle_timeout(idle)
        .close_mode(CloseMode::Fin)
        .advertise(advertise)
        .start()
        .await
        .expect("origin starts on loopback")
}

/// hyper-util's `HttpConnector`, without Nagle: paused time jumps ahead
/// whenever the runtime waits, and a small write held back for an ACK would
/// look like a stall.
pub(crate) fn http() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

/// hyper-util's legacy `Client` over the adapter, and the connector (a
/// clone sharing its state) to inspect it.
pub(crate) fn client() -> (
    Client<Connector<HttpConnector>, Body>,
    Connector<HttpConnector>,
) {
    let connector = Connector::new(http());
    let client = Client::builder(TokioExecutor::new()).build(connector.clone());
    (client, connector)
}

/// What a complete exchange saw.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) status: u16,
    /// The origin's `x-connection-id`.
    pub(crate) connection: u64,
    /// The origin's `x-connection-requests`: 1 on a fresh connection.
    pub(crate) requests_on_connection: u32,
    pub(crate) body_len: usize,
}

fn header<T: std::str::FromStr>(parts: &http::response::Parts, name: &str) -> T {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or_else(|| panic!("the origin sends {name}"))
}

/// Sends a `GET` with the given knob headers and reads the whole body.
pub(crate) async fn get(
    client: &Client<Connector<HttpConnector>, Body>,
    origin: &Origin,
    headers: &[(&str, &str)],
) -> Result<Exchange, hyper_util::client::legacy::Error> {
    let mut req = http::Request::get(format!("{}/", origin.base_url()));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let response = client
        .request(req.body(Body::default()).expect("valid request"))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("whole body").to_bytes();
    Ok(Exchange {
        status: parts.status.as_u16(),
        connection: header(&parts, "x-connection-id"),
        requests_on_connection: header(&parts, "x-connection-requests"),
        body_len: body.len(),
    })
}

/// Lets tasks woken at the current instant (the driver, hyper's connection
/// tasks) run without moving paused time.
pub(crate) async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}
