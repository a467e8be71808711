//! tower composition, in paused tokio time against `freshpool-origin`:
//! `ConnectorLayer` under `ServiceBuilder` gives hyper-util's `Client` a
//! working `Connector`, and `freshpool::Client` runs under tower's timeout,
//! concurrency limit and buffer.

use std::time::Duration;

use bytes::Bytes;
use freshpool_legacy::{ConnectorLayer, EstimatorConfig};
use freshpool_origin::Origin;
use freshpool_tests::TestClient;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// An origin that keeps idle connections for ten minutes: nothing in these
/// tests is closed by the server.
async fn patient_origin() -> Origin {
    Origin::builder()
        .idle_timeout(Duration::from_secs(600))
        .start()
        .await
        .expect("origin starts on loopback")
}

fn request(origin: &Origin, delay_ms: u64) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("{}/t", origin.base_url()))
        .header("x-delay-ms", delay_ms.to_string())
        .body(Full::default())
        .expect("valid request")
}

#[tokio::test(start_paused = true)]
async fn connector_layer_builds_a_connector_with_its_settings() {
    let origin = patient_origin().await;
    // Nothing is advertised, so the layer's 2 s default timeout decides:
    // that deadline is the client's own, so idle connections are retired
    // at exactly 2 s (no margin).
    let config = EstimatorConfig {
        default_timeout: Duration::from_secs(2),
        ..EstimatorConfig::default()
    };
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    let connector = ServiceBuilder::new()
        .layer(ConnectorLayer::with_config(config))
        .service(http);
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector.clone());
    let url: http::Uri = format!("{}/l", origin.base_url()).parse().expect("url");

    let get = |url: http::Uri| {
        let client = client.clone();
        async move {
            let response = client.get(url).await.expect("response");
            let id = response.headers()["x-connection-id"].clone();
            response.into_body().collect().await.expect("body");
            id
        }
    };
    let first = get(url.clone()).await;
    tokio::time::sleep(Duration::from_millis(1_900)).await;
    assert_eq!(connector.stats().retired, 0);
    // Still within the retire time: reused.
    assert_eq!(get(url.clone()).await, first);

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let stats = connector.stats();
    assert_eq!((stats.connections, stats.retired), (1, 1), "{stats:?}");
    assert_ne!(get(url).await, first, "a retired connection is not reused");
    assert_eq!(origin.stats().connections_accepted, 2);
    assert_eq!(origin.stats().idle_closes_fin, 0, "the server never closed");
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_client_runs_under_buffer_concurrency_limit_and_timeout() {
    let origin = patient_origin().await;
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    let service = ServiceBuilder::new()
        .buffer(16)
        .concurrency_limit(2)
        .timeout(Duration::from_millis(500))
        .service(client.clone());

    // Six requests at once, each taking 100 ms at the server: the limit lets
    // two through at a time, so the pool needs two connections, and reuses
    // them for the other four.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let mut service = service.clone();
        let req = request(&origin, 100);
        calls.spawn(async move {
            let response = service.ready().await?.call(req).await?;
            response.into_body().collect().await?;
            Ok::<_, BoxError>(())
        });
    }
    while let Some(done) = calls.join_next().await {
        done.expect("call task").expect("request under the limit");
    }
    let stats = client.stats().total;
    assert_eq!(
        (stats.requests, stats.connections_opened, stats.reused),
        (6, 2, 4),
        "{stats:?}"
    );
    assert_eq!(origin.stats().connections_accepted, 2);

    // A response slower than the timeout is abandoned with tower's error,
    // and its connection is not handed out again.
    let error = service
        .clone()
        .oneshot(request(&origin, 2_000))
        .await
        .expect_err("times out");
    assert!(
        error.is::<tower::timeout::error::Elapsed>(),
        "unexpected error: {error}"
    );
    let response = service
        .clone()
        .oneshot(request(&origin, 0))
        .await
        .expect("the next request is served");
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.expect("body");
    assert_eq!(client.stats().total.requests, 8);
    origin.shutdown().await;
}
