//! The probe at checkout: a connection the server closed while it sat idle
//! is caught before a request is written to it, even when hyper has not
//! yet noticed the close; and `probe_after` decides which connections are
//! probed.
//!
//! Each test blocks the client's only thread while the origin (on a thread
//! of its own) closes the idle connection, so hyper's connection task
//! cannot read the close first: only the probe can see it.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use freshpool_origin::{CloseMode, Origin};
use freshpool_tests::{TestClient, send};
use http::Method;

/// An origin with a 100 ms idle timeout, served from a runtime on a thread
/// of its own until `stop` is sent.
struct Remote {
    base_url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: thread::JoinHandle<()>,
}

fn remote(mode: CloseMode) -> Remote {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("origin runtime");
        rt.block_on(async move {
            let origin = Origin::builder()
                .idle_timeout(Duration::from_millis(100))
                .close_mode(mode)
                .start()
                .await
                .expect("origin");
            ready_tx.send(origin.base_url()).expect("test thread");
            let _ = stopped.await;
            origin.shutdown().await;
        });
    });
    let base_url = ready_rx.recv().expect("origin started");
    Remote {
        base_url,
        stop,
        thread,
    }
}

impl Remote {
    fn stop(self) {
        let _ = self.stop.send(());
        self.thread.join().expect("origin thread");
    }
}

/// One request, then the thread blocks past the origin's idle timeout (the
/// close arrives, unread), then a second request.
async fn request_across_an_idle_close(client: &TestClient, remote: &Remote) {
    let url = format!("{}/p", remote.base_url);
    send(client, Method::GET, &url, &[])
        .await
        .expect("first request");
    // Blocking on purpose: no task of this runtime runs meanwhile.
    thread::sleep(Duration::from_millis(300));
    send(client, Method::GET, &url, &[])
        .await
        .expect("second request");
}

#[tokio::test(flavor = "current_thread")]
async fn the_probe_catches_a_fin_hyper_has_not_read() {
    let remote = remote(CloseMode::Fin);
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    request_across_an_idle_close(&client, &remote).await;
    let stats = client.stats().total;
    assert_eq!(stats.probe_rejected_closed, 1, "{stats:?}");
    assert_eq!(stats.connections_opened, 2, "{stats:?}");
    assert_eq!(
        (stats.errors, stats.retries_idempotent),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.reused, 0, "{stats:?}");
    // The close taught the pool the server's idle timeout.
    assert_eq!(stats.server_closes_observed, 1, "{stats:?}");
    drop(client);
    remote.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn the_probe_catches_a_reset_hyper_has_not_read() {
    let remote = remote(CloseMode::Rst);
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    request_across_an_idle_close(&client, &remote).await;
    let stats = client.stats().total;
    assert_eq!(stats.probe_rejected_reset, 1, "{stats:?}");
    assert_eq!(
        (stats.errors, stats.connections_opened),
        (0, 2),
        "{stats:?}"
    );
    drop(client);
    remote.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn connections_idle_less_than_probe_after_are_not_probed() {
    let remote = remote(CloseMode::Fin);
    let client: TestClient = freshpool::Client::builder()
        .probe_after(Duration::from_secs(10))
        .build_http()
        .expect("settings");
    request_across_an_idle_close(&client, &remote).await;
    let stats = client.stats().total;
    // Unprobed, the dead connection was used: the GET failed on it and
    // was retried on a fresh one.
    let probed =
        stats.probe_rejected_closed + stats.probe_rejected_reset + stats.probe_rejected_unexpected;
    assert_eq!(probed, 0, "{stats:?}");
    assert_eq!(stats.reused, 1, "{stats:?}");
    let retries = stats.retries_unsent + stats.retries_nothing_written + stats.retries_idempotent;
    assert_eq!((retries, stats.errors), (1, 0), "{stats:?}");
    assert_eq!(stats.connections_opened, 2, "{stats:?}");
    drop(client);
    remote.stop();
}
