//! Graceful shutdown drains the requests in flight, in the library's serve
//! loop and in the `freshpool-proxy` binary (on SIGTERM).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use freshpool_origin::Origin;
use http::Request;
use support::{client, empty, freshpool_client, send};
use tokio::net::TcpListener;

fn slow(url: &str, id: &str, ms: u64) -> Request<support::TestBody> {
    Request::post(url)
        .header("x-request-id", id)
        .header("x-delay-ms", ms.to_string())
        .body(empty())
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish_then_stops_accepting() {
    let origin = Origin::builder().start().await.expect("origin");
    let (proxy, _) = support::freshpool_proxy(&origin.base_url(), |b| b).await;
    let addr = proxy.addr;
    let url = proxy.url("/slow");
    let in_flight = tokio::spawn(async move { send(&client(), slow(&url, "slow-1", 300)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    proxy.stop().await;
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the drain did not wait for the request in flight"
    );
    let read = in_flight.await.expect("client task");
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(origin.processed("slow-1"), 1);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_limit_drops_what_is_still_busy() {
    let origin = Origin::builder().start().await.expect("origin");
    let proxy = freshpool_proxy::Proxy::builder(origin.base_url().parse().expect("url"))
        .build(freshpool_client())
        .expect("proxy");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/slow", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(freshpool_proxy::serve_with_drain(
        listener,
        proxy,
        async {
            let _ = stopped.await;
        },
        Some(Duration::from_millis(100)),
    ));
    let in_flight =
        tokio::spawn(async move { client().request(slow(&url, "slow-2", 5_000)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let _ = stop.send(());
    serving.await.expect("task").expect("serve");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the drain limit was not kept"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(2), in_flight)
        .await
        .expect("the client was not left hanging")
        .expect("client task");
    assert!(outcome.is_err(), "a dropped request cannot have succeeded");
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_forwards_and_drains_on_sigterm() {
    let origin = Origin::builder().start().await.expect("origin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_freshpool-proxy"))
        .args(["--listen", "127.0.0.1:0", "--upstream", &origin.base_url()])
        .args(["--stats-path", "/.stats", "--drain", "5s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("freshpool-proxy starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("a line").expect("text");
    let addr = first
        .split_whitespace()
        .find_map(|w| w.trim_end_matches(',').parse::<std::net::SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let base = format!("http://{addr}");

    let client = client();
    let read = send(&client, support::get(&format!("{base}/hello"))).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.headers["via"], "1.1 freshpool-proxy");
    let stats = send(&client, support::get(&format!("{base}/.stats"))).await;
    assert!(stats.body.contains("proxy.requests 2"), "{}", stats.body);

    let url = format!("{base}/slow");
    let in_flight =
        tokio::spawn(async move { send(&support::client(), slow(&url, "slow-3", 300)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let read = in_flight.await.expect("client task");
    assert_eq!(
        read.status, 200,
        "the request in flight was not drained: {}",
        read.body
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("wait task")
        .expect("exit status");
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("draining")),
        "stderr said: {rest:?}"
    );
    origin.shutdown().await;
}

#[test]
fn the_binary_refuses_bad_arguments_and_settings() {
    let output = Command::new(env!("CARGO_BIN_EXE_freshpool-proxy"))
        .args(["--listen", "127.0.0.1:0", "--upstream", "ftp://x/"])
        .output()
        .expect("runs");
    assert_eq!(
        output.status.code(),
        Some(1),
        "a bad upstream fails the start"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("scheme must be http or https"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_freshpool-proxy"))
        .args(["--upstream", "http://127.0.0.1:1"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--listen ADDR is required"));
}
