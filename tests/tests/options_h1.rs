//! hyper-util's HTTP/1 options and the executor, as `freshpool::Builder`
//! passes them on to hyper: each is observed on the wire of a tiny raw TCP
//! server (or at `freshpool-origin`), against the default as a reference.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use freshpool::BoxSendFuture;
use freshpool_tests::TestClient;
use http_body_util::{BodyExt, Full};
use hyper::rt::Executor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A raw HTTP/1.1 server: on every connection, answers each request head
/// (requests carry no body) with `response`, and reports each head it read.
async fn raw_server(response: &'static [u8]) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (heads, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                        if stream.write_all(response).await.is_err() {
                            return;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, received)
}

fn get(addr: SocketAddr, headers: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let mut req = http::Request::get(format!("http://{addr}/o"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::default()).expect("valid request")
}

fn client(builder: freshpool::Builder) -> TestClient {
    builder.build_http().expect("settings")
}

/// The request head the server read for one request from `client`.
async fn head_sent(client: &TestClient, response: &'static [u8]) -> String {
    let (addr, mut heads) = raw_server(response).await;
    let response = client
        .request(get(addr, &[("x-trace-id", "1")]))
        .await
        .expect("response");
    response.into_body().collect().await.expect("body");
    heads.recv().await.expect("a request head")
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

#[tokio::test]
async fn title_case_headers_reach_the_wire() {
    let plain = head_sent(&client(freshpool::Client::builder()), OK).await;
    assert!(plain.contains("\r\nx-trace-id: 1\r\n"), "{plain}");
    assert!(plain.contains("\r\nhost: "), "{plain}");

    let titled = client(freshpool::Client::builder().http1_title_case_headers(true));
    let titled = head_sent(&titled, OK).await;
    assert!(titled.contains("\r\nX-Trace-Id: 1\r\n"), "{titled}");
    assert!(titled.contains("\r\nHost: "), "{titled}");
}

/// Sends a request whose extensions are those of a response received
/// earlier on `client`, and returns the head the server read for it.
async fn head_with_response_extensions(client: &TestClient) -> String {
    const MIXED: &[u8] = b"HTTP/1.1 200 OK\r\nX-MiXeD-CaSe: 1\r\ncontent-length: 0\r\n\r\n";
    let (addr, mut heads) = raw_server(MIXED).await;
    let response = client.request(get(addr, &[])).await.expect("response");
    let (parts, body) = response.into_parts();
    body.collect().await.expect("body");
    heads.recv().await.expect("first head");

    let mut req = get(addr, &[("x-mixed-case", "2")]);
    *req.extensions_mut() = parts.extensions;
    let response = client.request(req).await.expect("response");
    response.into_body().collect().await.expect("body");
    heads.recv().await.expect("second head")
}

#[tokio::test]
async fn preserve_header_case_passes_names_on_as_received() {
    let plain = head_with_response_extensions(&client(freshpool::Client::builder())).await;
    assert!(plain.contains("\r\nx-mixed-case: 2\r\n"), "{plain}");

    let preserving = client(freshpool::Client::builder().http1_preserve_header_case(true));
    let preserved = head_with_response_extensions(&preserving).await;
    assert!(preserved.contains("\r\nX-MiXeD-CaSe: 2\r\n"), "{preserved}");
}

/// The headers of the one response `client` gets from a server that
/// answers with `response`, or the error.
async fn parse(client: &TestClient, response: &'static [u8]) -> Result<http::HeaderMap, String> {
    let (addr, _heads) = raw_server(response).await;
    match client.request(get(addr, &[])).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            body.collect().await.expect("body");
            Ok(parts.headers)
        }
        Err(error) => Err(format!("{error:?}")),
    }
}

#[tokio::test]
async fn obsolete_line_folding_is_accepted_only_when_allowed() {
    const FOLDED: &[u8] =
        b"HTTP/1.1 200 OK\r\nx-folded: first\r\n  second\r\nx-good: 1\r\ncontent-length: 0\r\n\r\n";
    let error = parse(&client(freshpool::Client::builder()), FOLDED)
        .await
        .expect_err("a folded header is a parse error by default");
    assert!(error.contains("Parse"), "{error}");

    let lenient =
        freshpool::Client::builder().http1_allow_obsolete_multiline_headers_in_responses(true);
    let headers = parse(&client(lenient), FOLDED).await.expect("accepted");
    let folded = headers["x-folded"].to_str().expect("text");
    assert!(
        folded.starts_with("first") && folded.ends_with("second") && !folded.contains('\n'),
        "{folded:?}"
    );
    assert_eq!(headers["x-good"], "1");
}

#[tokio::test]
async fn invalid_header_lines_are_ignored_only_when_asked() {
    const INVALID: &[u8] =
        b"HTTP/1.1 200 OK\r\nbad(name): x\r\nx-good: 1\r\ncontent-length: 0\r\n\r\n";
    let error = parse(&client(freshpool::Client::builder()), INVALID)
        .await
        .expect_err("an invalid header name is a parse error by default");
    assert!(error.contains("Parse"), "{error}");

    let lenient = freshpool::Client::builder().http1_ignore_invalid_headers_in_responses(true);
    let headers = parse(&client(lenient), INVALID).await.expect("accepted");
    assert_eq!(headers.len(), 2, "only the valid lines: {headers:?}");
    assert_eq!(headers["x-good"], "1");
}

/// Counts what it spawns, and spawns it on tokio.
#[derive(Clone, Default)]
struct CountingExecutor(Arc<AtomicUsize>);

impl Executor<BoxSendFuture> for CountingExecutor {
    fn execute(&self, future: BoxSendFuture) {
        self.0.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(future);
    }
}

#[tokio::test]
async fn connection_tasks_run_on_the_given_executor() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let executor = CountingExecutor::default();
    let client = client(freshpool::Client::builder().executor(executor.clone()));
    let url = format!("{}/e", origin.base_url());
    // Two at once need two connections; the third reuses one.
    let held = [
        client.request(get_url(&url)).await.expect("first"),
        client.request(get_url(&url)).await.expect("second"),
    ];
    for response in held {
        response.into_body().collect().await.expect("body");
    }
    let response = client.request(get_url(&url)).await.expect("third");
    response.into_body().collect().await.expect("body");

    let stats = client.stats().total;
    assert_eq!(
        (stats.connections_opened, stats.reused),
        (2, 1),
        "{stats:?}"
    );
    assert_eq!(
        executor.0.load(Ordering::Relaxed),
        2,
        "one task per connection"
    );
    origin.shutdown().await;
}

fn get_url(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url)
        .header("x-body-size", "10")
        .body(Full::default())
        .expect("valid request")
}

#[test]
fn invalid_protocol_settings_are_refused_by_name() {
    use std::time::Duration;
    let cases = [
        (
            freshpool::Client::builder().http1_max_buf_size(100),
            "http1_max_buf_size",
        ),
        (
            freshpool::Client::builder().http2_max_frame_size(1024),
            "http2_max_frame_size",
        ),
        (
            freshpool::Client::builder().http2_max_frame_size(1 << 24),
            "http2_max_frame_size",
        ),
        (
            freshpool::Client::builder().http2_initial_stream_window_size(u32::MAX),
            "http2_initial_stream_window_size",
        ),
        (
            freshpool::Client::builder().http2_initial_connection_window_size(1 << 31),
            "http2_initial_connection_window_size",
        ),
        (
            freshpool::Client::builder().http2_keep_alive_interval(Duration::ZERO),
            "http2_keep_alive_interval",
        ),
        (
            freshpool::Client::builder().http2_keep_alive_timeout(Duration::ZERO),
            "http2_keep_alive_timeout",
        ),
    ];
    for (builder, setting) in cases {
        let error = builder.build_http::<Full<Bytes>>().expect_err(setting);
        assert_eq!(error.setting(), setting, "{error}");
    }
    // The edges of the ranges are fine.
    freshpool::Client::builder()
        .http1_max_buf_size(8 * 1024)
        .http2_max_frame_size(16_384)
        .http2_initial_stream_window_size((1 << 31) - 1)
        .build_http::<Full<Bytes>>()
        .expect("valid settings");
}
