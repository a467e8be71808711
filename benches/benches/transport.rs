//! Loopback keep-alive throughput: freshpool's `Client`, hyper-util's
//! legacy `Client`, and a bare hyper `SendRequest` per task, in one run,
//! at concurrency 1 and 32, against the same `freshpool-origin`.
//!
//! `cargo bench -p freshpool-benches --bench transport` prints requests per
//! second (criterion's elements/s) for each; the ratios to hyper-util are
//! the figures the project tracks. `freshpool-probe-always` is freshpool
//! with `probe_after(Duration::ZERO)`: what probing a connection that has
//! been idle for microseconds costs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use freshpool_benches::{Sender, drive, runtime_with_origin};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Body = Empty<Bytes>;

/// Makes a [`Sender`] for one driving task.
type MakeSender = Box<dyn Fn() -> Sender>;

fn freshpool_sender(client: freshpool::Client<HttpConnector, Body>, uri: http::Uri) -> Sender {
    Box::new(move || {
        let client = client.clone();
        let uri = uri.clone();
        Box::pin(async move {
            let response = client.get(uri).await.expect("freshpool request");
            response
                .into_body()
                .collect()
                .await
                .expect("freshpool body");
        })
    })
}

fn hyper_util_sender(client: LegacyClient<HttpConnector, Body>, uri: http::Uri) -> Sender {
    Box::new(move || {
        let client = client.clone();
        let uri = uri.clone();
        Box::pin(async move {
            let response = client.get(uri).await.expect("hyper-util request");
            response
                .into_body()
                .collect()
                .await
                .expect("hyper-util body");
        })
    })
}

async fn bare_sender(addr: std::net::SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (tx, conn) = hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let tx = Arc::new(tokio::sync::Mutex::new(tx));
    Box::new(move || {
        let tx = Arc::clone(&tx);
        Box::pin(async move {
            let mut tx = tx.lock().await;
            tx.ready().await.expect("ready");
            let req = http::Request::get("/")
                .header("host", "bench")
                .body(Body::new())
                .expect("request");
            let response = tx.send_request(req).await.expect("bare request");
            response.into_body().collect().await.expect("bare body");
        })
    })
}

fn bench_transport(c: &mut Criterion) {
    let (rt, origin) = runtime_with_origin();
    let addr = origin.addr();
    let uri: http::Uri = format!("{}/", origin.base_url()).parse().expect("uri");

    let mut group = c.benchmark_group("transport");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);

    for concurrency in [1u64, 32] {
        let fp = freshpool::Client::builder()
            .build_http::<Body>()
            .expect("settings");
        let fp_probing = freshpool::Client::builder()
            .probe_after(Duration::ZERO)
            .build_http::<Body>()
            .expect("settings");
        let hu: LegacyClient<HttpConnector, Body> = {
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            LegacyClient::builder(TokioExecutor::new()).build(http)
        };
        let pooled: [(&str, MakeSender); 3] = [
            ("freshpool", {
                let (fp, uri) = (fp.clone(), uri.clone());
                Box::new(move || freshpool_sender(fp.clone(), uri.clone()))
            }),
            ("freshpool-probe-always", {
                let (fp, uri) = (fp_probing.clone(), uri.clone());
                Box::new(move || freshpool_sender(fp.clone(), uri.clone()))
            }),
            ("hyper-util", {
                let (hu, uri) = (hu.clone(), uri.clone());
                Box::new(move || hyper_util_sender(hu.clone(), uri.clone()))
            }),
        ];
        for (name, sender) in &pooled {
            group.bench_function(format!("{name}/c{concurrency}"), |b| {
                b.to_async(&rt).iter_custom(|iters| {
                    drive(iters, concurrency, || {
                        let s = sender();
                        async move { s }
                    })
                });
            });
        }
        group.bench_function(format!("bare-hyper/c{concurrency}"), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                drive(iters, concurrency, || bare_sender(addr)).await
            });
        });
    }
    group.finish();
    rt.block_on(origin.shutdown());
}

criterion_group!(benches, bench_transport);
criterion_main!(benches);
