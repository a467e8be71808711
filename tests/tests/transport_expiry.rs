//! The pool's clock, in paused tokio time: idle connections are retired a
//! margin before the server's deadline, by the pool's single driver, and
//! nothing outlives the client.

use std::time::Duration;

use freshpool_origin::Origin;
use freshpool_tests::{TestClient, send};
use http::Method;

async fn origin() -> Origin {
    Origin::builder()
        .idle_timeout(Duration::from_secs(600))
        .start()
        .await
        .expect("origin")
}

/// A client told that `origin` closes idle connections after 10 s, so
/// that it retires them about a millisecond before (an override is the
/// server's word: the margin is the loopback round trip and the driver's
/// slack, 1 ms at least).
fn ten_second_client(origin: &Origin) -> TestClient {
    freshpool::Client::builder()
        .idle_timeout_override(origin.addr().to_string(), Duration::from_secs(10))
        .build_http()
        .expect("settings")
}

/// Lets connection tasks and the driver run without moving the clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// The client's totals after `ms` more milliseconds of paused time.
async fn after(client: &TestClient, ms: u64) -> freshpool::OriginStats {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    settle().await;
    client.stats().total
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_retired_a_margin_before_the_servers_deadline() {
    let origin = origin().await;
    // The server's idle timeout is 10 s: its connections are retired a
    // millisecond or two before.
    let client = ten_second_client(&origin);
    let url = format!("{}/e", origin.base_url());
    send(&client, Method::GET, &url, &[])
        .await
        .expect("request");
    settle().await;
    assert_eq!(client.stats().total.idle, 1);

    let stats = after(&client, 9_990).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (1, 0), "{stats:?}");

    let stats = after(&client, 20).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (0, 1), "{stats:?}");

    // The retired socket is really closed: the origin sees it go.
    for _ in 0..100 {
        if origin.stats().connections_open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(origin.stats().connections_open, 0);

    // The next request connects afresh.
    send(&client, Method::GET, &url, &[])
        .await
        .expect("request");
    assert_eq!(origin.stats().connections_accepted, 2);
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_connection_in_use_is_retired_only_after_its_last_idle_period() {
    let origin = origin().await;
    let client = ten_second_client(&origin);
    let url = format!("{}/e", origin.base_url());
    // Used every 5 s until 15 s: each idle period restarts the 10 s retire
    // time, so the connection is still there at 10 s and 20 s (when entries
    // made for earlier idle periods come due) and goes at 25 s.
    for _ in 0..4 {
        send(&client, Method::GET, &url, &[])
            .await
            .expect("request");
        assert_eq!(after(&client, 5_000).await.retired_by_expiry, 0);
    }
    // Now 20 s: idle since 15 s.
    let stats = after(&client, 4_900).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (1, 0), "{stats:?}");
    let stats = after(&client, 200).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (0, 1), "{stats:?}");
    assert_eq!(
        (stats.requests, stats.connections_opened),
        (4, 1),
        "{stats:?}"
    );
    assert_eq!(origin.stats().connections_accepted, 1);
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn each_connection_is_retired_once_in_deadline_order() {
    let origin = origin().await;
    let client = ten_second_client(&origin);
    let url = format!("{}/e", origin.base_url());
    // Three connections whose last response byte arrives one second
    // apart: the server pauses mid-body for 0, 1 and 2 s.
    let mut held = Vec::new();
    for pause in ["0", "1000", "2000"] {
        let req = http::Request::get(&url)
            .header("x-body-size", "10")
            .header("x-pause-mid-body-ms", pause)
            .body(http_body_util::Full::default())
            .expect("request");
        held.push(client.request(req).await.expect("head"));
    }
    for response in held {
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body");
    }
    settle().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(client.stats().total.idle, 3);
    // Idle since t = 0, 1, 2 (now is t = 3): retired just before 10, 11
    // and 12. Samples at t = 3.5, 4, ..., 12.
    let mut seen = Vec::new();
    for _ in 0..18 {
        seen.push(after(&client, 500).await.retired_by_expiry);
    }
    assert_eq!(seen[11], 0, "none before t = 9.5: {seen:?}");
    assert_eq!(*seen.last().expect("samples"), 3, "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1] - w[0] <= 1),
        "one at a time: {seen:?}"
    );
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_idle_clock_starts_when_the_last_byte_comes_off_the_socket() {
    // The caller reads the response head, then takes 3 s before it reads
    // the body, which arrived with the head. The server's idle timer ran
    // from the moment it wrote the body, and so does the pool's: the
    // connection is retired 10 s after the body came off the socket, not
    // 10 s after the caller finished with it.
    let origin = origin().await;
    let client = ten_second_client(&origin);
    let url = format!("{}/e", origin.base_url());
    let req = http::Request::get(&url)
        .header("x-body-size", "100")
        .body(http_body_util::Full::default())
        .expect("request");
    let response = client.request(req).await.expect("head");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body");
    assert_eq!(body.to_bytes().len(), 100);
    settle().await;
    assert_eq!(client.stats().total.idle, 1);
    // t = 3: idle since t = 0 as far as the server is concerned.
    let stats = after(&client, 6_990).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (1, 0), "{stats:?}");
    let stats = after(&client, 20).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (0, 1), "{stats:?}");
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_margin_covers_the_jitter_of_a_reused_connections_round_trips() {
    // Two clients, each on one connection it reuses: one server answers at
    // once every time, the other takes 3 ms every other time (its worker
    // busy, say). The kernel sees the same loopback path for both; only
    // the request-to-response time shows the second server's jitter, and
    // the retire margin must cover it.
    let (steady_origin, jittery_origin) = (origin().await, origin().await);
    let steady = ten_second_client(&steady_origin);
    let jittery = ten_second_client(&jittery_origin);
    let steady_url = format!("{}/e", steady_origin.base_url());
    let jittery_url = format!("{}/e", jittery_origin.base_url());
    for i in 0..12 {
        send(&steady, Method::GET, &steady_url, &[])
            .await
            .expect("steady");
        let delay = if i % 2 == 1 { "3" } else { "0" };
        send(
            &jittery,
            Method::GET,
            &jittery_url,
            &[("x-delay-ms", delay)],
        )
        .await
        .expect("jittery");
    }
    settle().await;
    let (steady_stats, jittery_stats) = (steady.stats().total, jittery.stats().total);
    for stats in [&steady_stats, &jittery_stats] {
        assert_eq!(
            (stats.connections_opened, stats.reused),
            (1, 11),
            "{stats:?}"
        );
    }
    let steady_retire = steady.stats().origins[0]
        .1
        .retire_after
        .expect("retire time");
    let jittery_retire = jittery.stats().origins[0]
        .1
        .retire_after
        .expect("retire time");
    // srtt 0, and each 3 ms spike adds a quarter of the 1 ms it may count
    // to rttvar: after six, rttvar is 0.82 ms and the path bound 3.3 ms.
    assert!(
        jittery_retire + Duration::from_millis(3) <= steady_retire,
        "steady {steady_retire:?}, jittery {jittery_retire:?}"
    );
    assert!(
        jittery_retire + Duration::from_millis(5) > steady_retire,
        "no more than the capped jitter: steady {steady_retire:?}, jittery {jittery_retire:?}"
    );
    // The parked connection follows the wider margin: it is retired by then.
    let stats = after(&jittery, 10_000 - 3).await;
    assert_eq!((stats.idle, stats.retired_by_expiry), (0, 1), "{stats:?}");
    steady_origin.shutdown().await;
    jittery_origin.shutdown().await;
}

#[tokio::test]
async fn dropping_the_client_closes_every_connection() {
    let origin = origin().await;
    let client: TestClient = freshpool::Client::builder().build_http().expect("settings");
    let url = format!("{}/e", origin.base_url());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        let url = url.clone();
        tasks.spawn(async move { send(&client, Method::GET, &url, &[("x-delay-ms", "20")]).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("request");
    }
    assert_eq!(client.stats().total.idle, 8);
    assert_eq!(origin.stats().connections_open, 8);
    drop(client);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while origin.stats().connections_open > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        origin.stats().connections_open,
        0,
        "no connection outlives the client"
    );
    origin.shutdown().await;
}
