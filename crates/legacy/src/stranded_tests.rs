//! The guard in paused time, with a stand-in for hyper-util's answer that
//! never comes: it ends an attempt whose connection ended with the request
//! unsent, and only such an attempt.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use http::Request;

use super::{Landed, STRANDED_AFTER, Watch, guarded};
use crate::info::{ConnShared, ConnectionInfo};

fn connection() -> (Arc<ConnShared>, Watch) {
    let conn = Arc::new(ConnShared::new());
    let watch = Watch::fixed(ConnectionInfo::new(Arc::clone(&conn)));
    (conn, watch)
}

const AN_HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn an_attempt_on_a_live_connection_waits_for_its_answer() {
    let (_conn, watch) = connection();
    let waited = tokio::time::timeout(AN_HOUR, guarded(pending::<()>(), watch)).await;
    assert!(
        waited.is_err(),
        "still waiting after an hour of paused time"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_ends_with_the_request_unsent_ends_the_attempt() {
    let (conn, watch) = connection();
    let attempt = tokio::spawn(guarded(pending::<()>(), watch));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!attempt.is_finished(), "the connection is still open");
    // hyper's connection task drops the IO.
    conn.mark_ended();
    // hyper-util may still be moving the request elsewhere: not yet.
    tokio::time::sleep(STRANDED_AFTER / 2).await;
    assert!(!attempt.is_finished(), "within the grace");
    let landed = tokio::time::timeout(AN_HOUR, attempt)
        .await
        .expect("woken when the connection ends")
        .expect("the attempt task");
    assert!(matches!(landed, Landed::Stranded));
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_ended_after_writing_the_request_leaves_the_answer_to_hyper() {
    let (conn, watch) = connection();
    // Part of the request reached the socket: hyper answers with an error
    // of its own, which the retry rules judge.
    conn.add_written(100);
    conn.mark_ended();
    let waited = tokio::time::timeout(AN_HOUR, guarded(pending::<()>(), watch)).await;
    assert!(waited.is_err());
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_came_is_taken_whatever_the_connection_did() {
    let (conn, watch) = connection();
    conn.mark_ended();
    let landed = guarded(async { 7 }, watch).await;
    assert!(matches!(landed, Landed::Answer(7)));
}

#[test]
fn a_request_the_caller_captures_keeps_the_callers_capture() {
    let mut req = Request::new(());
    let _callers = hyper_util::client::legacy::connect::capture_connection(&mut req);
    let before = req.extensions().len();
    let watch = Watch::insert(&mut req);
    assert_eq!(req.extensions().len(), before);
    assert!(watch.connection().is_none(), "not guarded");

    let mut req = Request::new(());
    let _watch = Watch::insert(&mut req);
    assert_eq!(req.extensions().len(), 1, "guarded: the adapter captures");
}
