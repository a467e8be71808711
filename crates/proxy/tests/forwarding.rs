//! RFC 9110 forwarding through the proxy, over loopback: which header
//! fields go, which are added, what `Host` the upstream sees, size limits,
//! and HTTP/2 clients.

mod support;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use support::{
    client, echo_upstream, echoed, echoed_headers, empty, freshpool_proxy, full, get, send,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_fields_go_both_ways_and_via_and_forwarded_are_added() {
    let upstream = echo_upstream().await;
    let (proxy, _) = freshpool_proxy(&format!("http://{upstream}"), |b| b).await;
    let req = Request::post(proxy.url("/orders?id=7"))
        .header("connection", "x-private, keep-alive")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=9")
        .header("proxy-authorization", "Basic eDp5")
        .header("te", "gzip")
        .header("via", "1.0 edge")
        .header("x-forwarded-for", "203.0.113.9")
        .header("idempotency-key", "order-7")
        .header("host", "shop.example")
        .body(full("qty=1"))
        .expect("request");
    let read = send(&client(), req).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert!(
        read.body.starts_with("POST /orders?id=7\n"),
        "{}",
        read.body
    );
    assert!(read.body.ends_with("\nqty=1"), "{}", read.body);
    let seen = echoed_headers(&read.body);
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "te",
    ] {
        assert_eq!(
            echoed(&seen, gone),
            None,
            "{gone} reached the upstream: {seen:?}"
        );
    }
    assert_eq!(echoed(&seen, "idempotency-key"), Some("order-7"));
    assert_eq!(echoed(&seen, "host"), Some(upstream.to_string().as_str()));
    assert_eq!(echoed(&seen, "x-forwarded-host"), Some("shop.example"));
    assert_eq!(echoed(&seen, "x-forwarded-proto"), Some("http"));
    assert_eq!(
        echoed(&seen, "x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    let via: Vec<_> = seen
        .iter()
        .filter(|(n, _)| n == "via")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(via, ["1.0 edge", "1.1 freshpool-proxy"]);
    assert_eq!(echoed(&seen, "content-length"), Some("5"));

    // The response's hop-by-hop fields stopped at the proxy too.
    assert!(read.headers.get("x-hop").is_none(), "{:?}", read.headers);
    assert!(
        read.headers.get("keep-alive").is_none(),
        "{:?}",
        read.headers
    );
    assert_eq!(read.headers["x-end-to-end"], "stays");
    assert_eq!(read.headers["via"], "1.1 freshpool-proxy");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_preserved_when_asked_and_forwarded_fields_can_be_off() {
    let upstream = echo_upstream().await;
    let (proxy, _) = freshpool_proxy(&format!("http://{upstream}/api/"), |b| {
        b.preserve_host(true)
            .forwarded_headers(false)
            .via(Some("edge-7"))
    })
    .await;
    let req = Request::get(proxy.url("/v1/items"))
        .header("host", "shop.example")
        .header("x-forwarded-for", "198.51.100.1")
        .body(empty())
        .expect("request");
    let read = send(&client(), req).await;
    assert_eq!(read.status, 200);
    assert!(
        read.body.starts_with("GET /api/v1/items\n"),
        "prefix: {}",
        read.body
    );
    let seen = echoed_headers(&read.body);
    assert_eq!(echoed(&seen, "host"), Some("shop.example"));
    // Off means untouched: what the client sent passes, nothing is added.
    assert_eq!(echoed(&seen, "x-forwarded-for"), Some("198.51.100.1"));
    assert_eq!(echoed(&seen, "x-forwarded-proto"), None);
    assert_eq!(echoed(&seen, "via"), Some("1.1 edge-7"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_client_is_forwarded_as_http1_with_its_authority_as_host() {
    let upstream = echo_upstream().await;
    let (proxy, _) =
        freshpool_proxy(&format!("http://{upstream}"), |b| b.preserve_host(true)).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr)
        .await
        .expect("connect");
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(conn);
    let req = Request::get("http://app.example:8443/h2?x=1")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let via = response.headers()["via"].clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(body.starts_with("GET /h2?x=1\n"), "{body}");
    let seen = echoed_headers(&body);
    assert_eq!(echoed(&seen, "host"), Some("app.example:8443"));
    // The request reached the proxy as HTTP/2.
    let via_up: Vec<_> = seen.iter().filter(|(n, _)| n == "via").collect();
    assert_eq!(via_up.len(), 1);
    assert_eq!(via_up[0].1, "2 freshpool-proxy");
    // The response came from the upstream as HTTP/1.1.
    assert_eq!(via, "1.1 freshpool-proxy");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_size_limits_answer_413_and_502() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let (proxy, handle) = freshpool_proxy(&origin.base_url(), |b| {
        b.max_request_body(Some(1024)).max_response_body(Some(4096))
    })
    .await;
    let client = client();

    // Declared too large: refused before the upstream hears of it.
    let req = Request::post(proxy.url("/declared"))
        .header("x-request-id", "declared")
        .body(full(vec![b'x'; 2048]))
        .expect("request");
    let read = send(&client, req).await;
    assert_eq!(read.status, 413, "{}", read.body);
    assert!(read.body.contains("limit of 1024 bytes"), "{}", read.body);
    assert_eq!(origin.processed("declared"), 0);

    // Streamed without a length: cut off at the limit, and never processed.
    let chunks =
        futures_util::stream::iter((0..8).map(|_| {
            Ok::<_, support::BoxError>(http_body::Frame::data(Bytes::from(vec![b'y'; 512])))
        }));
    let body = http_body_util::StreamBody::new(chunks).boxed();
    let req = Request::post(proxy.url("/streamed"))
        .header("x-request-id", "streamed")
        .body(body)
        .expect("request");
    let read = send(&client, req).await;
    assert_eq!(read.status, 413, "{}", read.body);
    assert_eq!(origin.processed("streamed"), 0);

    // A response declared larger than allowed.
    let req = Request::get(proxy.url("/big"))
        .header("x-body-size", "8192")
        .body(empty())
        .expect("request");
    let read = send(&client, req).await;
    assert_eq!(read.status, 502, "{}", read.body);
    assert!(read.body.contains("8192-byte body"), "{}", read.body);
    assert!(
        read.headers["proxy-status"]
            .to_str()
            .expect("ascii")
            .contains("error=http_response_body_size")
    );

    // A HEAD declares the length of a body it does not send: no 502.
    let req = Request::head(proxy.url("/big"))
        .header("x-body-size", "8192")
        .body(empty())
        .expect("request");
    let read = send(&client, req).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.headers["content-length"], "8192");

    // A streamed (chunked) response that grows past the limit is aborted,
    // not passed off as complete.
    let req = Request::get(proxy.url("/big-chunked"))
        .header("x-body-size", "8192")
        .header("x-chunked", "1")
        .body(empty())
        .expect("request");
    // (hyper may not have written the head yet when the body fails: then
    // the client sees the connection end before a response.)
    let outcome = match client.request(req).await {
        Ok(response) => response
            .into_body()
            .collect()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(outcome.is_err(), "an over-long response passed as complete");

    // Within limits, all is well, and the stats add up.
    let read = send(&client, get(&proxy.url("/small"))).await;
    assert_eq!(read.status, 200);
    let stats = handle.stats();
    assert_eq!(stats.request_too_large, 2);
    assert_eq!(stats.bad_gateway, 1);
    proxy.stop().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_endpoint_shows_the_upstream_pool_when_asked_for() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let (proxy, _) = freshpool_proxy(&origin.base_url(), |b| b.stats_path(Some("/.stats"))).await;
    let client = client();
    for _ in 0..3 {
        assert_eq!(send(&client, get(&proxy.url("/a"))).await.status, 200);
    }
    let read = send(&client, get(&proxy.url("/.stats"))).await;
    assert_eq!(read.status, 200);
    let origin_name = origin.base_url();
    assert!(read.body.contains("proxy.requests 4"), "{}", read.body);
    assert!(
        read.body
            .contains(&format!("pool.{origin_name}.requests 3")),
        "{}",
        read.body
    );
    assert!(
        read.body
            .contains(&format!("pool.{origin_name}.connections_opened 1")),
        "{}",
        read.body
    );
    assert!(
        read.body.contains(&format!("pool.{origin_name}.reused 2")),
        "{}",
        read.body
    );
    assert_eq!(
        origin.stats().requests_processed,
        3,
        "the stats path is not forwarded"
    );
    proxy.stop().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_can_be_spoken_to_in_http2() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let upstream = freshpool::Client::builder()
        .http2_only(true)
        .build_http::<freshpool_proxy::RequestBody>()
        .expect("client");
    let proxy = freshpool_proxy::Proxy::builder(origin.base_url().parse().expect("url"))
        .build(upstream)
        .expect("proxy");
    let running = support::run(proxy).await;
    let client = client();
    for n in 0..3 {
        let req = Request::post(running.url("/h2"))
            .header("x-request-id", format!("h2-{n}"))
            .header("x-body-size", "100")
            .body(full("over h2"))
            .expect("request");
        let read = send(&client, req).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.body.len(), 100);
        assert_eq!(
            read.headers["via"], "2 freshpool-proxy",
            "the response came over HTTP/2"
        );
    }
    let stats = origin.stats();
    assert_eq!(stats.h2_connections, 1, "one shared HTTP/2 connection");
    assert_eq!(stats.requests_processed, 3);
    running.stop().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_built_in_code_is_forwarded_without_a_client_address() {
    let upstream = echo_upstream().await;
    let proxy = freshpool_proxy::Proxy::builder(format!("http://{upstream}").parse().expect("url"))
        .build(support::freshpool_client())
        .expect("proxy");
    // No serve loop: no `ClientAddr`, so no X-Forwarded-For entry of ours.
    let req = Request::put("http://app.example/items/3")
        .header("x-forwarded-for", "192.0.2.1")
        .body(http_body_util::Full::new(Bytes::from_static(b"three")))
        .expect("request");
    let response = proxy.forward_body(req).await.expect("infallible");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(body.starts_with("PUT /items/3\n"), "{body}");
    assert!(body.ends_with("\nthree"), "{body}");
    let seen = echoed_headers(&body);
    assert_eq!(echoed(&seen, "x-forwarded-for"), Some("192.0.2.1"));
    assert_eq!(echoed(&seen, "x-forwarded-host"), Some("app.example"));
    assert_eq!(echoed(&seen, "via"), Some("1.1 freshpool-proxy"));
}
