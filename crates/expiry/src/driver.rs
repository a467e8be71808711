//! The thin tokio task that wakes an owner when its next deadline is due.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Something that keeps deadlines (typically a pool holding an
/// [`ExpiryQueue`](crate::ExpiryQueue) inside its own lock) and can retire
/// what is due.
pub trait Expire: Send + Sync + 'static {
    /// Retires everything due at `now` and returns the next deadline, or
    /// `None` when nothing is left.
    ///
    /// Drop the retired values *outside* any lock: closing a connection
    /// can run arbitrary code. A returned deadline at or before `now` is
    /// treated as one millisecond from now, so a misbehaving owner cannot
    /// make the driver spin.
    fn expire(&self, now: Instant) -> Option<Instant>;
}

/// The clock the driver, and the pools it serves, read: tokio's, so that a
/// runtime with paused time (`#[tokio::test(start_paused = true)]`)
/// controls every deadline at once.
#[inline]
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A handle to the task that calls [`Expire::expire`] on its owner when
/// the owner's next deadline is due. One task per owner, never one timer
/// per connection.
///
/// The task
///
/// - starts lazily, on the first [`schedule`](Self::schedule) made inside
///   a tokio runtime;
/// - holds only a [`Weak`] reference to its owner, upgraded for the
///   duration of each `expire` call and never while sleeping;
/// - ends when the owner is gone, when this handle is dropped (the owner
///   normally stores it, so dropping the owner wakes and ends the task at
///   once), or when `expire` reports nothing left to wait for; the next
///   `schedule` starts it again.
///
/// It reads the clock with [`tokio::time::Instant::now`], so tests can run
/// it in paused time. It sleeps with a tokio timer, which fires at
/// millisecond granularity: never early, up to about a millisecond late.
/// The runtime must have its time driver enabled, as hyper-util requires
/// too.
///
/// ```
/// use std::sync::{Arc, Mutex, mpsc};
/// use std::time::{Duration, Instant};
/// use freshpool_expiry::{Driver, Expire, ExpiryQueue};
///
/// struct Pool {
///     idle: Mutex<ExpiryQueue<&'static str>>,
///     retired: mpsc::Sender<&'static str>,
///     driver: Driver,
/// }
///
/// impl Expire for Pool {
///     fn expire(&self, now: Instant) -> Option<Instant> {
///         let mut due = Vec::new();
///         let next = {
///             let mut idle = self.idle.lock().unwrap();
///             while let Some((_, conn)) = idle.poll_expired(now) {
///                 due.push(conn);
///             }
///             idle.next_deadline()
///         };
///         // Outside the lock: hand the retired connections over.
///         for conn in due {
///             let _ = self.retired.send(conn);
///         }
///         next
///     }
/// }
///
/// # let rt = tokio::runtime::Builder::new_current_thread()
/// #     .enable_time().start_paused(true).build().unwrap();
/// # rt.block_on(async {
/// let (tx, rx) = mpsc::channel();
/// let pool = Arc::new(Pool { idle: Mutex::new(ExpiryQueue::new()), retired: tx, driver: Driver::new() });
///
/// let deadline = tokio::time::Instant::now().into_std() + Duration::from_secs(5);
/// pool.idle.lock().unwrap().insert(deadline, "conn-1");
/// pool.driver.schedule(&pool, deadline);
///
/// tokio::time::sleep(Duration::from_secs(6)).await;
/// assert_eq!(rx.try_recv(), Ok("conn-1"));
/// # });
/// ```
pub struct Driver {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
    /// How late the task woke, in nanoseconds: a maximum that decays by an
    /// eighth with every wake (see [`Driver::lateness`]).
    late_nanos: AtomicU64,
}

/// The lateness assumed before the first measurement: tokio's timers fire
/// on millisecond ticks.
const INITIAL_LATENESS: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
struct State {
    /// A task exists (spawned and not yet finished).
    running: bool,
    /// The earliest deadline scheduled since the task last looked.
    pending: Option<Instant>,
    /// What the task sleeps until; `None` while it is awake.
    sleeping_until: Option<Instant>,
    /// The handle was dropped: the task must end.
    closed: bool,
}

impl Shared {
    fn record_lateness(&self, late: Duration) {
        let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
        let old = self.late_nanos.load(Ordering::Relaxed);
        // One writer (the task): a load and a store are exact.
        self.late_nanos
            .store(late.max(old - old / 8), Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across user code, so a poisoned lock can
        // only come from a panic in this file between two plain stores;
        // the state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Driver {
    /// Creates a handle; no task is started until the first
    /// [`schedule`](Self::schedule).
    pub fn new() -> Self {
        Driver {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                late_nanos: AtomicU64::new(INITIAL_LATENESS.as_nanos() as u64),
            }),
        }
    }

    /// Tells the driver that `owner` has a deadline at `deadline`.
    ///
    /// Starts the task on the first call, and wakes it if `deadline` is
    /// earlier than the one it sleeps until. Call it whenever an insert or
    /// a reset may have made the owner's next deadline earlier; extra calls
    /// are cheap (one uncontended lock) and harmless.
    ///
    /// Every call must pass the same owner: the task is bound to the owner
    /// of the call that started it.
    ///
    /// Outside a tokio runtime this does not panic: the deadline is
    /// remembered, and the task starts with the next `schedule` made inside
    /// a runtime. (Until then nothing expires by itself; the owner can
    /// still call [`Expire::expire`] directly.)
    pub fn schedule<O: Expire>(&self, owner: &Arc<O>, deadline: Instant) {
        let mut state = self.shared.lock();
        state.pending = Some(state.pending.map_or(deadline, |p| p.min(deadline)));
        if state.running {
            if state.sleeping_until.is_some_and(|until| deadline < until) {
                state.sleeping_until = Some(deadline);
                self.shared.wake.notify_one();
            }
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        state.running = true;
        drop(state);
        runtime.spawn(run(Arc::downgrade(owner), Arc::clone(&self.shared)));
    }

    /// Measures [`lateness`](Self::lateness) again now: the task wakes once,
    /// about a millisecond from now, only to see how late it wakes, and
    /// then calls `expire` as after any wake (so the owner can apply the
    /// new figure to what it already scheduled).
    ///
    /// A pool calls it when a server's close taught it a timeout. The idle
    /// time of that close is when the client *read* it, as late as its
    /// runtime ran then; the driver's last wake may be long ago, and says
    /// nothing of that. Starts the task like [`schedule`](Self::schedule),
    /// with the same `owner`.
    pub fn calibrate<O: Expire>(&self, owner: &Arc<O>) {
        self.schedule(owner, now());
    }

    /// How late the task wakes for its deadlines, as measured: the timer's
    /// millisecond tick plus the runtime's scheduling delay, a recent
    /// maximum that decays by an eighth per wake. 1 ms until the first
    /// wake.
    ///
    /// A pool adds it to its retire margin (see
    /// [`Margin`](crate::Margin)): on a busy runtime the client reads a
    /// server's close, and a response, late by as much.
    pub fn lateness(&self) -> Duration {
        Duration::from_nanos(self.shared.late_nanos.load(Ordering::Relaxed))
    }

    /// Whether the task is currently alive (a snapshot, for diagnostics).
    pub fn is_running(&self) -> bool {
        self.shared.lock().running
    }
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Driver")
            .field("running", &state.running)
            .field("sleeping_until", &state.sleeping_until)
            .finish_non_exhaustive()
    }
}

/// Marks the task as gone if it ends without saying so (the runtime shut
/// down while it slept, or `expire` panicked), so that the next
/// `schedule` starts a new one.
struct Running {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            let mut state = self.shared.lock();
            state.running = false;
            state.sleeping_until = None;
        }
    }
}

async fn run<O: Expire>(owner: Weak<O>, shared: Arc<Shared>) {
    let mut running = Running {
        shared: Arc::clone(&shared),
        finished: false,
    };
    loop {
        let now = now();
        // The strong reference lives for this statement only.
        let next = match owner.upgrade() {
            Some(owner) => owner.expire(now),
            None => None,
        };
        let wake = {
            let mut state = shared.lock();
            let pending = state.pending.take();
            let wake = match (next, pending) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match wake {
                Some(wake) if !state.closed && owner.strong_count() > 0 => {
                    let wake = wake.max(now + Duration::from_millis(1));
                    state.sleeping_until = Some(wake);
                    wake
                }
                _ => {
                    // Nothing to wait for, or nobody to wait for: stop.
                    // Decided under the lock: a `schedule` that came before
                    // left a `pending` already counted above, and one that
                    // comes after sees `running == false` and starts a new
                    // task.
                    state.running = false;
                    state.sleeping_until = None;
                    running.finished = true;
                    return;
                }
            }
        };
        let wake = tokio::time::Instant::from_std(wake);
        if tokio::time::timeout_at(wake, shared.wake.notified())
            .await
            .is_err()
        {
            shared.record_lateness(tokio::time::Instant::now().saturating_duration_since(wake));
        }
        let mut state = shared.lock();
        state.sleeping_until = None;
        if state.closed {
            state.running = false;
            running.finished = true;
            return;
        }
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
