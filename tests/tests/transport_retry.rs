//! RFC 9112 §9.3.1 retries over loopback: what is retried, what is not,
//! and that the origin processed each request the expected number of times.

use std::time::Duration;

use freshpool::retry::Refusal;
use freshpool_origin::Origin;
use freshpool_tests::{TestClient, send};
use http::Method;

async fn setup() -> (Origin, TestClient, String) {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    let url = format!("{}/r", origin.base_url());
    // Warm one connection so the next request runs on a reused one.
    send(&client, Method::GET, &url, &[])
        .await
        .expect("warm-up");
    (origin, client, url)
}

#[tokio::test]
async fn a_post_that_reached_the_server_is_not_retried() {
    let (origin, client, url) = setup().await;
    let err = send(
        &client,
        Method::POST,
        &url,
        &[("x-request-id", "pay-1"), ("x-reset-after-read", "1")],
    )
    .await
    .expect_err("the server reset after reading");
    assert!(err.is_request() && err.is_reused_connection(), "{err:?}");
    assert_eq!(err.retry_refusal(), Some(Refusal::NotIdempotent), "{err}");
    assert_eq!(err.attempts(), 1);
    assert_eq!(origin.processed("pay-1"), 1, "processed exactly once");
    assert_eq!(client.stats().total.retries(), 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn an_idempotent_request_is_retried_on_a_fresh_connection() {
    let (origin, client, url) = setup().await;
    let err = send(
        &client,
        Method::PUT,
        &url,
        &[("x-request-id", "put-1"), ("x-reset-after-read", "1")],
    )
    .await
    .expect_err("every attempt is reset");
    // The retry ran on a fresh connection, whose failure is never retried.
    assert_eq!(err.attempts(), 2, "{err:?}");
    assert_eq!(err.retry_refusal(), Some(Refusal::FreshConnection), "{err}");
    assert!(!err.is_reused_connection());
    assert_eq!(origin.processed("put-1"), 2);
    let total = client.stats().total;
    assert_eq!(total.retries_idempotent, 1);
    assert_eq!(
        total.requests, 2,
        "the warm-up and the PUT, not its attempts"
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn an_idempotency_key_makes_a_post_retryable_unless_disabled() {
    let (origin, client, url) = setup().await;
    let headers = [
        ("x-request-id", "key-1"),
        ("idempotency-key", "k1"),
        ("x-reset-after-read", "1"),
    ];
    let err = send(&client, Method::POST, &url, &headers)
        .await
        .expect_err("reset");
    assert_eq!(err.attempts(), 2, "{err:?}");
    assert_eq!(client.stats().total.retries_idempotency_key, 1);

    let strict: TestClient = freshpool::Client::builder()
        .idempotency_key_retries(false)
        .build_http()
        .expect("settings");
    send(&strict, Method::GET, &url, &[])
        .await
        .expect("warm-up");
    let headers = [
        ("x-request-id", "key-2"),
        ("idempotency-key", "k2"),
        ("x-reset-after-read", "1"),
    ];
    let err = send(&strict, Method::POST, &url, &headers)
        .await
        .expect_err("reset");
    assert_eq!(err.retry_refusal(), Some(Refusal::NotIdempotent));
    assert_eq!(origin.processed("key-2"), 1);
    origin.shutdown().await;
}

#[tokio::test]
async fn a_failure_after_the_response_started_is_never_retried() {
    let (origin, client, url) = setup().await;
    let req = http::Request::get(&url)
        .header("x-request-id", "cut-1")
        .header("x-body-size", "1000")
        .header("x-close-mid-body", "rst")
        .body(http_body_util::Full::default())
        .expect("request");
    // The head arrives, so the request itself succeeds; its body fails.
    let response = client.request(req).await.expect("response head");
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert!(body.is_err(), "the body was cut off");
    assert_eq!(origin.processed("cut-1"), 1);
    assert_eq!(client.stats().total.retries(), 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn retries_can_be_switched_off() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder()
        .retries(0)
        .build_http()
        .expect("settings");
    let url = format!("{}/r", origin.base_url());
    send(&client, Method::GET, &url, &[])
        .await
        .expect("warm-up");
    let err = send(
        &client,
        Method::GET,
        &url,
        &[("x-request-id", "g"), ("x-reset-after-read", "1")],
    )
    .await
    .expect_err("reset");
    assert_eq!(err.retry_refusal(), Some(Refusal::Disabled));
    assert_eq!(origin.processed("g"), 1);
    origin.shutdown().await;
}

#[tokio::test]
async fn a_retry_connects_fresh_past_other_pooled_connections_and_is_final() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    let url = format!("{}/r", origin.base_url());
    // Three requests at once park three connections.
    let slow = [("x-delay-ms", "50")];
    let (a, b, c) = tokio::join!(
        send(&client, Method::GET, &url, &slow),
        send(&client, Method::GET, &url, &slow),
        send(&client, Method::GET, &url, &slow),
    );
    for done in [a, b, c] {
        done.expect("warm-up");
    }
    assert_eq!(client.stats().total.idle, 3);
    assert_eq!(origin.stats().connections_accepted, 3);

    // Every connection this request reaches resets: the pooled one it
    // starts on, and the one it is retried on.
    let err = send(
        &client,
        Method::PUT,
        &url,
        &[("x-request-id", "put-3"), ("x-reset-after-read", "1")],
    )
    .await
    .expect_err("every attempt is reset");
    assert_eq!(
        err.attempts(),
        2,
        "one retry, and its failure is final: {err:?}"
    );
    assert_eq!(err.retry_refusal(), Some(Refusal::FreshConnection), "{err}");
    assert!(!err.is_reused_connection(), "the retry connected fresh");
    assert_eq!(origin.processed("put-3"), 2);
    let stats = origin.stats();
    assert_eq!(
        stats.connections_accepted, 4,
        "the retry connected: {stats:?}"
    );
    let total = client.stats().total;
    assert_eq!(
        total.idle, 2,
        "the other pooled connections were left alone"
    );
    assert_eq!(total.retries_idempotent, 1);
    assert_eq!(total.requests, 4, "a retry is not a request: {total:?}");
    origin.shutdown().await;
}
