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

    // Past it, though the server would still have taken it: the adapter
    // ended the connection instead of sending the request on it.
    sleep(Duration::from_millis(999)).await;
    let third = get(&client, &origin, &[]).await.expect("third request");
    assert_ne!(third.connection, first.connection);
    assert_eq!(third.requests_on_connection, 1);
    assert_eq!(connector.stats().retired, 1);
    assert_eq!(origin.stats().idle_closes_fin, 0, "the server never closed");

    // Left idle, the third connection is retired at the same time and then
    // watched: the server closes it (a second reading of its timer, which
    // agrees with its word), and that counts as retired, not as a close
    // of a connection in use.
    sleep(Duration::from_millis(1100)).await;
    let stats = connector.stats();
    assert_eq!(
        (stats.connections, stats.retired, stats.server_closes),
        (2, 2, 0)
    );
    assert_eq!(origin.stats().idle_closes_fin, 1);
    let estimate = connector.estimate(&url(&origin)).expect("origin known");
    assert_eq!(estimate.source, Source::Header);
    origin.shutdown().await;
}

async fn learns_from_an_idle_close(mode: CloseMode) {
    let ms = Duration::from_millis;
    let origin = Origin::builder()
        .idle_timeout(ms(200))
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
    sleep(ms(300)).await;
    assert_eq!(connector.stats().server_closes, 1);
    let estimate = connector.estimate(&url(&origin)).expect("origin known");
    assert_eq!(estimate.source, Source::Learned);
    assert!(
        estimate.timeout <= ms(200) && estimate.timeout >= ms(190),
        "{estimate:?}"
    );

    // One close is all the adapter has: it retires idle connections at
    // about 186 ms, 200 ms less the 1 ms floor, 1% of a learned value, the
    // driver's lateness (under 1 ms in paused time) and 5% until a second
    // close agrees.
    let lone = connector.retire_after(&url(&origin)).expect("origin known");
    assert!(lone > ms(185) && lone <= ms(186), "{lone:?}");
    let second = get(&client, &origin, &[]).await.expect("second request");
    assert_ne!(second.connection, first.connection);
    sleep(ms(180)).await;
    let third = get(&client, &origin, &[]).await.expect("third request");
    assert_eq!(third.connection, second.connection, "reused within it");
    sleep(ms(190)).await;
    let fourth = get(&client, &origin, &[]).await.expect("fourth request");
    assert_ne!(fourth.connection, second.connection, "retired past it");
    assert_eq!(connector.stats().retired, 1);

    // Watched past its retire time, the fourth request's connection is
    // closed by the server at 200 ms: the second reading, which agrees.
    // It counts as retired, not as a server close, and the retire time
    // goes up to 200 ms less the plain margin.
    sleep(ms(300)).await;
    let stats = connector.stats();
    assert_eq!((stats.retired, stats.server_closes), (2, 1));
    let agreed = connector.retire_after(&url(&origin)).expect("origin known");
    assert!(agreed > ms(195) && agreed <= ms(197), "{agreed:?}");
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
