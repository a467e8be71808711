//! One test per `Liveness` state, each over a real loopback TCP connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use freshpool_probe::{Liveness, Probe, probe};

/// A connected loopback pair: (client side, server side).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let client = TcpStream::connect(listener.local_addr().expect("local addr")).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// Probes until the result differs from `Alive` (the peer's action has
/// reached our kernel) or two seconds pass, and returns the last result.
fn settled(stream: &TcpStream) -> Liveness {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = stream.probe();
        if state != Liveness::Alive || Instant::now() >= deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn open_and_idle_is_alive() {
    let (client, server) = pair();
    assert_eq!(probe(&client), Liveness::Alive);
    // Still alive after the server has had every chance to say something.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(probe(&client), Liveness::Alive);
    assert_eq!(server.probe(), Liveness::Alive);
}

#[test]
fn peer_shutdown_write_is_closed() {
    let (client, server) = pair();
    server.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(settled(&client), Liveness::Closed);
    // The server side is still open for reading: the close is one-way.
    assert_eq!(server.probe(), Liveness::Alive);
}

#[test]
fn peer_close_is_closed() {
    let (client, server) = pair();
    drop(server);
    assert_eq!(settled(&client), Liveness::Closed);
}

#[test]
fn peer_close_with_zero_linger_is_reset() {
    let (client, server) = pair();
    socket2::SockRef::from(&server)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(server);
    assert_eq!(settled(&client), Liveness::Reset);
}

#[test]
fn pending_bytes_are_unexpected_and_not_consumed() {
    let (mut client, mut server) = pair();
    server.write_all(b"stray").expect("write");
    assert_eq!(settled(&client), Liveness::Unexpected);
    // Probing again changes nothing and reads nothing.
    assert_eq!(client.probe(), Liveness::Unexpected);
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).expect("bytes still readable");
    assert_eq!(&buf, b"stray");
    assert_eq!(client.probe(), Liveness::Alive);
}

#[test]
fn request_timeout_then_close_is_unexpected() {
    let (mut client, mut server) = pair();
    let response =
        b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    server.write_all(response).expect("write 408");
    drop(server);
    // The FIN is queued behind the 408: the bytes are what the probe sees.
    assert_eq!(settled(&client), Liveness::Unexpected);
    let mut seen = Vec::new();
    client.read_to_end(&mut seen).expect("read 408");
    assert_eq!(seen, response);
    assert_eq!(client.probe(), Liveness::Closed);
}

#[test]
fn not_a_socket_is_unknown() {
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    assert_eq!(probe(&file), Liveness::Unknown);
}

#[test]
fn unix_stream_states() {
    use std::os::unix::net::UnixStream;
    let (client, mut server) = UnixStream::pair().expect("socketpair");
    assert_eq!(client.probe(), Liveness::Alive);
    server.write_all(b"x").expect("write");
    assert_eq!(client.probe(), Liveness::Unexpected);
    let (client, server) = UnixStream::pair().expect("socketpair");
    drop(server);
    assert_eq!(client.probe(), Liveness::Closed);
}

#[tokio::test]
async fn tokio_streams_and_tokio_io_probe_their_socket() {
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let client = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (mut server, _) = listener.accept().await.expect("accept");
    let client = TokioIo::new(client);
    assert_eq!(client.probe(), Liveness::Alive);

    server
        .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        .await
        .expect("write");
    server.shutdown().await.expect("shutdown");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while client.probe() == Liveness::Alive && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(client.probe(), Liveness::Unexpected);
    assert_eq!(client.inner().probe(), Liveness::Unexpected);
}

#[test]
fn only_alive_and_unknown_are_reusable() {
    let reusable: Vec<_> = [
        Liveness::Alive,
        Liveness::Closed,
        Liveness::Reset,
        Liveness::Unexpected,
        Liveness::Unknown,
    ]
    .into_iter()
    .filter(|l| l.is_reusable())
    .collect();
    assert_eq!(reusable, [Liveness::Alive, Liveness::Unknown]);
}

/// Probes with `probe_hangup` until the result differs from `Alive` or two
/// seconds pass.
fn settled_hangup(stream: &TcpStream) -> Liveness {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = stream.probe_hangup();
        if state != Liveness::Alive || Instant::now() >= deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn hangup_probe_lets_bytes_alone_pass_and_sees_a_fin_behind_them() {
    let (mut client, mut server) = pair();
    assert_eq!(client.probe_hangup(), Liveness::Alive);
    server.write_all(b"record").expect("write");
    // Wait until the bytes are here, as the plain probe shows.
    assert_eq!(settled(&client), Liveness::Unexpected);
    assert_eq!(client.probe_hangup(), Liveness::Alive);

    // The FIN queues behind the unread bytes: a peek still sees only bytes.
    server.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(settled_hangup(&client), Liveness::Closed);
    assert_eq!(client.probe(), Liveness::Unexpected);
    let mut seen = Vec::new();
    client.read_to_end(&mut seen).expect("read");
    assert_eq!(seen, b"record");
    assert_eq!(client.probe_hangup(), Liveness::Closed);
    assert_eq!(client.probe(), Liveness::Closed);
}

#[test]
fn hangup_probe_sees_a_reset_before_and_after_it_was_read() {
    let (mut client, server) = pair();
    socket2::SockRef::from(&server)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(server);
    assert_eq!(settled_hangup(&client), Liveness::Reset);
    let mut byte = [0u8; 1];
    let err = client
        .read(&mut byte)
        .expect_err("the read reports the reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    // The error has been consumed; the socket is still closed both ways.
    assert_eq!(client.probe_hangup(), Liveness::Reset);
}

#[test]
fn hangup_probe_of_a_plain_close_is_closed() {
    let (client, server) = pair();
    drop(server);
    assert_eq!(settled_hangup(&client), Liveness::Closed);
}
