//! Retiring idle connections, in paused tokio time: hyper-util's real
//! `Client` over the adapter, against `freshpool-origin` on loopback.

mod support;

use std::time::Duration;

use freshpool_legacy::Source;
use freshpool_origin::{Advertise, CloseMode, Origin};
use support::{client, get, origin};
use tokio::time::sleep;

fn url(origin: &Origin) -> http::Uri {
    format!("{}/", origin.base_url())
        .parse()
        .expect("valid url")
}

#[tokio::test(start_paused = true)]
async fn an_advertised_timeout_retires_idle_connections_before_the_server_closes_them() {
    let origin = origin(Duration::from_secs(1), Advertise::Truthful).await;
    let (client, connector) = client();

    let first = get(&client, &origin, &[]).await.expect("first request");
    let estimate = connector.estimate(&url(&origin)).expect("origin known");
    assert_eq!(estimate.source, Source::Header);
    assert_eq!(estimate.timeout, Duration::from_secs(1));

    // Within the retire time (1 s − 1 ms: the header is the server's
    // word, and on loopback the margin is the 1 ms floor): reused.
    sleep(Duration::from_millis(990)).await;
    let second = get(&client, &origin, &[]).await.expect("second request");
    assert_eq!(second.connection, first.connection);
    assert_eq!(second.requests_on_connection, 2);
    assert_eq!(connector.stats().retired, 0);

    // Past it: the adapter ended the connection a millisecond before the
    // server would have.
    sleep(Duration::from_millis(1000)).await;
    assert_eq!(connector.stats().retired, 1);
    let third = get(&client, &origin, &[]).await.expect("third request");
    assert_ne!(third.connection, first.connection);
    assert_eq!(third.requests_on_connection, 1);

    let stats = connector.stats();
    assert_eq!((stats.connections, stats.server_closes), (2, 0));
    assert_eq!(origin.stats().idle_closes_fin, 0, "the server never closed");
    origin.shutdown().await;
}

async fn learns_from_an_idle_close(mode: CloseMode) {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_millis(200))
        .close_mode(mode)
        .start()
        .await
        .expect("origin starts");
    let (client, connector) = client();

    let first = get(&client, &origin, &[]).await.expect("first request");
    assert_eq!(
        connector.estimate(&url(&origin)).map(|e| e.source),
        Some(Source::Default),
        "nothing advertised, nothing learned yet"
    );

    // The server closes the idle connection at 200 ms; hyper reads the
    // close and the adapter learns from it.
    sleep(Duration::from_millis(300)).await;
    assert_eq!(connector.stats().server_closes, 1);
    let estimate = connector.estimate(&url(&origin)).expect("origin known");
    assert_eq!(estimate.source, Source::Learned);
    assert!(
        estimate.timeout <= Duration::from_millis(200)
            && estimate.timeout >= Duration::from_millis(190),
        "{estimate:?}"
    );

    // From now on the adapter retires idle connections at 197 ms: 200 ms
    // less the 1 ms floor and 1% of a learned value (the driver is never
    // late in paused time: its lateness decays from the initial 1 ms and
    // adds less than a millisecond).
    let second = get(&client, &origin, &[]).await.expect("second request");
    assert_ne!(second.connection, first.connection);
    sleep(Duration::from_millis(196)).await;
    assert_eq!(connector.stats().retired, 0);
    sleep(Duration::from_millis(2)).await;
    assert_eq!(connector.stats().retired, 1);
    sleep(Duration::from_millis(100)).await;
    assert_eq!(
        connector.stats().server_closes,
        1,
        "the server had no idle connection left to close"
    );
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn learns_the_idle_timeout_from_a_fin() {
    learns_from_an_idle_close(CloseMode::Fin).await;
}

#[tokio::test(start_paused = true)]
async fn learns_the_idle_timeout_from_a_reset() {
    learns_from_an_idle_close(CloseMode::Rst).await;
}

#[tokio::test(start_paused = true)]
async fn a_request_queued_on_a_retired_connection_is_sent_on_a_fresh_one() {
    let origin = origin(Duration::from_secs(1), Advertise::Truthful).await;
    let (client, connector) = client();
    let first = get(&client, &origin, &[("x-request-id", "a")])
        .await
        .expect("first request");

    // Exactly at the retire time, a request races the retirement: either
    // it reuses the connection before the driver runs, or hyper hands it
    // back and hyper-util sends it on a fresh connection. Never an error.
    sleep(Duration::from_millis(900)).await;
    let second = get(&client, &origin, &[("x-request-id", "b")])
        .await
        .expect("no error at the retire time");
    assert_eq!(second.status, 200);
    assert!(
        second.connection != first.connection || second.requests_on_connection == 2,
        "{second:?}"
    );
    assert_eq!((origin.processed("a"), origin.processed("b")), (1, 1));
    assert_eq!(connector.stats().server_closes, 0);
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_client_ends_every_connection_and_the_driver() {
    let origin = origin(Duration::from_secs(60), Advertise::None).await;
    let (client, connector) = client();
    get(&client, &origin, &[]).await.expect("request");
    assert_eq!(origin.stats().connections_open, 1);
    drop(client);
    drop(connector);
    sleep(Duration::from_millis(10)).await;
    assert_eq!(origin.stats().connections_open, 0, "no connection leaked");
    origin.shutdown().await;
}
