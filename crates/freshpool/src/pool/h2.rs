//! The pool's shared HTTP/2 connections: registering them, and serving
//! the checkouts that wait for one of their streams.

use super::{Conn, Handoff, OriginKey, OriginState, PoolShared};

impl<B> PoolShared<B> {
    /// Registers a new HTTP/2 connection as one of the origin's shared ones.
    pub(crate) fn insert_h2(&self, key: &OriginKey, conn: Conn<B>) {
        let mut state = self.lock();
        self.origin(&mut state.origins, key).h2.push(conn);
    }

    /// The HTTP/2 connect attempt for `key` ended: let waiters look again.
    pub(crate) fn h2_connected(&self, key: &OriginKey) {
        let mut state = self.lock();
        let Some(origin) = state.origins.get_mut(key) else {
            return;
        };
        origin.h2_connecting = false;
        for waiter in origin.h2_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// A stream ended on one of `key`'s HTTP/2 connections while checkouts
    /// wait: hand them streams.
    pub(crate) fn h2_stream_ended(&self, key: &OriginKey) {
        let mut state = self.lock();
        if let Some(origin) = state.origins.get_mut(key) {
            self.serve_h2_waiters(origin);
        }
    }

    /// Gives waiting checkouts streams on the origin's HTTP/2 connections,
    /// oldest first, while they have free ones. Called with the lock held.
    pub(super) fn serve_h2_waiters(&self, origin: &mut OriginState<B>) {
        let max_streams = self.config.http2_max_streams;
        while let Some(waiter) = origin.waiters.front() {
            let avoid = waiter.retry.map(|r| r.failed);
            let Some(handle) = origin
                .h2
                .iter()
                .filter(|conn| Some(conn.id) != avoid && !conn.is_unusable())
                .filter(|conn| conn.open_streams() < max_streams)
                .min_by_key(|conn| conn.open_streams())
                .and_then(|conn| conn.share(true))
            else {
                break;
            };
            let Some(waiter) = origin.waiters.pop_front() else {
                break;
            };
            if let Err(Handoff::Conn(handle)) = waiter.tx.send(Handoff::Conn(handle)) {
                // The waiter is gone; this lock is held, so the stream
                // must not wake anyone as it goes.
                handle.end_stream_quietly();
            }
        }
        if origin.waiters.is_empty() {
            for streams in origin.h2.iter().filter_map(Conn::streams) {
                streams.stop_waiting();
            }
        }
    }
}
