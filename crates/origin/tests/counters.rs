//! Counters: requests per `x-request-id` (exactly-once checks), the
//! connection log, and connection counts.

mod support;

use freshpool_origin::{CloseReason, Origin, Protocol};
use support::{Conn, wait_until};

#[tokio::test(start_paused = true)]
async fn counts_each_request_id_and_reports_duplicates() {
    let origin = Origin::builder().start().await.expect("start origin");
    let mut conn = Conn::open(&origin).await;
    for id in ["a", "b", "a", "c", "a", "b"] {
        conn.get(&format!("x-request-id: {id}\r\n")).await;
        let response = conn.response().await.expect("response");
        assert_eq!(response.header("x-request-id"), Some(id));
    }
    conn.get("").await;
    conn.response().await.expect("a request without an id");

    assert_eq!((origin.processed("a"), origin.processed("b")), (3, 2));
    assert_eq!((origin.processed("c"), origin.processed("never")), (1, 0));
    assert_eq!(
        origin.duplicates(),
        [("a".to_owned(), 3), ("b".to_owned(), 2)]
    );
    assert_eq!(origin.request_ids(), 3);
    let stats = origin.stats();
    assert_eq!(stats.requests_processed, 7);
    // (3 - 1) + (2 - 1)
    assert_eq!(stats.duplicate_requests, 3);
}

#[tokio::test(start_paused = true)]
async fn logs_each_connection_with_its_requests_and_close() {
    let origin = Origin::builder().start().await.expect("start origin");
    let mut first = Conn::open(&origin).await;
    let mut second = Conn::open(&origin).await;
    for _ in 0..3 {
        first.get("").await;
        first.response().await.expect("response");
    }
    second.get("").await;
    assert_eq!(
        second
            .response()
            .await
            .expect("response")
            .header("x-connection-id"),
        Some("1")
    );
    wait_until("both are open", || origin.stats().max_connections_open == 2).await;
    drop(first);
    drop(second);
    wait_until("both are closed", || origin.stats().connections_open == 0).await;

    let log = origin.connections();
    assert_eq!(log.len(), 2);
    assert_eq!(log.iter().map(|c| c.requests).collect::<Vec<_>>(), [3, 1]);
    for record in &log {
        assert_eq!(record.protocol, Protocol::Http1);
        assert_eq!(record.closed, Some(CloseReason::PeerClosed));
        assert!(record.peer.ip().is_loopback());
    }
    let stats = origin.stats();
    assert_eq!(
        (stats.connections_accepted, stats.max_connections_open),
        (2, 2)
    );
}
