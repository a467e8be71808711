//! Per-request behaviour seen from the wire: bodies, framing, delays,
//! streaming, misbehaviour knobs, closes the client asks for, and
//! max requests per connection.

mod support;

use std::io;
use std::time::Duration;

use freshpool_origin::{CloseReason, Origin, body_pattern};
use support::{Conn, End, wait_until};
use tokio::time::Instant;

async fn origin() -> Origin {
    Origin::builder().start().await.expect("start origin")
}

#[tokio::test(start_paused = true)]
async fn length_delimited_and_chunked_bodies_follow_the_pattern() {
    let origin = Origin::builder().body_size(3).start().await.expect("start");
    let mut conn = Conn::open(&origin).await;
    conn.get("").await;
    let response = conn.response().await.expect("response");
    assert_eq!(response.header("content-length"), Some("3"));
    assert_eq!(response.body, b"abc");

    conn.get("x-body-size: 70000\r\nx-chunked: 1\r\n").await;
    let response = conn.response().await.expect("chunked response");
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.body, body_pattern(70_000));

    conn.get("x-body-size: 0\r\nx-chunked: 1\r\n").await;
    assert!(
        conn.response()
            .await
            .expect("empty chunked")
            .body
            .is_empty()
    );
    assert!(conn.unread().is_empty());
}

#[tokio::test(start_paused = true)]
async fn status_knob_and_bodiless_statuses() {
    let origin = Origin::builder()
        .body_size(10)
        .start()
        .await
        .expect("start");
    let mut conn = Conn::open(&origin).await;
    conn.get("x-status: 503\r\n").await;
    let response = conn.response().await.expect("503");
    assert_eq!((response.status, response.body.len()), (503, 10));
    conn.get("x-status: 204\r\n").await;
    let response = conn.response().await.expect("204");
    assert_eq!(response.status, 204);
    assert_eq!(response.header("content-length"), None);
    // HEAD: the headers of a GET, no body; the next response parses cleanly.
    conn.send("HEAD / HTTP/1.1\r\nhost: a\r\n\r\n").await;
    let response = conn.response_to(true).await.expect("HEAD");
    assert_eq!(response.header("content-length"), Some("10"));
    conn.get("").await;
    assert_eq!(
        conn.response().await.expect("after HEAD").body,
        body_pattern(10)
    );
}

#[tokio::test(start_paused = true)]
async fn delay_holds_the_response_head() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    let sent = Instant::now();
    conn.get("x-delay-ms: 300\r\n").await;
    conn.response().await.expect("response");
    let elapsed = sent.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(320),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn streaming_writes_pieces_with_pauses() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.get(
        "x-body-size: 40\r\nx-chunked: 1\r\nx-stream-chunks: 4\r\nx-stream-interval-ms: 50\r\n",
    )
    .await;
    let sent = Instant::now();
    // Each piece is its own chunk; the first arrives at once, then one per
    // interval.
    let mut arrivals = Vec::new();
    let mut raw = Vec::new();
    while !raw.ends_with(b"0\r\n\r\n") {
        let mut buf = [0u8; 1024];
        let n = tokio::io::AsyncReadExt::read(&mut conn.stream, &mut buf)
            .await
            .expect("read");
        assert_ne!(n, 0, "connection closed mid-stream");
        raw.extend_from_slice(&buf[..n]);
        arrivals.push(sent.elapsed().as_millis());
    }
    assert_eq!(arrivals, [0, 50, 100, 150]);
    let text = String::from_utf8(raw).expect("ascii");
    let body = text.split_once("\r\n\r\n").expect("head").1;
    assert_eq!(
        body,
        "a\r\nabcdefghij\r\na\r\nklmnopqrst\r\na\r\nuvwxyzabcd\r\na\r\nefghijklmn\r\n0\r\n\r\n"
    );
}

#[tokio::test(start_paused = true)]
async fn pause_mid_body_then_the_rest() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    let sent = Instant::now();
    conn.get("x-body-size: 100\r\nx-pause-mid-body-ms: 200\r\n")
        .await;
    let response = conn.response().await.expect("whole response");
    assert_eq!(response.body, body_pattern(100));
    assert!(sent.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn close_mid_body_with_fin_cuts_the_body_in_half() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.get("x-request-id: cut-1\r\nx-body-size: 100\r\nx-close-mid-body: fin\r\n")
        .await;
    let End::Fin(bytes) = conn.end().await else {
        panic!("expected a FIN mid-body");
    };
    let text = String::from_utf8(bytes).expect("ascii");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.contains("content-length: 100"), "{head}");
    assert_eq!(body.as_bytes(), body_pattern(50));
    wait_until("the cut is counted", || origin.stats().responses_cut == 1).await;
    // The server applied the request before failing it.
    assert_eq!(origin.processed("cut-1"), 1);
    assert_eq!(
        origin.connections()[0].closed,
        Some(CloseReason::CloseMidBody)
    );
}

#[tokio::test(start_paused = true)]
async fn close_mid_body_with_rst_resets() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.get("x-body-size: 100\r\nx-close-mid-body: rst\r\nx-chunked: 1\r\n")
        .await;
    let end = conn.end().await;
    // The kernel may discard the half body when the RST arrives; whatever
    // arrived is a prefix of the head and half body, and no last chunk.
    let End::Error(io::ErrorKind::ConnectionReset, bytes) = end else {
        panic!("expected a reset, got {end:?}");
    };
    assert!(!bytes.ends_with(b"0\r\n\r\n"));
    wait_until("the cut is counted", || origin.stats().responses_cut == 1).await;
}

#[tokio::test(start_paused = true)]
async fn reset_after_read_processes_then_resets() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.send("POST /pay HTTP/1.1\r\nhost: a\r\nx-request-id: pay-1\r\nx-reset-after-read: 1\r\ncontent-length: 5\r\n\r\nhello")
        .await;
    let end = conn.end().await;
    assert!(
        matches!(end, End::Error(io::ErrorKind::ConnectionReset, ref b) if b.is_empty()),
        "{end:?}"
    );
    wait_until("the reset is counted", || {
        origin.stats().requests_reset == 1
    })
    .await;
    assert_eq!(origin.processed("pay-1"), 1);
}

#[tokio::test(start_paused = true)]
async fn closes_the_client_or_a_knob_asks_for() {
    let origin = Origin::builder()
        .advertise(freshpool_origin::Advertise::Truthful)
        .start()
        .await
        .expect("start");
    let mut expected = Vec::new();
    for (request, reason) in [
        (
            "GET / HTTP/1.1\r\nx-close: 1\r\n\r\n",
            CloseReason::CloseKnob,
        ),
        (
            "GET / HTTP/1.1\r\nconnection: close\r\n\r\n",
            CloseReason::PeerRequestedClose,
        ),
        ("GET / HTTP/1.0\r\n\r\n", CloseReason::PeerRequestedClose),
    ] {
        let mut conn = Conn::open(&origin).await;
        conn.send(request).await;
        let response = conn.response().await.expect("response");
        assert_eq!(response.header("connection"), Some("close"), "{request}");
        assert_eq!(response.header("keep-alive"), None, "{request}");
        assert!(
            matches!(conn.end().await, End::Fin(rest) if rest.is_empty()),
            "{request}"
        );
        expected.push(Some(reason));
    }
    wait_until("all three are closed", || {
        origin.stats().connections_open == 0
    })
    .await;
    let reasons: Vec<_> = origin.connections().iter().map(|c| c.closed).collect();
    assert_eq!(reasons, expected);
    // HTTP/1.0 with keep-alive stays open.
    let mut conn = Conn::open(&origin).await;
    conn.send("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
        .await;
    assert_eq!(
        conn.response().await.expect("1.0").header("connection"),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn max_requests_announced_closes_after_the_last() {
    let origin = Origin::builder()
        .max_requests(2)
        .start()
        .await
        .expect("start");
    let mut conn = Conn::open(&origin).await;
    conn.get("").await;
    assert_eq!(
        conn.response().await.expect("first").header("connection"),
        None
    );
    conn.get("").await;
    assert_eq!(
        conn.response().await.expect("last").header("connection"),
        Some("close")
    );
    assert!(matches!(conn.end().await, End::Fin(_)));
    wait_until("the close is counted", || {
        origin.stats().max_requests_closes == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn max_requests_silent_closes_right_after_an_ordinary_response() {
    let origin = Origin::builder()
        .max_requests(2)
        .announce_last_request(false)
        .idle_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("start");
    let mut conn = Conn::open(&origin).await;
    for _ in 0..2 {
        conn.get("").await;
        assert_eq!(
            conn.response()
                .await
                .expect("response")
                .header("connection"),
            None
        );
    }
    let responded = Instant::now();
    assert!(matches!(conn.end().await, End::Fin(_)));
    assert!(
        responded.elapsed() < Duration::from_secs(1),
        "closed by idle instead"
    );
    wait_until("the close is counted", || {
        origin.stats().max_requests_closes == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_with_bodies_are_answered_in_order() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.send(concat!(
        "POST / HTTP/1.1\r\nx-request-id: p1\r\ntransfer-encoding: chunked\r\n\r\n",
        "3\r\nabc\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nx-request-id: p2\r\ncontent-length: 4\r\n\r\nwxyz",
        "GET / HTTP/1.1\r\nx-request-id: p3\r\n\r\n",
    ))
    .await;
    for id in ["p1", "p2", "p3"] {
        let response = conn.response().await.expect("response");
        assert_eq!(response.header("x-request-id"), Some(id));
    }
    assert_eq!(origin.stats().requests_processed, 3);
}

#[tokio::test(start_paused = true)]
async fn expect_continue_gets_a_100_before_the_body() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.send("PUT / HTTP/1.1\r\nexpect: 100-continue\r\ncontent-length: 3\r\n\r\n")
        .await;
    assert_eq!(conn.response().await.expect("100").status, 100);
    conn.send("abc").await;
    assert_eq!(conn.response().await.expect("200").status, 200);
}

#[tokio::test(start_paused = true)]
async fn malformed_requests_get_a_4xx_naming_the_cause_and_a_close() {
    let origin = Origin::builder()
        .max_request_body(10)
        .start()
        .await
        .expect("start");
    for (request, status, needle) in [
        ("\x16\x03\x01 not http\r\n\r\n", 400, "malformed"),
        (
            "GET / HTTP/1.1\r\nx-delay-ms: soon\r\n\r\n",
            400,
            "x-delay-ms",
        ),
        (
            "POST / HTTP/1.1\r\ncontent-length: 11\r\n\r\n",
            413,
            "larger than 10",
        ),
        (
            "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\nb\r\n",
            413,
            "larger than 10",
        ),
        (
            "POST / HTTP/1.1\r\ntransfer-encoding: zstd\r\n\r\n",
            501,
            "zstd",
        ),
        (
            "POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
            400,
            "both",
        ),
    ] {
        let mut conn = Conn::open(&origin).await;
        conn.send(request).await;
        let response = conn.response().await.expect("a rejection");
        assert_eq!(response.status, status, "{request:?}");
        assert_eq!(response.header("connection"), Some("close"));
        let message = String::from_utf8(response.body).expect("text");
        assert!(message.contains(needle), "{request:?}: {message}");
        assert!(matches!(conn.end().await, End::Fin(_)), "{request:?}");
    }
    wait_until("all are counted", || origin.stats().requests_rejected == 6).await;
    assert_eq!(origin.stats().requests_processed, 0);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_vanishes_mid_request_is_not_processed() {
    let origin = origin().await;
    let mut conn = Conn::open(&origin).await;
    conn.send("POST / HTTP/1.1\r\nx-request-id: gone\r\ncontent-length: 10\r\n\r\nabc")
        .await;
    tokio::io::AsyncWriteExt::shutdown(&mut conn.stream)
        .await
        .expect("shutdown");
    wait_until("the close is recorded", || {
        let stats = origin.stats();
        stats.connections_accepted == 1 && stats.connections_open == 0
    })
    .await;
    assert_eq!(
        origin.connections()[0].closed,
        Some(CloseReason::IncompleteRequest)
    );
    assert_eq!(origin.processed("gone"), 0);
}
