//! The paths a connection leaves the pool by, over loopback: whichever it
//! takes, it leaves nothing behind in the pool (no expiry entry, no idle
//! count) once it is gone.

use std::time::Duration;

use freshpool_origin::{Advertise, Origin};
use freshpool_tests::{TestClient, send};
use http::Method;

/// Waits (bounded) until the client's expiry queue holds no more entries
/// than it has idle connections: connection tasks end a moment after
/// their connection goes.
/// Waits (up to 2 s) for the expiry queue to hold no more entries than
/// there are idle connections, and asserts that it does.
async fn assert_no_stray_expiry_entries(client: &TestClient) {
    let mut stats = client.stats();
    for _ in 0..200 {
        if stats.scheduled <= stats.total.idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = client.stats();
    }
    assert!(
        stats.scheduled <= stats.total.idle,
        "{} entries for {} idle connections",
        stats.scheduled,
        stats.total.idle
    );
}

#[tokio::test]
async fn connections_that_die_checked_out_leave_no_expiry_entry() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(30))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder()
        .pool_idle_timeout(None)
        .build_http()
        .expect("settings");
    let url = format!("{}/p", origin.base_url());
    let kills: [&[(&str, &str)]; 3] = [
        // The server resets it (a POST is not retried).
        &[("x-reset-after-read", "1")],
        // The server closes it after this response.
        &[("x-close", "1")],
        // The request closes it.
        &[("connection", "close")],
    ];
    for _ in 0..10 {
        for kill in kills {
            // Parked once, so it has an entry; then it dies in use.
            send(&client, Method::GET, &url, &[]).await.expect("parks");
            let _ = send(&client, Method::POST, &url, kill).await;
        }
        // A body dropped unread takes its connection along.
        send(&client, Method::GET, &url, &[]).await.expect("parks");
        let req = http::Request::get(&url)
            .header("x-body-size", "100000")
            .body(http_body_util::Full::default())
            .expect("request");
        drop(client.request(req).await.expect("head"));
    }
    assert_no_stray_expiry_entries(&client).await;
    assert!(
        origin.stats().connections_accepted >= 40,
        "{:?}",
        origin.stats()
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn connections_spent_by_keep_alive_max_leave_no_expiry_entry() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(30))
        .advertise(Advertise::Truthful)
        .max_requests(2)
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder()
        .pool_idle_timeout(None)
        .build_http()
        .expect("settings");
    let url = format!("{}/p", origin.base_url());
    for _ in 0..40 {
        send(&client, Method::GET, &url, &[])
            .await
            .expect("request");
    }
    assert_no_stray_expiry_entries(&client).await;
    assert_eq!(origin.stats().connections_accepted, 20);
    origin.shutdown().await;
}

#[tokio::test]
async fn idle_connections_the_server_closed_leave_the_pool_as_server_closes() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(30))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    let url = format!("{}/p", origin.base_url());
    let slow = [("x-delay-ms", "30")];
    let (a, b, c) = tokio::join!(
        send(&client, Method::GET, &url, &slow),
        send(&client, Method::GET, &url, &slow),
        send(&client, Method::GET, &url, &slow),
    );
    for done in [a, b, c] {
        done.expect("parks");
    }
    assert_eq!(client.stats().total.idle, 3);
    origin.close_idle();
    let mut stats = client.stats();
    for _ in 0..200 {
        if stats.total.idle == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = client.stats();
    }
    let total = stats.total;
    assert_eq!(total.idle, 0, "dropped when their tasks ended: {total:?}");
    assert_eq!(stats.scheduled, 0);
    // Two closes at one idle age teach that age as the timeout: a third
    // still parked is then past its retire time, and its close is one
    // the pool watched for (counted as retired, not as a server close).
    assert_eq!(
        total.server_closes_observed + total.retired_by_expiry,
        3,
        "{total:?}"
    );
    assert!(total.server_closes_observed >= 2, "{total:?}");
    // The next request connects instead of failing on a dead one.
    send(&client, Method::GET, &url, &[])
        .await
        .expect("request");
    assert_eq!(client.stats().total.errors, 0);
    assert_eq!(origin.stats().connections_accepted, 4);
    origin.shutdown().await;
}

#[tokio::test]
async fn responses_carry_the_connectors_extras_and_a_poisoned_connection_is_not_reused() {
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::connect::HttpInfo;

    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(30))
        .start()
        .await
        .expect("origin");
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    let url = format!("{}/p", origin.base_url());
    let request = || {
        http::Request::get(&url)
            .body(http_body_util::Full::default())
            .expect("request")
    };

    let mut req = request();
    let captured = freshpool::capture_connection(&mut req);
    let response = client.request(req).await.expect("response");
    let info = response
        .extensions()
        .get::<HttpInfo>()
        .expect("HttpInfo in the response, as hyper-util's Client puts it")
        .clone();
    assert_eq!(info.remote_addr(), origin.addr());
    assert_ne!(info.local_addr().port(), 0);
    response.into_body().collect().await.expect("body");
    let connection = captured.connection_metadata().expect("captured");
    assert!(!connection.is_proxied());
    let mut extras = http::Extensions::new();
    connection.get_extras(&mut extras);
    assert_eq!(
        extras.get::<HttpInfo>().map(HttpInfo::local_addr),
        Some(info.local_addr())
    );

    // Reused while healthy; poisoned, never again.
    let (_, first, _) = send(&client, Method::GET, &url, &[]).await.expect("reused");
    assert_eq!(origin.stats().connections_accepted, 1);
    connection.poison();
    let (_, second, _) = send(&client, Method::GET, &url, &[]).await.expect("fresh");
    assert_ne!(first, second);
    assert_eq!(origin.stats().connections_accepted, 2);

    // Poisoned while in use (its body not yet read): it is not parked
    // when its response ends.
    let mut req = request();
    req.headers_mut()
        .insert("x-body-size", http::HeaderValue::from_static("1000"));
    let mut captured = freshpool::capture_connection(&mut req);
    let response = client.request(req).await.expect("response");
    let later = captured
        .wait_for_connection_metadata()
        .await
        .expect("captured");
    // Connections are numbered in order, once: the third is a new one.
    assert!(
        later.id() > connection.id(),
        "{later:?} after {connection:?}"
    );
    later.poison();
    response.into_body().collect().await.expect("body");
    assert_eq!(client.stats().total.idle, 0);
    send(&client, Method::GET, &url, &[]).await.expect("fresh");
    assert_eq!(origin.stats().connections_accepted, 3);
    assert_eq!(client.stats().total.errors, 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn origins_with_nothing_left_are_forgotten_beyond_a_bound() {
    let origin = Origin::builder()
        .listen("0.0.0.0:0".parse().expect("address"))
        .idle_timeout(Duration::from_secs(30))
        .start()
        .await
        .expect("origin");
    let port = origin.addr().port();
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    // 300 origins (all of 127/8 is loopback), each left with nothing once
    // the server closes its one connection.
    const ORIGINS: u32 = 300;
    for i in 0..ORIGINS {
        let url = format!("http://127.0.{}.{}:{port}/p", i / 250, i % 250 + 1);
        send(&client, Method::GET, &url, &[("x-close", "1")])
            .await
            .expect("request");
    }
    let mut stats = client.stats();
    for _ in 0..200 {
        if stats.origins.len() <= 256 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = client.stats();
    }
    assert!(
        stats.origins.len() <= 256,
        "{} origins listed, none with a connection",
        stats.origins.len()
    );
    assert_eq!(stats.total.open, 0);
    // Forgotten origins still count in the totals.
    assert_eq!(stats.total.requests, u64::from(ORIGINS));
    assert_eq!(stats.total.connections_opened, u64::from(ORIGINS));

    // An origin that comes back is served as before.
    let url = format!("http://127.0.0.1:{port}/p");
    send(&client, Method::GET, &url, &[]).await.expect("again");
    send(&client, Method::GET, &url, &[]).await.expect("reused");
    let again = client.stats();
    let back = again
        .origin(&format!("http://127.0.0.1:{port}"))
        .expect("listed");
    assert_eq!(back.idle, 1);
    assert_eq!(again.total.requests, u64::from(ORIGINS) + 2);
    origin.shutdown().await;
}
