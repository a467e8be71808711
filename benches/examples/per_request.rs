//! A fixed number of keep-alive GETs with one client, for counting the
//! client's instructions per request with callgrind.
//!
//! The server runs in another process, so callgrind counts only the
//! client; two runs with different request counts give the cost per
//! request without the setup (the difference divided by the difference in
//! requests):
//!
//! ```text
//! cargo build --release -p freshpool-benches --example per_request
//! target/release/examples/per_request serve &          # prints its address
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/per_request freshpool ADDR 1 2000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/per_request freshpool ADDR 1 12000
//! ```
//!
//! Clients: `bare` (a hyper `SendRequest` per task), `minimal`
//! ([`freshpool_benches::MinimalPool`]: what hyper-util's interface alone
//! costs), `hyper-util`, `freshpool`, `adapter` (hyper-util over
//! `freshpool_legacy::Connector`).
//! The third argument is the concurrency (tasks on one current-thread
//! runtime), the fourth the number of requests in all. A fifth, `multi`,
//! runs the tasks on the throughput benches' runtime instead (one worker
//! thread, [`freshpool_benches::client_runtime`]), for comparing the
//! clients' CPU time where the benches measure them:
//!
//! ```text
//! /usr/bin/time -f '%U user %S sys' target/release/examples/per_request freshpool ADDR 32 200000 multi
//! ```

use std::net::SocketAddr;

use bytes::Bytes;
use freshpool_benches::{MinimalPool, Sender, Sending, bare_sender, minimal_sender};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

type Body = Empty<Bytes>;

fn legacy<C>(client: Client<C, Body>, uri: http::Uri) -> Sender
where
    C: Connect + Clone + Send + Sync + 'static,
{
    Box::new(move || -> Sending<'static> {
        let (client, uri) = (client.clone(), uri.clone());
        Box::pin(async move {
            let response = client.get(uri).await.expect("request");
            response.into_body().collect().await.expect("body");
        })
    })
}

fn freshpool(client: freshpool::Client<HttpConnector, Body>, uri: http::Uri) -> Sender {
    Box::new(move || -> Sending<'static> {
        let (client, uri) = (client.clone(), uri.clone());
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let server = freshpool_origin::FixedServer::start().expect("server");
        println!("{}", server.addr());
        loop {
            std::thread::park();
        }
    }
    let (kind, addr, concurrency, requests, multi) = match args.as_slice() {
        [kind, addr, concurrency, requests] => (kind, addr, concurrency, requests, false),
        [kind, addr, concurrency, requests, runtime] if runtime == "multi" => {
            (kind, addr, concurrency, requests, true)
        }
        _ => {
            eprintln!(
                "usage: per_request serve | per_request CLIENT ADDR CONCURRENCY REQUESTS [multi]"
            );
            std::process::exit(2);
        }
    };
    let addr: SocketAddr = addr.parse().expect("address");
    let concurrency: u64 = concurrency.parse().expect("concurrency");
    let requests: u64 = requests.parse().expect("requests");
    let uri: http::Uri = format!("http://{addr}/").parse().expect("uri");
    let rt = if multi {
        freshpool_benches::client_runtime()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    rt.block_on(async {
        let hu: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build(http());
        let adapter: Client<_, Body> =
            Client::builder(TokioExecutor::new()).build(freshpool_legacy::Connector::new(http()));
        let fp = freshpool::Client::builder()
            .build_http::<Body>()
            .expect("settings");
        let minimal = MinimalPool::new(addr);
        let elapsed = freshpool_benches::drive(requests, concurrency, || {
            let (kind, uri) = (kind.clone(), uri.clone());
            let (hu, adapter, fp) = (hu.clone(), adapter.clone(), fp.clone());
            let minimal = minimal.clone();
            async move {
                match kind.as_str() {
                    "bare" => bare_sender(addr).await,
                    "minimal" => minimal_sender(minimal),
                    "hyper-util" => legacy(hu, uri),
                    "adapter" => legacy(adapter, uri),
                    "freshpool" => freshpool(fp, uri),
                    other => panic!("unknown client {other}"),
                }
            }
        })
        .await;
        eprintln!("{kind}: {requests} requests in {elapsed:?}");
    });
}
