//! The attempt that would wait for ever: a request hyper holds in the
//! channel of a connection whose task has ended (see [`Landing`]).

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::Connected;
use hyper_util::rt::TokioIo;

use super::{Landed, Landing};
use crate::info::ConnectionInfo;
use crate::io::{ConnState, Io};
use crate::pool::{Conn, ConnParts, Tx};
use crate::replay::ReplayBody;
use crate::unprobed::UnprobedIo;

type Body = Full<Bytes>;

type Connection =
    http1::Connection<Io<UnprobedIo<TokioIo<tokio::io::DuplexStream>>>, ReplayBody<Body>>;

/// An HTTP/1 connection over an in-memory pipe, the connection future
/// hyper's sender talks to (not spawned: the test polls it), and the
/// pipe's server end (kept open, or the connection would end).
async fn conn() -> (
    Conn<Body>,
    Arc<ConnState>,
    Connection,
    tokio::io::DuplexStream,
) {
    let (ours, theirs) = tokio::io::duplex(1024);
    let state = Arc::new(ConnState::new(crate::pool::now()));
    let (io, probe) = Io::new(UnprobedIo::new(TokioIo::new(ours)), Arc::clone(&state));
    let (tx, connection) = http1::handshake(io).await.expect("handshake");
    let conn = Conn::new(ConnParts {
        id: 1,
        tx: Tx::Http1(tx),
        state: Arc::clone(&state),
        probe,
        info: ConnectionInfo::new(1, Connected::new()),
        requests: 0,
        remaining: None,
        lifetime_deadline: None,
        expiry: None,
        _stream: None,
    });
    (conn, state, connection, theirs)
}

fn request() -> Request<ReplayBody<Body>> {
    Request::post("http://origin.test/orders")
        .body(ReplayBody::new(Full::new(Bytes::from_static(b"{}")), 1024))
        .expect("request")
}

/// The stranded request, as the attempt sees it: hyper's answer comes only
/// once the channel's last sender (the attempt's connection) is dropped,
/// and it is the request handed back unsent. Here the connection future
/// ends when its sender is gone; hyper then hands the request back, as a
/// sender of a connection that is gone does.
#[tokio::test(start_paused = true)]
async fn a_request_left_in_the_channel_of_an_ended_task_is_handed_back() {
    let (conn, state, connection, _server) = conn().await;
    let (gone_tx, gone) = {
        let (ours, _theirs) = tokio::io::duplex(64);
        http1::handshake::<_, ReplayBody<Body>>(TokioIo::new(ours))
            .await
            .expect("handshake")
    };
    drop(gone);
    let response = async move {
        // Ends only when every sender of its channel is dropped.
        let _ = connection.await;
        let mut gone_tx = gone_tx;
        gone_tx.try_send_request(request()).await
    };
    let landing = Landing::new(conn, response, Some(Duration::from_millis(5)));
    tokio::pin!(landing);

    // Nothing ended yet: the attempt waits, as it must.
    let pending =
        std::future::poll_fn(|cx| Poll::Ready(landing.as_mut().poll(cx).is_pending())).await;
    assert!(pending);
    // The task ends with the request still in hyper's channel.
    state.task_ended();
    let (landed, sent, reused_after) = tokio::time::timeout(Duration::from_secs(5), landing)
        .await
        .expect("the attempt lets its connection go instead of waiting for ever");
    assert!(
        matches!(landed, Landed::Released(_)),
        "the connection was let go"
    );
    let mut error = sent.expect_err("no response from a connection that is gone");
    assert!(
        error.take_message().is_some(),
        "hyper hands the request back unsent: it may be retried"
    );
    assert_eq!(reused_after, Some(Duration::from_millis(5)));
}

/// A connection whose task is alive is never let go, however long hyper
/// takes to answer.
#[tokio::test(start_paused = true)]
async fn an_attempt_on_a_live_connection_waits_for_its_answer() {
    let (conn, _state, connection, _server) = conn().await;
    let response = async move {
        let _ = connection.await;
        unreachable!("the attempt holds the sender: the connection does not end")
    };
    let landing = Landing::<Body, _>::new(conn, response, None);
    let waited = tokio::time::timeout(Duration::from_secs(3600), landing).await;
    assert!(
        waited.is_err(),
        "still waiting after an hour of paused time"
    );
}
