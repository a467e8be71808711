//! Establishing a connection: connector, HTTP handshake, connection task
//! (spawned on the client's executor).

use std::future::poll_fn;
use std::sync::Arc;

use freshpool_expiry::Rtt;
use freshpool_probe::Probe;
use http::Uri;
use hyper::rt::{Executor, Read, Write};
use hyper_util::client::legacy::connect::Connection;
use tower_service::Service;

use crate::builder::Config;
use crate::error::{BoxError, Error, Kind};
use crate::info::ConnectionInfo;
use crate::io::{ConnState, Io};
use crate::pool::{Conn, ConnParts, OpenSlot, OriginKey, PoolShared, Streams, Tx, now};
use crate::stats::Event;

/// Connects to `origin` with `connector`, performs the HTTP/1 or HTTP/2
/// handshake, and spawns the connection task, which holds `slot` for as
/// long as the socket is open.
///
/// # Cancel safety
///
/// Dropping the future drops the half-made connection and frees the slot.
pub(crate) async fn connect<C, B>(
    mut connector: C,
    pool: &Arc<PoolShared<B>>,
    config: &Config,
    origin: &OriginKey,
    slot: OpenSlot<B>,
) -> Result<Conn<B>, Error>
where
    C: Service<Uri>,
    C::Response: Read + Write + Connection + Probe + Unpin + Send + 'static,
    C::Error: Into<BoxError>,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let uri: Uri = origin
        .connect_uri()
        .map_err(|e| Error::new(Kind::InvalidUri("host is not a valid authority")).with(e))?;
    let started = now();
    poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(|e| Error::new(Kind::Connect).with(e))?;
    let stream = connector
        .call(uri)
        .await
        .map_err(|e| Error::new(Kind::Connect).with(e))?;
    let connected = stream.connected();
    let opened = now();
    // The kernel's round-trip figures where the IO has them (one
    // `getsockopt`, once per connection); the connect time otherwise.
    let rtt = stream.rtt().map(|rtt| Rtt {
        srtt: rtt.srtt,
        rttvar: rtt.rttvar,
    });
    pool.observe_rtt(origin, rtt, opened.saturating_duration_since(started));

    let state = Arc::new(ConnState::new(opened));
    let (io, probe) = Io::new(stream, Arc::clone(&state));
    let id = crate::info::next_connection_id();
    let lifetime_deadline = config
        .max_lifetime
        .map(|lifetime| lifetime.deadline(opened, entropy(id)));

    let tx = if config.http2_only || connected.is_negotiated_h2() {
        let (tx, conn) = config
            .h2
            .handshake(io)
            .await
            .map_err(|e| Error::new(Kind::Handshake).with(e))?;
        config.exec.execute(async move {
            let _slot = slot;
            if let Err(error) = conn.await {
                tracing::debug!(id, %error, "HTTP/2 connection ended with an error");
            }
        });
        Tx::Http2(tx, Streams::new(Arc::downgrade(pool), origin.clone()))
    } else {
        let (tx, conn) = config
            .h1
            .handshake(io)
            .await
            .map_err(|e| Error::new(Kind::Handshake).with(e))?;
        let ended = Ended {
            pool: Arc::downgrade(pool),
            origin: origin.clone(),
            id,
            state: Arc::clone(&state),
        };
        config.exec.execute(async move {
            let _slot = slot;
            // The connection future, and hyper's end of the request
            // channel in it, is gone once the await returns: only then
            // does `ended` say so.
            let result = conn.with_upgrades().await;
            drop(ended);
            if let Err(error) = result {
                tracing::debug!(id, %error, "HTTP/1 connection ended with an error");
            }
        });
        Tx::Http1(tx)
    };
    pool.count(origin, Event::ConnectionOpened);
    tracing::debug!(
        origin = %origin,
        id,
        http2 = matches!(tx, Tx::Http2(..)),
        "connected"
    );
    let mut conn = Conn::new(ConnParts {
        id,
        tx,
        state,
        probe,
        info: ConnectionInfo::new(id, connected),
        requests: 0,
        remaining: None,
        lifetime_deadline,
        expiry: None,
        _stream: None,
    });
    if let Some(template) = conn.share(false) {
        pool.insert_h2(origin, template);
        // The connecting request's own handle carries a stream too.
        conn = conn.share(true).unwrap_or(conn);
    }
    Ok(conn)
}

/// Tells the pool when an HTTP/1 connection's task ends (the server
/// closed it, or it failed), however the task ends: an idle connection is
/// then dropped from the pool at once, and its close is learned from while
/// it is fresh, instead of at the next checkout.
struct Ended<B: Send + 'static> {
    pool: std::sync::Weak<PoolShared<B>>,
    origin: OriginKey,
    id: u64,
    /// Where the connection's expiry queue entry is recorded: one left by
    /// a connection that died checked out is removed with it.
    state: Arc<ConnState>,
}

impl<B: Send + 'static> Drop for Ended<B> {
    fn drop(&mut self) {
        // After the connection future, and hyper's receiver with it: a
        // request still waiting on this connection is stranded (see
        // `Landing`).
        self.state.task_ended();
        if let Some(pool) = self.pool.upgrade() {
            pool.connection_ended(&self.origin, self.id, self.state.expiry());
        }
    }
}

/// Cheap, non-cryptographic randomness for lifetime jitter.
fn entropy(seed: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(seed);
    hasher.finish()
}
