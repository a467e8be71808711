//! Orders from the handle to idle connections, in paused tokio time:
//! `close_idle` closes exactly the idle ones, and `set_idle_timeout`
//! changes the timeout of idle connections at once and of later ones.

mod support;

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

/// A connection that has been answered once and is now idle.
async fn idle_conn(origin: &Origin) -> Conn {
    let mut conn = Conn::open(origin).await;
    conn.get("").await;
    assert_eq!(conn.response().await.expect("response").status, 200);
    conn
}

#[tokio::test(start_paused = true)]
async fn close_idle_closes_every_idle_connection_and_only_those() {
    let origin = origin(CloseMode::Fin).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(idle_conn(&origin).await);
    }
    // Accepted, no byte yet: idle too.
    let mut silent = Conn::open(&origin).await;
    // Busy: its response is 100 ms away when the order comes.
    let mut busy = Conn::open(&origin).await;
    busy.get("x-delay-ms: 100\r\n").await;
    wait_until("five connections are open", || {
        origin.stats().connections_open == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let ordered = Instant::now();
    origin.close_idle();
    for conn in idle.iter_mut().chain([&mut silent]) {
        let end = conn.end().await;
        assert!(matches!(&end, End::Fin(rest) if rest.is_empty()), "{end:?}");
    }
    assert!(
        ordered.elapsed() < Duration::from_millis(10),
        "closed at once, not at the idle timeout"
    );
    // The busy connection is answered and kept.
    assert_eq!(busy.response().await.expect("response").status, 200);
    wait_until("the four closes are counted", || {
        origin.stats().idle_closes_ordered == 4
    })
    .await;
    let stats = origin.stats();
    assert_eq!(stats.connections_open, 1);
    assert_eq!(stats.idle_closes_fin, 0, "no idle timeout fired");
    let reasons: Vec<_> = origin.connections().iter().map(|c| c.closed).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == Some(CloseReason::ClosedIdle(CloseMode::Fin)))
            .count(),
        4,
        "{reasons:?}"
    );

    // Afterwards the server serves normally: the kept connection is reused
    // and then idles out at the builder's timeout; a new one is answered.
    busy.get("").await;
    assert_eq!(busy.response().await.expect("response").status, 200);
    let answered = Instant::now();
    let mut fresh = idle_conn(&origin).await;
    assert!(matches!(busy.end().await, End::Fin(_)));
    assert!(answered.elapsed() >= IDLE, "{:?}", answered.elapsed());
    assert!(matches!(fresh.end().await, End::Fin(_)));
    wait_until("both idle timeouts are counted", || {
        origin.stats().idle_closes_fin == 2
    })
    .await;
    assert_eq!(origin.stats().idle_closes_ordered, 4);
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn close_idle_uses_the_close_mode() {
    let origin = origin(CloseMode::Rst).await;
    let mut conn = idle_conn(&origin).await;
    origin.close_idle();
    let end = conn.end().await;
    assert!(
        matches!(end, End::Error(std::io::ErrorKind::ConnectionReset, _)),
        "{end:?}"
    );
    wait_until("the close is counted", || {
        origin.stats().idle_closes_ordered == 1
    })
    .await;
    assert_eq!(
        origin.connections()[0].closed,
        Some(CloseReason::ClosedIdle(CloseMode::Rst))
    );
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_shorter_idle_timeout_applies_to_idle_connections_at_once_and_then_is_undone() {
    let origin = origin(CloseMode::Fin).await;
    assert_eq!(origin.idle_timeout(), IDLE);
    let mut old = idle_conn(&origin).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    // Idle for 50 ms already, past the new 5 ms: closed at once.
    let early = Duration::from_millis(5);
    let set = Instant::now();
    origin.set_idle_timeout(Some(early));
    assert_eq!(origin.idle_timeout(), early);
    assert!(matches!(old.end().await, End::Fin(_)));
    assert!(
        set.elapsed() < Duration::from_millis(2),
        "{:?}",
        set.elapsed()
    );

    // A connection answered now idles out 5 ms after its response.
    let mut conn = idle_conn(&origin).await;
    let answered = Instant::now();
    assert!(matches!(conn.end().await, End::Fin(_)));
    let lived = answered.elapsed();
    assert!(
        lived >= early && lived < early + Duration::from_millis(5),
        "{lived:?}"
    );

    // Back to the builder's timeout, also for a connection already idle.
    let mut idle = idle_conn(&origin).await;
    let answered = Instant::now();
    origin.set_idle_timeout(None);
    assert_eq!(origin.idle_timeout(), IDLE);
    assert!(matches!(idle.end().await, End::Fin(_)));
    let lived = answered.elapsed();
    assert!(
        lived >= IDLE && lived < IDLE + Duration::from_millis(20),
        "{lived:?}"
    );
    wait_until("three idle timeouts are counted", || {
        origin.stats().idle_closes_fin == 3
    })
    .await;
    assert_eq!(origin.stats().idle_closes_ordered, 0);
    origin.shutdown().await;
}
