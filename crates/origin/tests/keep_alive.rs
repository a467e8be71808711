//! The `Keep-Alive` response header in each advertisement mode.

mod support;

use std::time::Duration;

use freshpool_origin::{Advertise, Origin};
use support::Conn;

/// The `keep-alive` header of each response on one connection.
async fn advertised(origin: &Origin, requests: usize) -> Vec<Option<String>> {
    let mut conn = Conn::open(origin).await;
    let mut values = Vec::new();
    for _ in 0..requests {
        conn.get("").await;
        let response = conn.response().await.expect("response");
        values.push(response.header("keep-alive").map(str::to_owned));
    }
    values
}

async fn start(idle: Duration, advertise: Advertise) -> Origin {
    Origin::builder()
        .idle_timeout(idle)
        .advertise(advertise)
        .start()
        .await
        .expect("start origin")
}

#[tokio::test(start_paused = true)]
async fn none_sends_no_header() {
    let origin = start(Duration::from_secs(2), Advertise::None).await;
    assert_eq!(advertised(&origin, 2).await, [None, None]);
}

#[tokio::test(start_paused = true)]
async fn truthful_sends_whole_seconds_rounded_down() {
    let origin = start(Duration::from_millis(2500), Advertise::Truthful).await;
    assert_eq!(advertised(&origin, 1).await, [Some("timeout=2".to_owned())]);
    // Below one second the only truthful whole number is 0.
    let origin = start(Duration::from_millis(200), Advertise::Truthful).await;
    assert_eq!(advertised(&origin, 1).await, [Some("timeout=0".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn truthful_counts_down_max_and_the_last_response_closes() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(1))
        .advertise(Advertise::Truthful)
        .max_requests(3)
        .start()
        .await
        .expect("start origin");
    let values = advertised(&origin, 3).await;
    assert_eq!(
        values,
        [
            Some("timeout=1, max=2".to_owned()),
            Some("timeout=1, max=1".to_owned()),
            None
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn false_claims_a_different_timeout() {
    let origin = start(
        Duration::from_secs(1),
        Advertise::False(Duration::from_secs(30)),
    )
    .await;
    assert_eq!(
        advertised(&origin, 1).await,
        [Some("timeout=30".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn value_is_sent_verbatim() {
    let raw = "timeout=0.2, max=\"3\", bogus";
    let origin = start(Duration::from_secs(1), Advertise::Value(raw.to_owned())).await;
    assert_eq!(advertised(&origin, 1).await, [Some(raw.to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_value_is_refused_at_start() {
    let err = Origin::builder()
        .advertise(Advertise::Value("timeout=1\r\nx: y".to_owned()))
        .start()
        .await
        .expect_err("header injection");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Keep-Alive"), "{err}");
}
