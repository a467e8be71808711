//! When an idle connection is due: its retire time, the end of its watch
//! for the server's close, and the reads that end it.

use std::time::{Duration, Instant};

use freshpool_expiry::Evidence;

use super::{FAR, FRESH_GRACE, Mode, TrackedIo};
use crate::connector::now;

impl<T> TrackedIo<T> {
    /// When the current idle period ends, by the origin's estimate as it
    /// is now (it may have changed since the connection went idle).
    ///
    /// Computed once per idle period, and again only when the origin's
    /// published retire time changed: the idle reads compare it with the
    /// clock ([`idle_read_may_end`](Self::idle_read_may_end)), with no
    /// clock sum each.
    #[inline]
    pub(super) fn due_at(&mut self) -> Instant {
        if self.state.origin_shared.retire_after_nanos() != self.state.due_basis {
            self.recompute_due();
        }
        self.state.due
    }

    /// [`due_at`](Self::due_at) from scratch.
    pub(super) fn recompute_due(&mut self) {
        let basis = self.state.origin_shared.retire_after_nanos();
        if basis != self.state.due_basis {
            self.state.due_basis = basis;
            self.state.basis_after = Duration::from_nanos(basis);
        }
        let after = if self.state.exhausted {
            Duration::ZERO
        } else {
            self.state.basis_after
        };
        let fresh = self.state.tracker.messages_completed() == 0;
        let after = if fresh { after.max(FRESH_GRACE) } else { after };
        let at = |after| {
            self.state
                .idle_since
                .checked_add(after)
                .unwrap_or_else(|| self.state.idle_since + FAR)
        };
        self.state.due = at(after);
        // A connection that never carried a request says nothing by its
        // close, and one the server allows no more requests on is closed
        // by hyper: neither is watched.
        self.state.watch_until = if fresh || self.state.exhausted {
            self.state.due
        } else {
            at(self.state.origin_shared.watch_after()).max(self.state.due)
        };
    }

    /// The connection is idle between messages from `now` on: schedules
    /// its retirement by the origin's published estimate.
    ///
    /// The queue entry is for the end of the watch (`watch_until`): from
    /// its retire time on, every idle read retires it unless the server's
    /// close is what it reads (see [`poll_idle_read`](Self::poll_idle_read)),
    /// and the entry ends the watch. The queue is only touched when the
    /// entry would fire too late (there is none, or the estimate shrank)
    /// or during the watch. Otherwise the entry fires at its old, earlier
    /// time, before the retire time, and [`due_requested`] moves it to the
    /// current time then: one queue
    /// operation per retire period instead of one per request. A
    /// connection due already (the server allows no more requests, or
    /// closes idle connections at once) is retired by the very next read,
    /// without waiting for the driver.
    ///
    /// [`due_requested`]: Self::due_requested
    pub(super) fn became_idle(&mut self, now: Instant) {
        self.state.idle_since = now;
        if self.state.conn.take_retire() {
            // The entry fired while the connection was busy: it is gone.
            self.state.entry_at = None;
        }
        self.recompute_due();
        let at = self.state.watch_until;
        if self.state.due <= now {
            self.state.conn.mark_due();
        } else if self
            .state
            .entry_at
            .is_none_or(|entry| entry >= self.state.due)
        {
            // An entry of an earlier idle period is kept only if it fires
            // before this one's retire time: fired during the watch, it
            // would end the watch early.
            self.arm(at);
        }
    }

    pub(super) fn arm(&mut self, at: Instant) {
        self.state
            .shared
            .schedule(&self.state.conn, &mut self.state.key, at);
        self.state.entry_at = Some(at);
    }

    /// Whether an idle read has to look closer at retiring: a retire
    /// request is pending, the origin published another retire time, or the
    /// connection's own retire time has come. Nearly always `false`, after
    /// one clock reading and three comparisons; [`is_due`] decides.
    ///
    /// [`is_due`]: Self::is_due
    #[inline]
    pub(super) fn idle_read_may_end(&self) -> bool {
        self.state.conn.retire_pending()
            || self.state.origin_shared.retire_after_nanos() != self.state.due_basis
            || now() >= self.state.due
    }

    /// Whether the idle connection is to end, by a retire request or by its
    /// retire time: see [`due_requested`](Self::due_requested) and
    /// [`past_due`](Self::past_due). It ends only if the read then finds
    /// nothing from the server.
    #[cold]
    pub(super) fn is_due(&mut self) -> bool {
        self.due_requested() || self.past_due()
    }

    /// Whether a retire request is pending and the connection's time has
    /// come, while it is idle between messages.
    pub(super) fn due_requested(&mut self) -> bool {
        // Asked by idle reads only, and only once a cheaper check said
        // the connection may be due (see `idle_read_may_end`), or after
        // setting a new waker.
        self.state.conn.take_retire() && self.requested_due()
    }

    /// [`due_requested`](Self::due_requested), once a request came.
    #[cold]
    pub(super) fn requested_due(&mut self) -> bool {
        // The driver took the entry out of the queue.
        self.state.entry_at = None;
        if !self.state.tracker.is_idle() {
            // In use: the next idle period schedules it again.
            return false;
        }
        if now() < self.due_at() {
            // Used since the entry was made, or asked to look at a lower
            // estimate that is not due yet: wait for the current time.
            self.arm(self.state.watch_until);
            return false;
        }
        true
    }

    /// Whether the connection is idle and past its retire time, whether
    /// or not the driver has come yet.
    ///
    /// This is the check that makes retirement exact on a busy runtime (every
    /// idle read makes it, through [`idle_read_may_end`]).
    /// hyper's connection task reads before it writes, on every turn: when
    /// a request arrives for an idle connection, this read comes first. An
    /// end-of-file here closes the read side, so hyper hands the request
    /// back unsent and hyper-util retries it on another connection. A
    /// request let through here is written in the same turn, so no
    /// scheduling delay falls between the check and the bytes on the wire.
    ///
    /// [`idle_read_may_end`]: Self::idle_read_may_end
    pub(super) fn past_due(&mut self) -> bool {
        self.state.tracker.is_idle() && now() >= self.due_at()
    }

    /// Ends the connection: every later read returns end-of-file.
    #[cold]
    pub(super) fn retire(&mut self, now: Instant) {
        self.state.tracker.stop();
        self.state.stop_seen = true;
        self.state.mode = Mode::Retired;
        self.state.shared.count_retired();
        let idle_for = now.saturating_duration_since(self.state.idle_since);
        tracing::debug!(
            origin = %self.state.origin,
            id = self.conn_id(),
            ?idle_for,
            "retired idle connection before the server's deadline"
        );
        if self.state.tracker.messages_completed() > 0 {
            // Still open after idling this long. (A connection that never
            // carried a request says nothing: servers time out a first
            // request with another timer.)
            self.state.shared.observe(
                &self.state.origin,
                self.state.slot,
                Evidence::Survived(idle_for),
                now,
            );
        }
        self.unschedule();
    }
}
