//! HTTP over Unix domain sockets: `freshpool::UnixConnector` against
//! `freshpool-origin` listening on a socket, with reuse, retirement before
//! the server's idle deadline, the probe catching a close hyper has not
//! read, one pool keeping two sockets apart, and h2c over a socket.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use freshpool::{Client, UnixConnector, unix_uri};
use freshpool_origin::{Advertise, CloseMode, Origin};
use http_body_util::{BodyExt, Full};

type UnixClient = Client<UnixConnector, Full<Bytes>>;

/// A fresh socket path in the temporary directory.
fn socket_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("freshpool-unix-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

async fn origin_on(path: &Path, idle: Duration, advertise: Advertise) -> Origin {
    let origin = Origin::builder()
        .idle_timeout(idle)
        .advertise(advertise)
        .start()
        .await
        .expect("origin starts");
    origin
        .listen_unix(path)
        .expect("origin listens on the socket");
    origin
}

/// A GET of `uri` with `id` as its `x-request-id`; the origin's
/// `x-connection-id` of the response.
async fn get(client: &UnixClient, uri: http::Uri, id: &str) -> Result<u64, freshpool::Error> {
    let req = http::Request::get(uri)
        .header("x-request-id", id)
        .body(Full::default())
        .expect("valid request");
    let response = client.request(req).await?;
    assert_eq!(response.status(), 200);
    let connection = response.headers()["x-connection-id"]
        .to_str()
        .expect("text")
        .parse()
        .expect("number");
    response.into_body().collect().await.expect("body");
    Ok(connection)
}

#[tokio::test(start_paused = true)]
async fn one_socket_for_every_uri_reuses_and_retires_before_the_server_closes() {
    let path = socket_path();
    // The server closes idle connections after 1 s and says so: the client
    // stops reusing them a millisecond before (the margin's floor; there is
    // no network to cross).
    let origin = origin_on(&path, Duration::from_secs(1), Advertise::Truthful).await;
    let client: UnixClient = Client::builder()
        .build(UnixConnector::new(&path))
        .expect("settings");
    let uri: http::Uri = "http://localhost/u".parse().expect("uri");

    let first = get(&client, uri.clone(), "a").await.expect("first");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(get(&client, uri.clone(), "b").await.expect("second"), first);
    let stats = client.stats().total;
    assert_eq!(
        (stats.connections_opened, stats.reused),
        (1, 1),
        "{stats:?}"
    );

    tokio::time::sleep(Duration::from_millis(990)).await;
    let stats = client.stats().total;
    assert_eq!((stats.retired_by_expiry, stats.idle), (0, 1), "{stats:?}");
    // At 999 ms no request gets it: the next one connects, and the old
    // connection is closed then, before the server would have.
    tokio::time::sleep(Duration::from_millis(9)).await;
    assert_ne!(get(&client, uri, "c").await.expect("third"), first);
    let stats = client.stats().total;
    assert_eq!((stats.retired_by_expiry, stats.idle), (1, 1), "{stats:?}");
    assert_eq!(origin.stats().idle_closes_fin, 0, "the server never closed");
    assert_eq!((origin.processed("a"), origin.processed("c")), (1, 1));

    origin.shutdown().await;
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[tokio::test(start_paused = true)]
async fn unix_uris_pick_the_socket_and_keep_two_sockets_apart() {
    let (path_a, path_b) = (socket_path(), socket_path());
    let idle = Duration::from_secs(600);
    let a = origin_on(&path_a, idle, Advertise::None).await;
    let b = origin_on(&path_b, idle, Advertise::None).await;
    let client: UnixClient = Client::builder()
        .build(UnixConnector::from_uri())
        .expect("settings");
    let uri_a = unix_uri(&path_a, "/a").expect("uri");
    let uri_b = unix_uri(&path_b, "/b?q=1").expect("uri");

    for round in 0..3 {
        get(&client, uri_a.clone(), &format!("a{round}"))
            .await
            .expect("socket a");
        get(&client, uri_b.clone(), &format!("b{round}"))
            .await
            .expect("socket b");
    }
    // Each server saw its own requests only, on one connection.
    for (origin, name) in [(&a, "a"), (&b, "b")] {
        let stats = origin.stats();
        assert_eq!(
            (stats.connections_accepted, stats.requests_processed),
            (1, 3),
            "{name}: {stats:?}"
        );
        assert_eq!(origin.processed(&format!("{name}2")), 1);
    }
    let stats = client.stats();
    assert_eq!((stats.total.connections_opened, stats.total.reused), (2, 4));
    assert_eq!(stats.origins.len(), 2, "{:?}", stats.origins);

    // An http:// URI names no socket: a clear error, not a panic.
    let error = get(&client, "http://localhost/".parse().expect("uri"), "x")
        .await
        .expect_err("no socket path");
    assert!(error.is_connect(), "{error:?}");
    let chain = format!("{:?}", error);
    assert!(chain.contains("unix://"), "{chain}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_missing_socket_is_a_connect_error_naming_the_path() {
    let path = socket_path();
    let client: UnixClient = Client::builder()
        .build(UnixConnector::new(&path))
        .expect("settings");
    let error = get(&client, "http://localhost/".parse().expect("uri"), "x")
        .await
        .expect_err("nothing listens");
    assert!(error.is_connect(), "{error:?}");
    let chain = format!("{:?}", error);
    assert!(chain.contains(&*path.to_string_lossy()), "{chain}");
}

/// The probe, as `transport_probe` tests it on TCP: the origin runs on a
/// thread of its own and closes the idle connection while the client's
/// only thread is blocked, so hyper cannot read the close first.
#[tokio::test(flavor = "current_thread")]
async fn the_probe_catches_a_close_on_an_idle_unix_connection() {
    let path = socket_path();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_path = path.clone();
    let server = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("origin runtime");
        rt.block_on(async move {
            let origin = Origin::builder()
                .idle_timeout(Duration::from_millis(100))
                .close_mode(CloseMode::Fin)
                .start()
                .await
                .expect("origin");
            origin.listen_unix(&server_path).expect("listen");
            ready_tx.send(()).expect("test thread");
            let _ = stopped.await;
            let stats = origin.stats();
            origin.shutdown().await;
            stats
        })
    });
    ready_rx.recv().expect("origin started");

    let client: UnixClient = Client::builder()
        .build(UnixConnector::new(&path))
        .expect("settings");
    let uri: http::Uri = "http://localhost/p".parse().expect("uri");
    let first = get(&client, uri.clone(), "p1").await.expect("first");
    // Blocking on purpose: no task of this runtime runs meanwhile.
    thread::sleep(Duration::from_millis(300));
    let second = get(&client, uri, "p2").await.expect("second");
    assert_ne!(second, first);

    let stats = client.stats().total;
    assert_eq!(stats.probe_rejected_closed, 1, "{stats:?}");
    assert_eq!(
        (
            stats.connections_opened,
            stats.reused,
            stats.errors,
            stats.retries()
        ),
        (2, 0, 0, 0),
        "{stats:?}"
    );
    let _ = stop.send(());
    let origin = server.join().expect("origin thread");
    assert_eq!(origin.idle_closes_fin, 1, "{origin:?}");
    assert_eq!(origin.duplicate_requests, 0);
}

#[tokio::test(start_paused = true)]
async fn h2c_over_a_unix_socket_shares_one_connection() {
    let path = socket_path();
    let origin = origin_on(&path, Duration::from_secs(600), Advertise::None).await;
    let client: UnixClient = Client::builder()
        .http2_only(true)
        .build(UnixConnector::new(&path))
        .expect("settings");
    let uri: http::Uri = "http://localhost/h2".parse().expect("uri");
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..4 {
        let (client, uri) = (client.clone(), uri.clone());
        requests.spawn(async move {
            let req = http::Request::get(uri)
                .header("x-request-id", format!("h2-{i}"))
                .header("x-delay-ms", "50")
                .body(Full::default())
                .expect("valid request");
            let response = client.request(req).await.expect("response");
            assert_eq!(response.version(), http::Version::HTTP_2);
            response.into_body().collect().await.expect("body");
        });
    }
    while let Some(done) = requests.join_next().await {
        done.expect("request task");
    }
    let stats = origin.stats();
    assert_eq!(
        (stats.connections_accepted, stats.requests_processed),
        (1, 4),
        "{stats:?}"
    );
    assert_eq!(client.stats().total.connections_opened, 1);
    origin.shutdown().await;
}
