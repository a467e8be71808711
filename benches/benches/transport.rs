//! Loopback keep-alive throughput: freshpool's `Client`, hyper-util's
//! legacy `Client`, and a bare hyper `SendRequest` per task, in one run,
//! at concurrency 1 and 32, against a fixed-response server on a thread of
//! its own (`freshpool_origin::FixedServer`: it costs almost nothing per
//! request, so the figures are the clients').
//!
//! `cargo bench -p freshpool-benches --bench transport` prints requests per
//! second (criterion's elements/s) for each, then the figures the project
//! tracks: the clients in 15 interleaved rounds (each client once per
//! round, the order rotating), and the median of the per-round ratios
//! freshpool ÷ bare hyper and hyper-util ÷ bare hyper, with their spread.
//! The rounds also run [`MinimalPool`], a featureless pool with hyper-util's
//! interface: `MinimalPool ÷ bare hyper` is what that interface alone
//! costs, and `freshpool ÷ MinimalPool` what freshpool's features cost.
//! `cargo bench -p freshpool-benches --bench transport -- interleaved`
//! runs only those rounds. `freshpool-probe-always` is freshpool with
//! `probe_after(Duration::ZERO)`: what probing a connection that has been
//! idle for microseconds costs.

use std::future::ready;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use freshpool_benches::{
    Contender, MinimalPool, Sender, Sending, bare_sender, client_runtime, drive, fixed_server,
    interleave, make_sender, minimal_sender,
};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Body = Empty<Bytes>;

/// Makes a pooled client's [`Sender`] for one criterion task.
type PooledSender = Box<dyn Fn() -> Sender>;

/// Interleaved rounds, and how long each client runs in each.
const ROUNDS: usize = 15;
const ROUND_TIME: Duration = Duration::from_millis(400);

fn freshpool_sender(client: freshpool::Client<HttpConnector, Body>, uri: http::Uri) -> Sender {
    Box::new(move || -> Sending<'static> {
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
    Box::new(move || -> Sending<'static> {
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

fn freshpool_client() -> freshpool::Client<HttpConnector, Body> {
    freshpool::Client::builder()
        .build_http::<Body>()
        .expect("settings")
}

fn hyper_util_client() -> LegacyClient<HttpConnector, Body> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    LegacyClient::builder(TokioExecutor::new()).build(http)
}

fn bench_transport(c: &mut Criterion) {
    let rt = client_runtime();
    let server = fixed_server();
    let addr = server.addr();
    let uri: http::Uri = format!("{}/", server.base_url()).parse().expect("uri");

    let mut group = c.benchmark_group("transport");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);

    for concurrency in [1u64, 32] {
        let fp = freshpool_client();
        let fp_probing = freshpool::Client::builder()
            .probe_after(Duration::ZERO)
            .build_http::<Body>()
            .expect("settings");
        let hu = hyper_util_client();
        let pooled: [(&str, PooledSender); 3] = [
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

    println!(
        "transport throughput, {ROUNDS} interleaved rounds of {ROUND_TIME:?} per client \
         (goal: freshpool / bare hyper >= 0.97):"
    );
    for concurrency in [1u64, 32] {
        let (fp, hu) = (freshpool_client(), hyper_util_client());
        let contenders = [
            Contender {
                name: "bare hyper",
                make: make_sender(move || bare_sender(addr)),
            },
            Contender {
                name: "freshpool",
                make: {
                    let uri = uri.clone();
                    make_sender(move || ready(freshpool_sender(fp.clone(), uri.clone())))
                },
            },
            Contender {
                name: "hyper-util",
                make: {
                    let uri = uri.clone();
                    make_sender(move || ready(hyper_util_sender(hu.clone(), uri.clone())))
                },
            },
            Contender {
                name: "minimal pool",
                make: {
                    let pool = MinimalPool::new(addr);
                    make_sender(move || ready(minimal_sender(pool.clone())))
                },
            },
        ];
        let rounds = rt.block_on(interleave(&contenders, concurrency, ROUNDS, ROUND_TIME));
        println!(
            "  c{concurrency}: bare hyper {:.0} req/s, freshpool {:.0}, hyper-util {:.0}, \
             minimal pool {:.0} (medians)",
            rounds.median_rate("bare hyper"),
            rounds.median_rate("freshpool"),
            rounds.median_rate("hyper-util"),
            rounds.median_rate("minimal pool"),
        );
        for (numerator, denominator) in [
            ("freshpool", "bare hyper"),
            ("hyper-util", "bare hyper"),
            ("minimal pool", "bare hyper"),
            ("freshpool", "minimal pool"),
        ] {
            let pair = format!("{numerator} / {denominator}");
            let ratio = rounds.ratio(numerator, denominator);
            println!("  c{concurrency}: {pair:<27} {ratio}");
        }
    }
    server.shutdown();
}

criterion_group!(benches, bench_transport);
criterion_main!(benches);
