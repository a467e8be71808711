//! [`FixedServer`]: a keep-alive HTTP/1.1 server that answers every request
//! with the same bytes, and costs almost nothing per request.
//!
//! A throughput benchmark against a server that does real work measures
//! the server as much as the client: [`Origin`](crate::Origin) parses every
//! header, looks at its knobs and counts request ids, and a client's cost
//! hides behind that. This server only finds where each request ends and
//! writes a response prepared at start, from a runtime on a thread of its
//! own, so nearly all the time a benchmark measures is the client's.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The response [`FixedServer::start`] answers with.
const DEFAULT_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// The most headers a request may carry.
const MAX_HEADERS: usize = 64;

/// The longest request head accepted (as [`Origin`](crate::Origin)).
const MAX_HEAD: usize = 64 * 1024;

/// A loopback HTTP/1.1 server answering every request with the same bytes.
///
/// It reads requests (pipelined ones too), skips their `Content-Length`
/// bodies, and for each one writes the response given at start; it never
/// closes a connection on its own. A request it cannot frame (a malformed
/// head, a chunked body) closes that connection. It serves from a
/// single-threaded tokio runtime on a thread of its own, so it never
/// shares a runtime, or its timer ticks, with the client it measures.
///
/// ```
/// use std::io::{Read, Write};
/// use freshpool_origin::FixedServer;
///
/// let server = FixedServer::start()?;
/// let mut stream = std::net::TcpStream::connect(server.addr())?;
/// stream.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\nGET / HTTP/1.1\r\nhost: a\r\n\r\n")?;
/// let mut response = vec![0; 256];
/// let mut read = 0;
/// while read < 2 * 40 {
///     read += stream.read(&mut response[read..])?;
/// }
/// assert!(response.starts_with(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
/// assert_eq!(server.requests(), 2);
/// server.shutdown();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct FixedServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl FixedServer {
    /// Starts a server on 127.0.0.1 (any free port) answering `200 OK`
    /// with a two-byte body.
    ///
    /// # Errors
    ///
    /// The runtime, the thread or the listener could not be made.
    pub fn start() -> io::Result<FixedServer> {
        FixedServer::with_response(Bytes::from_static(DEFAULT_RESPONSE))
    }

    /// Starts a server answering every request with `response`, written
    /// as is: it must be a whole HTTP/1.1 response that keeps the
    /// connection open.
    ///
    /// # Errors
    ///
    /// The runtime, the thread or the listener could not be made.
    pub fn with_response(response: Bytes) -> io::Result<FixedServer> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind(("127.0.0.1", 0)))?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        let counted = Arc::clone(&requests);
        let thread = std::thread::Builder::new()
            .name("fixed-server".into())
            .spawn(move || {
                runtime.block_on(accept(listener, response, counted, stopped));
            })?;
        Ok(FixedServer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops the server: closes the listener and every connection, and
    /// waits for its thread. Dropping it does the same.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            // The thread only runs the loops below, which do not panic.
            let _ = thread.join();
        }
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn accept(
    listener: TcpListener,
    response: Bytes,
    requests: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (response, requests) = (response.clone(), Arc::clone(&requests));
                let mut stop = stop.clone();
                connections.spawn(async move {
                    tokio::select! {
                        _ = stop.changed() => {}
                        _ = serve(stream, response, requests) => {}
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Answers the requests of one connection until it closes or sends
/// something that cannot be framed.
async fn serve(mut stream: TcpStream, response: Bytes, requests: Arc<AtomicU64>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0;
    // Body bytes of the current request still to come.
    let mut skip = 0usize;
    let mut out = Vec::with_capacity(response.len());
    loop {
        if filled == buf.len() {
            if buf.len() >= MAX_HEAD {
                return;
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut start = 0;
        let mut answers = 0u64;
        loop {
            if skip > 0 {
                let take = skip.min(filled - start);
                skip -= take;
                start += take;
                if skip > 0 {
                    break;
                }
            }
            match head(&buf[start..filled]) {
                Head::Complete { len, body } => {
                    start += len;
                    skip = body;
                    answers += 1;
                }
                Head::Partial => break,
                Head::Invalid => return,
            }
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if answers == 0 {
            continue;
        }
        out.clear();
        for _ in 0..answers {
            out.extend_from_slice(&response);
        }
        // Counted before the write, so a client that has its responses
        // also sees them counted.
        requests.fetch_add(answers, Ordering::Relaxed);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

enum Head {
    /// A whole head of `len` bytes, followed by `body` bytes of body.
    Complete {
        len: usize,
        body: usize,
    },
    Partial,
    Invalid,
}

fn head(bytes: &[u8]) -> Head {
    if bytes.is_empty() {
        return Head::Partial;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Invalid,
    };
    let mut body = 0;
    for header in req.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let Some(length) = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            else {
                return Head::Invalid;
            };
            body = length;
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Head::Invalid;
        }
    }
    Head::Complete { len, body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn read_exactly(stream: &mut std::net::TcpStream, len: usize) -> Vec<u8> {
        let mut got = vec![0; len];
        stream.read_exact(&mut got).expect("response");
        got
    }

    #[test]
    fn answers_split_and_bodied_requests_once_each() {
        let server = FixedServer::start().expect("start");
        let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
        // A head split in two writes, then a POST whose body comes late.
        stream.write_all(b"GET / HTTP/1.1\r\nho").expect("write");
        std::thread::sleep(std::time::Duration::from_millis(20));
        stream.write_all(b"st: a\r\n\r\n").expect("write");
        assert_eq!(
            read_exactly(&mut stream, DEFAULT_RESPONSE.len()),
            DEFAULT_RESPONSE
        );
        stream
            .write_all(b"POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nab")
            .expect("write");
        std::thread::sleep(std::time::Duration::from_millis(20));
        stream.write_all(b"cde").expect("write");
        assert_eq!(
            read_exactly(&mut stream, DEFAULT_RESPONSE.len()),
            DEFAULT_RESPONSE
        );
        assert_eq!(server.requests(), 2);
        server.shutdown();
    }

    #[test]
    fn a_chunked_request_closes_its_connection() {
        let server = FixedServer::start().expect("start");
        let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
        stream
            .write_all(b"POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n")
            .expect("write");
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).expect("closed");
        assert!(rest.is_empty());
        assert_eq!(server.requests(), 0);
    }
}
