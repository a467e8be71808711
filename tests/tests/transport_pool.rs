//! Pool behaviour of `freshpool::Client` over loopback: reuse, the cases
//! that are never pooled, limits, and bad input.

use std::time::Duration;

use freshpool_origin::{Advertise, CloseMode, Origin};
use freshpool_tests::{TestClient, send};
use http::Method;

async fn origin(idle: Duration) -> Origin {
    Origin::builder()
        .idle_timeout(idle)
        .start()
        .await
        .expect("origin starts")
}

fn client() -> TestClient {
    freshpool::Client::builder()
        .build_http()
        .expect("valid settings")
}

#[tokio::test]
async fn back_to_back_requests_reuse_one_connection() {
    let origin = origin(Duration::from_secs(5)).await;
    let client = client();
    let url = format!("{}/a", origin.base_url());
    let mut conns = Vec::new();
    for _ in 0..20 {
        let (status, conn, _) = send(&client, Method::GET, &url, &[])
            .await
            .expect("request");
        assert_eq!(status, 200);
        conns.push(conn);
    }
    assert!(conns.iter().all(|c| *c == conns[0]), "{conns:?}");
    assert_eq!(origin.stats().connections_accepted, 1);
    let stats = client.stats();
    assert_eq!(stats.total.requests, 20);
    assert_eq!(stats.total.reused, 19);
    assert_eq!(stats.total.connections_opened, 1);
    origin.shutdown().await;
}

/// A request goes out when its future is first polled, not when it is
/// made: a future dropped unpolled sends nothing and leaves the idle
/// connection in the pool, and one made early is sent when awaited, on
/// that same connection.
#[tokio::test]
async fn a_request_is_sent_when_its_future_is_first_polled() {
    let origin = origin(Duration::from_secs(5)).await;
    let client = client();
    let url = format!("{}/a", origin.base_url());
    let (_, first, _) = send(&client, Method::GET, &url, &[])
        .await
        .expect("request");
    let unpolled = client.request(get(&url));
    let later = client.request(get(&url));
    // Long enough for a request handed to the connection to be served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(unpolled);
    assert_eq!(origin.stats().requests_processed, 1, "sent unpolled");
    assert_eq!(client.stats().total.idle, 1, "the idle connection stays");
    let response = later.await.expect("request");
    let conn = response.headers()["x-connection-id"]
        .to_str()
        .map(str::to_owned);
    http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body");
    assert_eq!(conn.ok(), Some(first.to_string()), "reused");
    assert_eq!(origin.stats().requests_processed, 2);
    assert_eq!(origin.stats().connections_accepted, 1);
    origin.shutdown().await;
}

fn get(url: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::get(url)
        .body(http_body_util::Full::default())
        .expect("request")
}

#[tokio::test]
async fn connection_close_response_is_not_pooled() {
    let origin = origin(Duration::from_secs(5)).await;
    let client = client();
    let url = format!("{}/a", origin.base_url());
    let (_, first, _) = send(&client, Method::GET, &url, &[("x-close", "1")])
        .await
        .expect("first");
    let (_, second, _) = send(&client, Method::GET, &url, &[]).await.expect("second");
    assert_ne!(first, second);
    assert_eq!(client.stats().total.reused, 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn request_with_connection_close_is_not_pooled() {
    let origin = origin(Duration::from_secs(5)).await;
    let client = client();
    let url = format!("{}/a", origin.base_url());
    let (_, first, _) = send(&client, Method::GET, &url, &[("connection", "close")])
        .await
        .expect("first");
    let (_, second, _) = send(&client, Method::GET, &url, &[]).await.expect("second");
    assert_ne!(first, second);
    origin.shutdown().await;
}

#[tokio::test]
async fn body_dropped_unread_takes_its_connection_along() {
    let origin = origin(Duration::from_secs(5)).await;
    let client = client();
    let url = format!("{}/a", origin.base_url());
    let req = http::Request::get(&url)
        .header("x-body-size", "100000")
        .body(http_body_util::Full::default())
        .expect("request");
    let response = client.request(req).await.expect("head");
    drop(response);
    let (_, _, len) = send(&client, Method::GET, &url, &[]).await.expect("second");
    assert_eq!(len, 0);
    assert_eq!(origin.stats().connections_accepted, 2);
    assert_eq!(client.stats().total.reused, 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn keep_alive_max_is_respected() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .advertise(Advertise::Truthful)
        .max_requests(3)
        .start()
        .await
        .expect("origin");
    let client = client();
    let url = format!("{}/a", origin.base_url());
    for _ in 0..9 {
        send(&client, Method::POST, &url, &[])
            .await
            .expect("request");
    }
    let stats = origin.stats();
    assert_eq!(stats.connections_accepted, 3, "{stats:?}");
    assert_eq!(stats.requests_processed, 9);
    assert_eq!(client.stats().total.errors, 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn stray_408_on_an_idle_connection_is_never_reused() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_millis(100))
        .close_mode(CloseMode::Timeout408)
        .start()
        .await
        .expect("origin");
    // Make the client's own estimate long so only the probe (or hyper
    // noticing the bytes) can protect the request.
    let client: TestClient = freshpool::Client::builder()
        .idle_timeout_override(origin.addr().to_string(), Duration::from_secs(60))
        .build_http()
        .expect("settings");
    let url = format!("{}/a", origin.base_url());
    send(&client, Method::POST, &url, &[]).await.expect("first");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, _) = send(&client, Method::POST, &url, &[])
        .await
        .expect("second");
    assert_eq!(status, 200);
    let stats = client.stats();
    assert_eq!(stats.total.reused, 0, "{stats:?}");
    assert_eq!(origin.stats().connections_accepted, 2);
    assert_eq!(origin.stats().duplicate_requests, 0);
    origin.shutdown().await;
}

#[tokio::test]
async fn idle_timeout_learned_from_an_observed_close() {
    let origin = origin(Duration::from_millis(150)).await;
    let client = client();
    let url = format!("{}/a", origin.base_url());
    send(&client, Method::POST, &url, &[]).await.expect("first");
    tokio::time::sleep(Duration::from_millis(400)).await;
    send(&client, Method::POST, &url, &[])
        .await
        .expect("second");
    let stats = client.stats();
    let ours = stats.origin(&origin.base_url()).expect("origin stats");
    assert_eq!(ours.server_closes_observed, 1, "{ours:?}");
    let (estimate, source) = ours.estimate.expect("estimate");
    assert_eq!(source, freshpool::Source::Learned);
    assert!(
        estimate >= Duration::from_millis(150) && estimate < Duration::from_millis(400),
        "{estimate:?}"
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn max_connections_per_host_bounds_sockets_and_serves_waiters() {
    let origin = origin(Duration::from_secs(5)).await;
    let client: TestClient = freshpool::Client::builder()
        .max_connections_per_host(2)
        .build_http()
        .expect("settings");
    let url = format!("{}/a", origin.base_url());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let client = client.clone();
        let url = url.clone();
        tasks.spawn(async move { send(&client, Method::GET, &url, &[("x-delay-ms", "30")]).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task").expect("request");
    }
    let stats = origin.stats();
    assert!(stats.max_connections_open <= 2, "{stats:?}");
    assert_eq!(stats.requests_processed, 12);
    origin.shutdown().await;
}

#[tokio::test]
async fn checkout_timeout_names_its_cause() {
    let origin = origin(Duration::from_secs(5)).await;
    let client: TestClient = freshpool::Client::builder()
        .max_connections_per_host(1)
        .checkout_timeout(Duration::from_millis(50))
        .build_http()
        .expect("settings");
    let url = format!("{}/a", origin.base_url());
    let slow = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(
            async move { send(&client, Method::GET, &url, &[("x-delay-ms", "500")]).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = send(&client, Method::GET, &url, &[])
        .await
        .expect_err("limit reached");
    assert!(err.is_checkout_timeout(), "{err:?}");
    assert!(
        err.to_string().contains("max_connections_per_host"),
        "{err}"
    );
    slow.await.expect("task").expect("slow request");
    origin.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let client = client();
    let no_scheme = send(&client, Method::GET, "/path", &[])
        .await
        .expect_err("no scheme");
    assert!(no_scheme.is_invalid_uri(), "{no_scheme:?}");
    let ftp = send(&client, Method::GET, "ftp://127.0.0.1/", &[])
        .await
        .expect_err("ftp");
    assert!(
        ftp.is_invalid_uri() && ftp.to_string().contains("scheme"),
        "{ftp}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = listener.local_addr().expect("addr");
    drop(listener);
    let refused = send(&client, Method::GET, &format!("http://{closed}/"), &[])
        .await
        .expect_err("nothing listens");
    assert!(refused.is_connect(), "{refused:?}");
    assert!(std::error::Error::source(&refused).is_some());

    let settings = freshpool::Client::builder()
        .max_connections_per_host(0)
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let err = settings.expect_err("zero connections is invalid");
    assert_eq!(err.setting(), "max_connections_per_host");
}

#[tokio::test]
async fn upgraded_connections_are_never_pooled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // freshpool-origin speaks no upgrade protocol; a few lines of raw
    // socket do: answer every request with 101, then echo.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let server = {
        let accepted = std::sync::Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let _ = socket
                        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
                        .await;
                    let mut buf = [0u8; 64];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    };

    let client = client();
    for _ in 0..2 {
        let req = http::Request::get(format!("http://{addr}/"))
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(http_body_util::Full::default())
            .expect("request");
        let response = client.request(req).await.expect("101");
        assert_eq!(response.status(), 101);
        let upgraded = hyper::upgrade::on(response).await.expect("upgraded IO");
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        io.write_all(b"ping").await.expect("write");
        let mut echo = [0u8; 4];
        io.read_exact(&mut echo).await.expect("echo");
        assert_eq!(&echo, b"ping");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(client.stats().total.reused, 0);
    server.abort();
}

#[tokio::test]
async fn unprobed_connectors_still_pool_and_retire() {
    let origin = origin(Duration::from_secs(5)).await;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.set_nodelay(true);
    let client = freshpool::Client::builder()
        .build::<_, http_body_util::Full<bytes::Bytes>>(freshpool::Unprobed::new(http))
        .expect("settings");
    let url = format!("{}/u", origin.base_url());
    for _ in 0..3 {
        let req = http::Request::get(&url)
            .body(http_body_util::Full::default())
            .expect("request");
        let response = client.request(req).await.expect("response");
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .expect("body");
    }
    assert_eq!(origin.stats().connections_accepted, 1);
    assert_eq!(client.stats().total.reused, 2);
    origin.shutdown().await;
}
