//! HTTP/2 over the origin's h2c: requests share one connection, and a
//! GOAWAY in the middle of a run loses no request and duplicates none.

use std::time::Duration;

use freshpool_origin::Origin;
use freshpool_tests::{TestClient, send};
use http::Method;

fn h2_client() -> TestClient {
    freshpool::Client::builder()
        .http2_only(true)
        .build_http()
        .expect("settings")
}

/// Sends `count` requests at once, each with its own `x-request-id`
/// (`prefix-i`) and a response delayed `delay_ms`; panics naming `what`
/// if one fails.
async fn at_once(
    client: &TestClient,
    method: Method,
    url: &str,
    count: usize,
    (prefix, delay_ms): (&str, &str),
    what: &str,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (client, method, url) = (client.clone(), method.clone(), url.to_owned());
        let id = format!("{prefix}-{i}");
        let delay = delay_ms.to_owned();
        tasks.spawn(async move {
            send(
                &client,
                method,
                &url,
                &[("x-request-id", &id), ("x-delay-ms", &delay)],
            )
            .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect(what);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_connection() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client = h2_client();
    let url = format!("{}/h2", origin.base_url());
    send(&client, Method::GET, &url, &[])
        .await
        .expect("first request");
    at_once(&client, Method::POST, &url, 50, ("h2", "10"), "request").await;
    let stats = origin.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.h2_connections, 1);
    assert_eq!(stats.requests_processed, 51);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goaway_mid_run_loses_no_request() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .h2_goaway_after(7)
        .start()
        .await
        .expect("origin");
    let client = h2_client();
    let url = format!("{}/h2", origin.base_url());
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let client = client.clone();
        let url = url.clone();
        tasks.spawn(async move {
            for i in 0..25 {
                let id = format!("w{worker}-{i}");
                send(&client, Method::POST, &url, &[("x-request-id", &id)]).await?;
            }
            Ok::<_, freshpool::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task")
            .expect("no request may fail across a GOAWAY");
    }
    let stats = origin.stats();
    assert!(stats.h2_goaways >= 10, "{stats:?}");
    assert_eq!(stats.requests_processed, 200, "{stats:?}");
    assert_eq!(stats.duplicate_requests, 0, "{stats:?}");
    assert_eq!(origin.request_ids(), 200);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_opens_another_and_first_requests_wait_for_one() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder()
        .http2_only(true)
        .http2_max_streams_per_connection(4)
        .build_http()
        .expect("settings");
    let url = format!("{}/h2", origin.base_url());
    // Twelve requests at once, none connected yet: they must not open
    // twelve connections, and four streams fill a connection.
    at_once(&client, Method::GET, &url, 12, ("s", "50"), "request").await;
    let stats = origin.stats();
    assert!(
        (3..=4).contains(&stats.connections_accepted),
        "four streams per connection: {stats:?}"
    );
    assert_eq!(stats.requests_processed, 12);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_ends_wakes_a_request_waiting_for_one() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    // One connection of two streams: six requests of 100 ms take three
    // rounds. A waiter not woken when a stream ends waits its whole
    // checkout timeout and fails.
    let timeout = Duration::from_secs(3);
    let client: TestClient = freshpool::Client::builder()
        .http2_only(true)
        .http2_max_streams_per_connection(2)
        .max_connections_per_host(1)
        .checkout_timeout(timeout)
        .build_http()
        .expect("settings");
    let url = format!("{}/h2", origin.base_url());
    send(&client, Method::GET, &url, &[])
        .await
        .expect("connect");
    let started = tokio::time::Instant::now();
    at_once(
        &client,
        Method::GET,
        &url,
        6,
        ("wait", "100"),
        "woken when a stream ended",
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < timeout,
        "no request waited out its checkout: {elapsed:?}"
    );
    let stats = origin.stats();
    assert_eq!(stats.connections_accepted, 1, "{stats:?}");
    assert_eq!(stats.requests_processed, 7);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_its_lifetime_drains_and_new_streams_go_to_a_new_one() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder()
        .http2_only(true)
        .max_lifetime(Duration::from_millis(200), Duration::ZERO)
        .build_http()
        .expect("settings");
    let url = format!("{}/h2", origin.base_url());
    let (_, first, _) = send(&client, Method::GET, &url, &[])
        .await
        .expect("connect");
    // In flight across the lifetime's end: it must finish.
    let slow = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(
            async move { send(&client, Method::GET, &url, &[("x-delay-ms", "500")]).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, second, _) = send(&client, Method::GET, &url, &[])
        .await
        .expect("after the lifetime");
    assert_ne!(first, second, "a new stream went to a new connection");
    let (_, on, _) = slow
        .await
        .expect("task")
        .expect("the in-flight stream finished");
    assert_eq!(on, first);
    let stats = origin.stats();
    assert_eq!(stats.connections_accepted, 2, "{stats:?}");
    assert_eq!(client.stats().total.retired_by_expiry, 1);
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_retired_at_the_idle_timeout() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder()
        .http2_only(true)
        .pool_idle_timeout(Duration::from_millis(150))
        .build_http()
        .expect("settings");
    let url = format!("{}/h2", origin.base_url());
    let (_, first, _) = send(&client, Method::GET, &url, &[])
        .await
        .expect("connect");
    // Busy streams keep it, however long they take.
    let (_, busy, _) = send(&client, Method::GET, &url, &[("x-delay-ms", "250")])
        .await
        .expect("busy");
    assert_eq!(busy, first);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (_, second, _) = send(&client, Method::GET, &url, &[])
        .await
        .expect("after the idle timeout");
    assert_ne!(first, second);
    assert_eq!(origin.stats().connections_accepted, 2);
    origin.shutdown().await;
}
