//! Loopback keep-alive throughput of hyper-util's legacy `Client`, plain
//! and with its connector swapped for `freshpool_legacy::Connector`, in one
//! run, at concurrency 1 and 32, against a fixed-response server on a
//! thread of its own (`freshpool_origin::FixedServer`).
//!
//! `cargo bench -p freshpool-benches --bench legacy` prints requests per
//! second (criterion's elements/s) for each, then the ratio swapped ÷
//! plain from 15 interleaved rounds (each client once per round, the order
//! rotating, so both see the same machine load): the median of the
//! per-round ratios, with their spread. The goal is ≥ 0.97.
//! `cargo bench -p freshpool-benches --bench legacy -- interleaved` runs
//! only those rounds.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use freshpool_benches::{
    Contender, Sender, Sending, client_runtime, drive, fixed_server, interleave, make_sender,
};
use freshpool_legacy::Connector;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::future::ready;

type Body = Empty<Bytes>;

/// Interleaved rounds, and how long each client runs in each.
const ROUNDS: usize = 15;
const ROUND_TIME: Duration = Duration::from_millis(400);

fn sender<C>(client: Client<C, Body>, uri: http::Uri) -> Sender
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Box::new(move || -> Sending<'static> {
        let client = client.clone();
        let uri = uri.clone();
        Box::pin(async move {
            let response = client.get(uri).await.expect("request");
            response.into_body().collect().await.expect("body");
        })
    })
}

fn http() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

fn bench_legacy(c: &mut Criterion) {
    let rt = client_runtime();
    let server = fixed_server();
    let uri: http::Uri = format!("{}/", server.base_url()).parse().expect("uri");

    let mut group = c.benchmark_group("legacy");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);

    for concurrency in [1u64, 32] {
        let plain: Client<HttpConnector, Body> =
            Client::builder(TokioExecutor::new()).build(http());
        let swapped: Client<Connector<HttpConnector>, Body> =
            Client::builder(TokioExecutor::new()).build(Connector::new(http()));
        group.bench_function(format!("hyper-util/c{concurrency}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (plain, uri) = (plain.clone(), uri.clone());
                async move {
                    drive(iters, concurrency, || {
                        ready(sender(plain.clone(), uri.clone()))
                    })
                    .await
                }
            });
        });
        group.bench_function(format!("hyper-util+Connector/c{concurrency}"), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (swapped, uri) = (swapped.clone(), uri.clone());
                async move {
                    drive(iters, concurrency, || {
                        ready(sender(swapped.clone(), uri.clone()))
                    })
                    .await
                }
            });
        });
    }
    group.finish();

    println!(
        "legacy adapter throughput, {ROUNDS} interleaved rounds of {ROUND_TIME:?} per client \
         (goal: with Connector / plain >= 0.97):"
    );
    for concurrency in [1u64, 32] {
        let plain: Client<HttpConnector, Body> =
            Client::builder(TokioExecutor::new()).build(http());
        let swapped: Client<Connector<HttpConnector>, Body> =
            Client::builder(TokioExecutor::new()).build(Connector::new(http()));
        let contenders = [
            Contender {
                name: "hyper-util",
                make: {
                    let uri = uri.clone();
                    make_sender(move || ready(sender(plain.clone(), uri.clone())))
                },
            },
            Contender {
                name: "hyper-util + Connector",
                make: {
                    let uri = uri.clone();
                    make_sender(move || ready(sender(swapped.clone(), uri.clone())))
                },
            },
        ];
        let rounds = rt.block_on(interleave(&contenders, concurrency, ROUNDS, ROUND_TIME));
        println!(
            "  c{concurrency}: hyper-util {:.0} req/s, with Connector {:.0} (medians); \
             with Connector / plain {}",
            rounds.median_rate("hyper-util"),
            rounds.median_rate("hyper-util + Connector"),
            rounds.ratio("hyper-util + Connector", "hyper-util"),
        );
    }
    server.shutdown();
}

criterion_group!(benches, bench_legacy);
criterion_main!(benches);
