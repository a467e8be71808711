//! The idle timeout, seen from the wire, in paused tokio time: when it
//! fires, what it restarts on, and each close mode.

mod support;

use std::io;
use std::time::Duration;

use freshpool_origin::{CloseMode, CloseReason, Origin};
use support::{Conn, End, wait_until};
use tokio::time::Instant;

const IDLE: Duration = Duration::from_millis(200);

async fn origin(mode: CloseMode) -> Origin {
    Origin::builder()
        .idle_timeout(IDLE)
        .close_mode(mode)
        .start()
        .await
        .expect("start origin")
}

/// Asserts the close came at the idle timeout: not before, and not late.
fn assert_at_idle(elapsed: Duration) {
    assert!(
        elapsed >= IDLE,
        "closed after {elapsed:?}, before the idle timeout"
    );
    assert!(
        elapsed < IDLE + Duration::from_millis(20),
        "closed late, after {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn fin_closes_exactly_at_idle_after_the_response() {
    let origin = origin(CloseMode::Fin).await;
    let mut conn = Conn::open(&origin).await;
    conn.get("").await;
    assert_eq!(conn.response().await.expect("response").status, 200);
    let responded = Instant::now();

    let end = conn.end().await;
    assert!(matches!(&end, End::Fin(rest) if rest.is_empty()), "{end:?}");
    assert_at_idle(responded.elapsed());
    wait_until("the idle close is counted", || {
        origin.stats().idle_closes_fin == 1
    })
    .await;
    let stats = origin.stats();
    assert_eq!((stats.idle_closes_rst, stats.idle_closes_408), (0, 0));
    assert_eq!(
        origin.connections()[0].closed,
        Some(CloseReason::IdleTimeout(CloseMode::Fin))
    );
}

#[tokio::test(start_paused = true)]
async fn rst_mode_resets_the_connection() {
    let origin = origin(CloseMode::Rst).await;
    let mut conn = Conn::open(&origin).await;
    conn.get("").await;
    conn.response().await.expect("response");
    let responded = Instant::now();

    let end = conn.end().await;
    assert!(
        matches!(end, End::Error(io::ErrorKind::ConnectionReset, _)),
        "{end:?}"
    );
    assert_at_idle(responded.elapsed());
    wait_until("the idle reset is counted", || {
        origin.stats().idle_closes_rst == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn timeout_408_mode_writes_a_408_then_closes() {
    let origin = origin(CloseMode::Timeout408).await;
    let mut conn = Conn::open(&origin).await;
    conn.get("").await;
    conn.response().await.expect("response");
    let responded = Instant::now();

    let unsolicited = conn.response().await.expect("the 408");
    assert_at_idle(responded.elapsed());
    assert_eq!(unsolicited.status, 408);
    assert_eq!(unsolicited.header("connection"), Some("close"));
    assert!(matches!(conn.end().await, End::Fin(rest) if rest.is_empty()));
    wait_until("the 408 close is counted", || {
        origin.stats().idle_closes_408 == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_sends_is_closed_at_idle() {
    let origin = origin(CloseMode::Fin).await;
    let opened = Instant::now();
    let mut conn = Conn::open(&origin).await;
    assert!(matches!(conn.end().await, End::Fin(_)));
    assert_at_idle(opened.elapsed());
    wait_until("the idle close is counted", || {
        origin.stats().idle_closes_fin == 1
    })
    .await;
    assert_eq!(origin.stats().requests_processed, 0);
}

#[tokio::test(start_paused = true)]
async fn each_request_before_the_deadline_restarts_the_timer() {
    let origin = origin(CloseMode::Fin).await;
    let mut conn = Conn::open(&origin).await;
    for n in 1..=4 {
        conn.get("").await;
        let response = conn
            .response()
            .await
            .expect("served on the same connection");
        assert_eq!(response.header("x-connection-id"), Some("0"));
        assert_eq!(
            response.header("x-connection-requests"),
            Some(n.to_string().as_str())
        );
        // Just before the deadline: 4 × 190 ms is far past one idle period.
        tokio::time::sleep(IDLE - Duration::from_millis(10)).await;
    }
    let stats = origin.stats();
    assert_eq!((stats.connections_accepted, stats.idle_closes_fin), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn the_timer_starts_after_the_last_response_byte() {
    let origin = origin(CloseMode::Fin).await;
    let mut conn = Conn::open(&origin).await;
    // A response that takes 150 ms of delay plus 3 × 100 ms of pauses while
    // streaming, longer than the idle timeout: no timer runs meanwhile.
    conn.get(
        "x-delay-ms: 150\r\nx-body-size: 30\r\nx-stream-chunks: 4\r\nx-stream-interval-ms: 100\r\n",
    )
    .await;
    let sent = Instant::now();
    let response = conn.response().await.expect("a slow response is not cut");
    assert_eq!(response.body, freshpool_origin::body_pattern(30));
    assert!(sent.elapsed() >= Duration::from_millis(450));

    let responded = Instant::now();
    assert!(matches!(conn.end().await, End::Fin(_)));
    assert_at_idle(responded.elapsed());
}

#[tokio::test(start_paused = true)]
async fn the_first_request_byte_cancels_the_timer() {
    let origin = origin(CloseMode::Rst).await;
    let mut conn = Conn::open(&origin).await;
    // One byte before the deadline, the rest well after it.
    tokio::time::sleep(IDLE - Duration::from_millis(10)).await;
    conn.send("G").await;
    tokio::time::sleep(IDLE * 2).await;
    conn.send("ET / HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert_eq!(conn.response().await.expect("served").status, 200);
    assert_eq!(origin.stats().idle_closes_rst, 0);
}
