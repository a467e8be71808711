//! Run-time control of idle connections, from the [`Origin`](crate::Origin)
//! handle: close every idle connection at once, or change the idle timeout
//! for a while, as a restarting or overloaded server does.

use std::time::Duration;

use tokio::sync::watch;

/// What the handle has asked of idle HTTP/1.1 connections so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct IdleOrders {
    /// How many times [`Origin::close_idle`](crate::Origin::close_idle)
    /// was called: a connection idle when this changes closes.
    pub(crate) purges: u64,
    /// The idle timeout to use instead of the builder's, if any.
    pub(crate) timeout: Option<Duration>,
}

/// The sender side of [`IdleOrders`], shared by every connection.
#[derive(Debug)]
pub(crate) struct IdleControl {
    orders: watch::Sender<IdleOrders>,
}

impl Default for IdleControl {
    fn default() -> Self {
        IdleControl {
            orders: watch::Sender::new(IdleOrders::default()),
        }
    }
}

impl IdleControl {
    /// Orders every connection idle right now to close.
    pub(crate) fn purge(&self) {
        self.orders
            .send_modify(|o| o.purges = o.purges.wrapping_add(1));
    }

    /// Replaces the idle timeout (`None`: back to the builder's).
    pub(crate) fn set_timeout(&self, timeout: Option<Duration>) {
        self.orders.send_modify(|o| o.timeout = timeout);
    }

    /// The timeout override in force, if any.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.orders.borrow().timeout
    }

    /// A receiver for one idle wait.
    pub(crate) fn subscribe(&self) -> watch::Receiver<IdleOrders> {
        self.orders.subscribe()
    }
}
