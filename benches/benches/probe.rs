//! Cost of one liveness probe on an idle loopback connection.
//!
//! `cargo bench -p freshpool-benches --bench probe` reports ns per call for
//! each outcome the pool sees at checkout.

use std::hint::black_box;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use freshpool_probe::{Liveness, Probe};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

fn bench_probe(c: &mut Criterion) {
    let mut group = c.benchmark_group("probe");

    let (alive, _server) = pair();
    assert_eq!(alive.probe(), Liveness::Alive);
    group.bench_function("alive", |b| b.iter(|| black_box(black_box(&alive).probe())));

    let (closed, server) = pair();
    server.shutdown(Shutdown::Write).expect("shutdown");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(closed.probe(), Liveness::Closed);
    group.bench_function("closed", |b| {
        b.iter(|| black_box(black_box(&closed).probe()));
    });

    let (unexpected, mut server) = pair();
    server
        .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(unexpected.probe(), Liveness::Unexpected);
    group.bench_function("unexpected", |b| {
        b.iter(|| black_box(black_box(&unexpected).probe()));
    });

    group.finish();
}

criterion_group!(benches, bench_probe);
criterion_main!(benches);
