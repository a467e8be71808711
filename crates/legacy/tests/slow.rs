//! The adapter never ends a connection that is not idle: a response body
//! read slowly, or a server pausing mid-body, for longer than the retire
//! time, completes correctly. Paused tokio time, real loopback sockets.
//!
//! The origin *claims* `Keep-Alive: timeout=1` but really keeps idle
//! connections for 60 s, so the adapter's retire time (999 ms) passes in
//! the middle of each exchange while the server itself never closes.

mod support;

use std::time::Duration;

use freshpool_origin::{Advertise, Origin};
use http_body_util::BodyExt;
use support::{Body, client, get};
use tokio::time::sleep;

const RETIRE: Duration = Duration::from_millis(999);

async fn origin() -> Origin {
    support::origin(
        Duration::from_secs(60),
        Advertise::False(Duration::from_secs(1)),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_keeps_its_connection() {
    let origin = origin().await;
    let (client, connector) = client();
    let first = get(&client, &origin, &[]).await.expect("first request");

    // The response head arrives at once; the consumer takes its first
    // frame, then waits 1.5 s, far past the connection's retire time, then
    // reads the rest. The body (4 MiB) is larger than socket buffers and
    // hyper's read buffer together, so the server is still writing it.
    let req = http::Request::get(format!("{}/", origin.base_url()))
        .header("x-body-size", "4194304")
        .body(Body::default())
        .expect("valid request");
    let response = client.request(req).await.expect("response head");
    let started = tokio::time::Instant::now();
    let mut body = response.into_body();
    let mut received = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("no error mid-body");
        if received == 0 {
            sleep(Duration::from_millis(1500)).await;
        }
        received += frame.data_ref().map_or(0, |d| d.len());
    }
    assert_eq!(received, 4 << 20);
    assert!(
        started.elapsed() > RETIRE,
        "read over {:?}",
        started.elapsed()
    );
    assert_eq!(connector.stats().retired, 0);

    // Idle again: reused within its new retire time, retired after it.
    sleep(RETIRE / 2).await;
    let third = get(&client, &origin, &[]).await.expect("third request");
    assert_eq!(third.connection, first.connection);
    assert_eq!(third.requests_on_connection, 3);
    sleep(RETIRE + Duration::from_millis(50)).await;
    assert_eq!(connector.stats().retired, 1);
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_pausing_mid_body_keeps_its_connection() {
    let origin = origin().await;
    let (client, connector) = client();
    let first = get(&client, &origin, &[]).await.expect("first request");

    let paused = get(
        &client,
        &origin,
        &[("x-body-size", "100000"), ("x-pause-mid-body-ms", "1500")],
    )
    .await
    .expect("the paused response completes");
    assert_eq!(paused.body_len, 100_000);
    assert_eq!(paused.connection, first.connection);
    assert_eq!(connector.stats().retired, 0);

    let delayed = get(&client, &origin, &[("x-delay-ms", "1500")])
        .await
        .expect("a response head delayed past the retire time completes");
    assert_eq!(delayed.connection, first.connection);
    assert_eq!(delayed.requests_on_connection, 3);
    assert_eq!(connector.stats().retired, 0);
    origin.shutdown().await;
}
