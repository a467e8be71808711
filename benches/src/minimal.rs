//! The least a pool with hyper-util's interface does per request: the
//! floor under any such pool's figures, measured beside them.
//!
//! [`MinimalPool`] keeps idle connections in a `Mutex<VecDeque<_>>` and
//! does only what a pool a hyper-util user could swap in must do: it
//! returns a boxed response future (hyper-util's `ResponseFuture` is one,
//! and so is freshpool's), puts one extension in each response (the two
//! socket addresses, as hyper-util's `HttpInfo`), and takes a connection
//! back when the response's body ends (not sooner: the connection is busy
//! until then). Nothing else: no probe, no expiry, no learning, no retry,
//! no connection limit, no error handling beyond dropping a connection
//! that is not ready.
//!
//! A bare hyper `SendRequest` per task does none of this; the ratio
//! `MinimalPool ÷ bare hyper` is what that interface alone costs, and
//! `freshpool ÷ MinimalPool` what freshpool's features cost on top.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::{Body, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;

use crate::{Sender, Sending};

type RequestBody = Empty<Bytes>;

/// A connection's two addresses, the extension every response carries (as
/// hyper-util's `HttpInfo`, which only hyper-util's connector can make).
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    /// The server's address.
    pub remote: SocketAddr,
    /// The client's end.
    pub local: SocketAddr,
}

/// An idle connection: its sender and its addresses.
struct Idle {
    tx: SendRequest<RequestBody>,
    addrs: Addrs,
}

/// A featureless pool of HTTP/1 connections to one address (see the
/// [module](self)).
pub struct MinimalPool {
    addr: SocketAddr,
    idle: Mutex<VecDeque<Idle>>,
}

/// A response on its way, boxed as hyper-util's and freshpool's are.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<Pooled>, hyper::Error>> + Send>>;

impl MinimalPool {
    /// A pool of connections to `addr`; none is opened until needed.
    pub fn new(addr: SocketAddr) -> Arc<MinimalPool> {
        Arc::new(MinimalPool {
            addr,
            idle: Mutex::new(VecDeque::new()),
        })
    }

    /// Sends `GET /` on an idle connection, or on a new one.
    pub fn get(self: &Arc<Self>) -> ResponseFuture {
        let pool = Arc::clone(self);
        Box::pin(async move {
            let mut idle = pool.checkout().await;
            let req = http::Request::get("/")
                .header("host", "bench")
                .body(RequestBody::new())
                .expect("request");
            let mut response = idle.tx.send_request(req).await?;
            response.extensions_mut().insert(idle.addrs);
            Ok(response.map(|body| Pooled {
                body,
                back: Some((pool, idle)),
            }))
        })
    }

    async fn checkout(&self) -> Idle {
        loop {
            let popped = self.lock().pop_back();
            let Some(mut idle) = popped else {
                return self.connect().await;
            };
            if idle.tx.ready().await.is_ok() {
                return idle;
            }
        }
    }

    async fn connect(&self) -> Idle {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let addrs = Addrs {
            remote: stream.peer_addr().expect("peer address"),
            local: stream.local_addr().expect("local address"),
        };
        let io = hyper_util::rt::TokioIo::new(stream);
        let (tx, conn) = hyper::client::conn::http1::handshake::<_, RequestBody>(io)
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Idle { tx, addrs }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MinimalPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MinimalPool")
            .field("addr", &self.addr)
            .field("idle", &self.lock().len())
            .finish()
    }
}

/// A response body that gives its connection back to the pool when it
/// ends.
pub struct Pooled {
    body: Incoming,
    back: Option<(Arc<MinimalPool>, Idle)>,
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("body", &self.body)
            .field("pooled", &self.back.is_some())
            .finish()
    }
}

impl Body for Pooled {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        if (frame.is_none() || this.body.is_end_stream())
            && let Some((pool, idle)) = this.back.take()
        {
            pool.lock().push_back(idle);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// One task's sender over `pool`: `GET /`, read to the end.
pub fn minimal_sender(pool: Arc<MinimalPool>) -> Sender {
    use http_body_util::BodyExt;
    Box::new(move || -> Sending<'static> {
        let pool = Arc::clone(&pool);
        Box::pin(async move {
            let response = pool.get().await.expect("minimal pool request");
            response
                .into_body()
                .collect()
                .await
                .expect("minimal pool body");
        })
    })
}
