//! Raw-socket helpers shared by the integration tests: write exact bytes,
//! read exact responses, observe exactly how a connection ends.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use freshpool_origin::Origin;

/// A raw client connection that keeps unread bytes between responses.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    buf: BytesMut,
}

/// A response read off the wire.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    /// The value of a header (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How a connection ended when read to its end.
#[derive(Debug)]
pub(crate) enum End {
    /// EOF (a FIN), after these bytes.
    Fin(Vec<u8>),
    /// An error (an RST gives `ConnectionReset`), after these bytes.
    Error(io::ErrorKind, Vec<u8>),
}

impl Conn {
    pub(crate) async fn open(origin: &Origin) -> Conn {
        let stream = TcpStream::connect(origin.addr())
            .await
            .expect("connect to origin");
        // Paused time jumps ahead whenever the runtime waits; Nagle holding
        // a small write back for an ACK would look like a stall.
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Writes raw bytes.
    pub(crate) async fn send(&mut self, raw: &str) {
        self.send_bytes(raw.as_bytes()).await;
    }

    pub(crate) async fn send_bytes(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).await.expect("write request");
    }

    /// Sends `GET / HTTP/1.1` with the given extra header lines.
    pub(crate) async fn get(&mut self, extra_headers: &str) {
        self.try_get(extra_headers).await.expect("write request");
    }

    /// Like [`Conn::get`], but a write error (the server already reset the
    /// connection) is returned.
    pub(crate) async fn try_get(&mut self, extra_headers: &str) -> io::Result<()> {
        let request = format!("GET / HTTP/1.1\r\nhost: origin\r\n{extra_headers}\r\n");
        self.stream.write_all(request.as_bytes()).await
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(8192);
        self.stream.read_buf(&mut self.buf).await
    }

    /// Reads one complete response (`head`: the request was HEAD).
    pub(crate) async fn response_to(&mut self, head: bool) -> io::Result<RawResponse> {
        let (len, status, headers) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect::<Vec<_>>();
                    break (len, parsed.code.unwrap_or(0), headers);
                }
                Ok(httparse::Status::Partial) => {
                    if self.fill().await? == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(err) => return Err(io::Error::new(io::ErrorKind::InvalidData, err)),
            }
        };
        self.buf.advance(len);
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(response);
        }
        if response.header("transfer-encoding").is_some() {
            response.body = self.chunked_body().await?;
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
            while self.buf.len() < len {
                if self.fill().await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            response.body = self.buf.split_to(len).to_vec();
        } else {
            while self.fill().await? != 0 {}
            response.body = self.buf.split().to_vec();
        }
        Ok(response)
    }

    /// Reads one complete response to a non-HEAD request.
    pub(crate) async fn response(&mut self) -> io::Result<RawResponse> {
        self.response_to(false).await
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(end);
                self.buf.advance(2);
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn chunked_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let size = self.line().await?;
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
            if size == 0 {
                while !self.line().await?.is_empty() {}
                return Ok(body);
            }
            while self.buf.len() < size + 2 {
                if self.fill().await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.advance(size + 2);
        }
    }

    /// Reads until the connection ends and says how it ended.
    pub(crate) async fn end(&mut self) -> End {
        let mut bytes = self.buf.split().to_vec();
        let mut scratch = [0u8; 8192];
        loop {
            match self.stream.read(&mut scratch).await {
                Ok(0) => return End::Fin(bytes),
                Ok(n) => bytes.extend_from_slice(&scratch[..n]),
                Err(err) => return End::Error(err.kind(), bytes),
            }
        }
    }

    /// Bytes received but not consumed by a response.
    pub(crate) fn unread(&self) -> &[u8] {
        &self.buf
    }
}

/// Waits (in small steps, at most a few seconds) until `condition` holds.
/// The server records a close just after the client can see it, so tests
/// read counters through this.
pub(crate) async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}
