//! `RetryClient`'s rules (RFC 9112 §9.3.1) over hyper-util's real `Client`,
//! against `freshpool-origin` on loopback. A request with
//! `x-reset-after-read` is read whole and processed by the origin, which
//! then resets the connection without a response: exactly the failure
//! that may or may not be retried.

mod support;

use std::time::Duration;

use bytes::Bytes;
use freshpool_legacy::{Connector, Refusal, RetryClient, RetryPolicy};
use freshpool_origin::{Advertise, Origin};
use http::Method;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use support::{http, origin};

type Retrying = RetryClient<HttpConnector, Full<Bytes>>;

fn retry_client() -> Retrying {
    RetryClient::new(Client::builder(TokioExecutor::new()).build(Connector::new(http())))
}

fn request(
    origin: &Origin,
    method: Method,
    id: &str,
    extra: &[(&str, &str)],
) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("{}/", origin.base_url()))
        .header("x-request-id", id);
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::from_static(b"payload")))
        .expect("valid request")
}

/// Makes the client's one pooled connection a reused one.
async fn warm_up(client: &Retrying, origin: &Origin) {
    let response = client
        .request(request(origin, Method::GET, "warm-up", &[]))
        .await
        .expect("warm-up request");
    response.into_body().collect().await.expect("warm-up body");
}

async fn reset_after_read(
    method: Method,
    id: &str,
    extra: &[(&str, &str)],
) -> (freshpool_legacy::Error, u32) {
    let origin = origin(Duration::from_secs(30), Advertise::None).await;
    let client = retry_client();
    warm_up(&client, &origin).await;
    let mut headers = vec![("x-reset-after-read", "1")];
    headers.extend_from_slice(extra);
    let error = client
        .request(request(&origin, method, id, &headers))
        .await
        .expect_err("the origin resets every attempt");
    let processed = origin.processed(id);
    origin.shutdown().await;
    (error, processed)
}

#[tokio::test]
async fn a_post_that_reached_the_server_is_not_retried() {
    let (error, processed) = reset_after_read(Method::POST, "post", &[]).await;
    assert_eq!(processed, 1, "processed exactly once");
    assert_eq!(error.attempts(), 1);
    assert_eq!(error.refusal(), Some(Refusal::NotIdempotent));
    assert!(error.to_string().contains("not idempotent"), "{error}");
    assert!(error.client_error().is_some());
}

#[tokio::test]
async fn an_idempotent_request_is_retried_once_then_refused_on_a_fresh_connection() {
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let (error, processed) = reset_after_read(method.clone(), "idem", &[]).await;
        assert_eq!(processed, 2, "{method}: the retry reached the server");
        assert_eq!(error.attempts(), 2, "{method}");
        // The retry needed a new connection, whose failure is not a race.
        assert_eq!(error.refusal(), Some(Refusal::FreshConnection), "{method}");
    }
}

#[tokio::test]
async fn an_idempotency_key_makes_a_post_retryable() {
    let (error, processed) =
        reset_after_read(Method::POST, "keyed", &[("idempotency-key", "k-1")]).await;
    assert_eq!(processed, 2);
    assert_eq!(error.attempts(), 2);
    assert_eq!(error.refusal(), Some(Refusal::FreshConnection));
}

#[tokio::test]
async fn retries_can_be_switched_off() {
    let origin = origin(Duration::from_secs(30), Advertise::None).await;
    let client = retry_client().with_policy(RetryPolicy {
        retries: 0,
        ..RetryPolicy::default()
    });
    warm_up(&client, &origin).await;
    let error = client
        .request(request(
            &origin,
            Method::GET,
            "off",
            &[("x-reset-after-read", "1")],
        ))
        .await
        .expect_err("reset");
    assert_eq!(error.refusal(), Some(Refusal::Disabled));
    assert_eq!(origin.processed("off"), 1);
    origin.shutdown().await;
}

#[tokio::test]
async fn a_body_beyond_the_replay_cap_is_not_retried() {
    let origin = origin(Duration::from_secs(30), Advertise::None).await;
    let client: RetryClient<HttpConnector, StreamBody<_>> =
        RetryClient::new(Client::builder(TokioExecutor::new()).build(Connector::new(http())))
            .with_replay_cap(4);
    let body = |chunks: &'static [&'static [u8]]| {
        StreamBody::new(futures_util::stream::iter(chunks.iter().map(|c| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(c)))
        })))
    };
    let warm = http::Request::get(format!("{}/", origin.base_url()))
        .body(body(&[]))
        .expect("valid request");
    client
        .request(warm)
        .await
        .expect("warm-up")
        .into_body()
        .collect()
        .await
        .expect("warm-up body");
    let req = http::Request::put(format!("{}/", origin.base_url()))
        .header("x-request-id", "big")
        .header("x-reset-after-read", "1")
        .body(body(&[b"more", b" than", b" four"]))
        .expect("valid request");
    let error = client.request(req).await.expect_err("reset");
    assert_eq!(error.refusal(), Some(Refusal::BodyNotReplayable));
    assert_eq!(error.attempts(), 1);
    assert_eq!(origin.processed("big"), 1);
    origin.shutdown().await;
}

#[tokio::test]
async fn a_connect_error_is_reported_as_such() {
    let client = retry_client();
    // A port nothing listens on: bind one, then free it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let req = http::Request::get(format!("http://{addr}/"))
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    let error = client.request(req).await.expect_err("refused");
    assert!(error.is_connect());
    assert_eq!(error.refusal(), None);
    assert_eq!(error.attempts(), 1);
    assert!(error.to_string().contains("connecting failed"), "{error}");
}

#[test]
fn the_error_is_send_sync_and_small() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<freshpool_legacy::Error>();
    assert!(size_of::<freshpool_legacy::Error>() <= 64);
}
