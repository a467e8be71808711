//! Loopback keep-alive throughput of hyper-util's legacy `Client`, plain
//! and with its connector swapped for `freshpool_legacy::Connector`, in one
//! run, at concurrency 1 and 32, against the same `freshpool-origin`.
//!
//! `cargo bench -p freshpool-benches --bench legacy` prints requests per
//! second (criterion's elements/s) for each, then the ratio swapped ÷
//! plain from an interleaved run (alternating rounds, so both clients see
//! the same machine load). The goal is ≥ 0.95.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use freshpool_benches::{Sender, drive, runtime_with_origin};
use freshpool_legacy::Connector;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::future::ready;

type Body = Empty<Bytes>;

fn sender<C>(client: Client<C, Body>, uri: http::Uri) -> Sender
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Box::new(move || {
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
    let (rt, origin) = runtime_with_origin();
    let uri: http::Uri = format!("{}/", origin.base_url()).parse().expect("uri");

    let mut group = c.benchmark_group("legacy");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);

    let mut ratios = Vec::new();
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

        // Interleaved rounds for the ratio, in ABBA order, so both clients
        // see the same machine load; the median of the per-pair ratios
        // ignores the rounds a neighbour's burst of work disturbed.
        const ROUNDS: usize = 24;
        let per_round = 1_000 * concurrency.min(4);
        let mut pairs = Vec::with_capacity(ROUNDS);
        rt.block_on(async {
            for round in 0..ROUNDS {
                let plain_run = drive(per_round, concurrency, || {
                    ready(sender(plain.clone(), uri.clone()))
                });
                let swapped_run = drive(per_round, concurrency, || {
                    ready(sender(swapped.clone(), uri.clone()))
                });
                let (plain_time, swapped_time) = if round % 2 == 0 {
                    let plain_time = plain_run.await;
                    (plain_time, swapped_run.await)
                } else {
                    let swapped_time = swapped_run.await;
                    (plain_run.await, swapped_time)
                };
                pairs.push((plain_time, swapped_time));
            }
        });
        let rate = |time: Duration| per_round as f64 / time.as_secs_f64();
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let ratio = median(
            pairs
                .iter()
                .map(|(p, s)| p.as_secs_f64() / s.as_secs_f64())
                .collect(),
        );
        ratios.push(format!(
            "c{concurrency}: hyper-util {:.0} req/s, with Connector {:.0} req/s (medians), median ratio {ratio:.3}",
            median(pairs.iter().map(|(p, _)| rate(*p)).collect()),
            median(pairs.iter().map(|(_, s)| rate(*s)).collect()),
        ));
    }
    group.finish();
    println!("legacy adapter throughput, interleaved (goal: ratio >= 0.95):");
    for line in ratios {
        println!("  {line}");
    }
    rt.block_on(origin.shutdown());
}

criterion_group!(benches, bench_legacy);
criterion_main!(benches);
