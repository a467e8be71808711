//! When the upstream fails or misbehaves, the client gets a clean `502` or
//! `504` naming the cause (or, once a response head went out, an aborted
//! body), never a hang, and the proxy serves the next request.

mod support;

use std::time::{Duration, Instant};

use http::Request;
use http_body_util::BodyExt;
use support::{client, freshpool_proxy, get, hostile_upstream, legacy_client, run, send};

fn proxy_status(read: &support::Read) -> String {
    read.headers
        .get("proxy-status")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_502_naming_the_refused_connection() {
    // A port nobody listens on: bind, learn it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let upstream = format!("http://127.0.0.1:{port}");
    let (proxy, handle) = freshpool_proxy(&upstream, |b| b).await;
    let read = send(&client(), get(&proxy.url("/"))).await;
    assert_eq!(read.status, 502, "{}", read.body);
    assert!(
        read.body.starts_with(&format!(
            "502 Bad Gateway: cannot connect to upstream {upstream}"
        )),
        "{}",
        read.body
    );
    assert!(read.body.contains("refused"), "{}", read.body);
    assert!(
        proxy_status(&read).contains("error=connection_refused"),
        "{}",
        proxy_status(&read)
    );
    assert_eq!(handle.stats().bad_gateway, 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_upstream_gets_clean_answers_and_the_next_request_is_served() {
    let upstream = hostile_upstream().await;
    let url = format!("http://{upstream}");
    let timeout = Duration::from_millis(300);
    let (proxy, handle) = freshpool_proxy(&url, |b| b.upstream_timeout(Some(timeout))).await;
    let client = client();
    let cases = [
        (
            "/garbage",
            502,
            "error=http_protocol_error",
            "sent no valid response",
        ),
        (
            "/big-head",
            502,
            "error=http_response_header_section_size",
            "response head too large",
        ),
        ("/rst", 502, "error=", "upstream"),
        (
            "/hang",
            504,
            "error=http_response_timeout",
            "sent no response within 300ms",
        ),
    ];
    for (path, status, kind, words) in cases {
        let started = Instant::now();
        let read = send(&client, get(&proxy.url(path))).await;
        assert_eq!(read.status, status, "{path}: {}", read.body);
        assert!(
            proxy_status(&read).contains(kind),
            "{path}: {}",
            proxy_status(&read)
        );
        assert!(read.body.contains(words), "{path}: {}", read.body);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            started.elapsed()
        );
        // The proxy is fine: the next request is served.
        let next = send(&client, get(&proxy.url("/ok"))).await;
        assert_eq!(
            (next.status, next.body.as_str()),
            (200, "ok"),
            "after {path}"
        );
    }

    // Once the head has gone to the client, a body that stops (RST) or
    // stalls past the timeout is aborted, never passed off as complete.
    for path in ["/rst-mid-body", "/hang-mid-body"] {
        let started = Instant::now();
        let response = client
            .request(get(&proxy.url(path)))
            .await
            .expect("the head arrives");
        assert_eq!(response.status(), 200);
        let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
            .await
            .expect("the body ends, one way or the other");
        assert!(body.is_err(), "{path}: a truncated body passed as complete");
        assert!(started.elapsed() < Duration::from_secs(5));
        let next = send(&client, get(&proxy.url("/ok"))).await;
        assert_eq!(
            (next.status, next.body.as_str()),
            (200, "ok"),
            "after {path}"
        );
    }
    let stats = handle.stats();
    assert_eq!(stats.bad_gateway, 3);
    assert_eq!(stats.gateway_timeout, 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hyper_util_proxy_answers_the_same_way() {
    let upstream = hostile_upstream().await;
    let proxy = freshpool_proxy::Proxy::builder(format!("http://{upstream}").parse().expect("url"))
        .upstream_timeout(Some(Duration::from_millis(300)))
        .build(legacy_client())
        .expect("proxy");
    let running = run(proxy).await;
    let client = client();
    for (path, status) in [("/garbage", 502), ("/hang", 504), ("/ok", 200)] {
        let read = send(&client, get(&running.url(path))).await;
        assert_eq!(read.status, status, "{path}: {}", read.body);
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_reset_after_reading_a_post_is_a_502_and_is_not_retried() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let (proxy, _) = freshpool_proxy(&origin.base_url(), |b| b).await;
    let client = client();
    // Warm one upstream connection, so the failing POST goes out on a
    // reused one: even then, a POST the upstream read must not be resent.
    assert_eq!(send(&client, get(&proxy.url("/warm"))).await.status, 200);
    let req = Request::post(proxy.url("/orders"))
        .header("x-request-id", "reset-1")
        .header("x-reset-after-read", "1")
        .body(support::full("qty=1"))
        .expect("request");
    let read = send(&client, req).await;
    assert_eq!(read.status, 502, "{}", read.body);
    assert_eq!(
        origin.processed("reset-1"),
        1,
        "processed once, never twice"
    );
    assert_eq!(send(&client, get(&proxy.url("/after"))).await.status, 200);
    proxy.stop().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_idempotency_key_freshpool_retries_once_and_the_proxy_never_does() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let (proxy, handle) = freshpool_proxy(&origin.base_url(), |b| b).await;
    let client = client();
    assert_eq!(send(&client, get(&proxy.url("/warm"))).await.status, 200);
    // The key tells freshpool the upstream deduplicates: RFC 9112 §9.3.1
    // then allows one retry, on a fresh connection, of a POST whose reused
    // connection failed. The retry meets the same reset and is final.
    let req = Request::post(proxy.url("/orders"))
        .header("x-request-id", "keyed-1")
        .header("idempotency-key", "order-1")
        .header("x-reset-after-read", "1")
        .body(support::full("qty=1"))
        .expect("request");
    let read = send(&client, req).await;
    assert_eq!(read.status, 502, "{}", read.body);
    assert!(read.body.contains("after 2 attempts"), "{}", read.body);
    assert_eq!(origin.processed("keyed-1"), 2, "one attempt and one retry");
    let pool = handle.stats().upstream.expect("freshpool keeps stats");
    assert_eq!(pool.total.retries_idempotency_key, 1);
    proxy.stop().await;
    origin.shutdown().await;
}
