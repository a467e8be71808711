//! The clients every race runs, one per sender: hyper-util's legacy
//! `Client` as is (in the crate root, the baseline), `freshpool::Client`,
//! hyper-util over `freshpool_legacy::Connector`, and `RetryClient` over
//! that.

use bytes::Bytes;
use freshpool_legacy::{Connector, RetryClient};
use freshpool_origin::Origin;
use http_body_util::Full;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::{Captured, Outcome, Report, Schedule, exchange, post, race};

type Body = Full<Bytes>;

/// `freshpool::Client` with default settings, one per sender. An error is
/// tagged as after learning once the client has observed a server close.
pub async fn run_freshpool(name: &str, origin: &Origin, schedule: Schedule) -> Report {
    race(name, origin, schedule, || {
        let client = freshpool::Client::builder()
            .build_http::<Body>()
            .expect("default settings are valid");
        move |url, id| {
            let client = client.clone();
            async move {
                let stats = client.stats();
                let learned = stats.total.server_closes_observed > 0;
                let retire = stats.origins.first().and_then(|(_, o)| o.retire_after);
                let mut req = post(url, id, false);
                let captured = Captured::native(&mut req);
                let result = exchange(captured, client.request(req), learned).await;
                Outcome { result, retire }
            }
        }
    })
    .await
}

/// hyper-util's legacy `Client` with only its connector swapped for
/// freshpool-legacy's, one per sender.
pub async fn run_swapped(name: &str, origin: &Origin, schedule: Schedule) -> Report {
    race(name, origin, schedule, || {
        let connector = Connector::new(HttpConnector::new());
        let client: LegacyClient<_, Body> =
            LegacyClient::builder(TokioExecutor::new()).build(connector.clone());
        move |url, id| {
            let (client, connector) = (client.clone(), connector.clone());
            async move {
                let learned = connector.stats().server_closes > 0;
                let mut req = post(url, id, false);
                let retire = connector.retire_after(req.uri());
                let captured = Captured::legacy(&mut req);
                let result = exchange(captured, client.request(req), learned).await;
                Outcome { result, retire }
            }
        }
    })
    .await
}

/// [`run_swapped`]'s client wrapped in `RetryClient`; its POSTs carry an
/// `Idempotency-Key`, so RFC 9112 lets it retry them.
pub async fn run_retry_client(name: &str, origin: &Origin, schedule: Schedule) -> Report {
    race(name, origin, schedule, || {
        let connector = Connector::new(HttpConnector::new());
        let client: RetryClient<HttpConnector, Body> =
            RetryClient::new(LegacyClient::builder(TokioExecutor::new()).build(connector.clone()));
        move |url, id| {
            let (client, connector) = (client.clone(), connector.clone());
            async move {
                let req = post(url, id, true);
                let retire = connector.retire_after(req.uri());
                let captured = Captured::Unasked;
                let result = exchange(captured, client.request(req), false).await;
                Outcome { result, retire }
            }
        }
    })
    .await
}
