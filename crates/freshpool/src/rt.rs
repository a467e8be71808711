//! The runtime a client runs on: the executor its connection tasks are
//! spawned on and the timer hyper's HTTP/2 keep-alive uses, both type-erased
//! so that [`Client`](crate::Client) stays generic over its connector and
//! body only, as hyper-util's legacy `Client` does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::rt::{Executor, Sleep, Timer};
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// A boxed task, as [`Builder::executor`](crate::Builder::executor) is
/// given them (hyper-util's legacy `Builder` spawns the same type).
pub type BoxSendFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor every connection task of a client is spawned on.
#[derive(Clone)]
pub(crate) struct Exec(Arc<dyn Executor<BoxSendFuture> + Send + Sync>);

impl Exec {
    pub(crate) fn new<E>(executor: E) -> Exec
    where
        E: Executor<BoxSendFuture> + Send + Sync + 'static,
    {
        Exec(Arc::new(executor))
    }

    /// hyper-util's `TokioExecutor`: `tokio::spawn` on the current runtime.
    pub(crate) fn tokio() -> Exec {
        Exec::new(TokioExecutor::new())
    }
}

impl<F> Executor<F> for Exec
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.execute(Box::pin(future));
    }
}

impl fmt::Debug for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exec")
    }
}

/// The timer handed to hyper's HTTP/2 connections.
#[derive(Clone)]
pub(crate) struct SharedTimer(Arc<dyn Timer + Send + Sync>);

impl SharedTimer {
    pub(crate) fn new<T>(timer: T) -> SharedTimer
    where
        T: Timer + Send + Sync + 'static,
    {
        SharedTimer(Arc::new(timer))
    }

    /// hyper-util's `TokioTimer`, which follows tokio's clock (and so its
    /// paused time in tests).
    pub(crate) fn tokio() -> SharedTimer {
        SharedTimer::new(TokioTimer::new())
    }
}

impl Timer for SharedTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.0.sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.0.sleep_until(deadline)
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        self.0.reset(sleep, new_deadline);
    }

    fn now(&self) -> Instant {
        self.0.now()
    }
}

impl fmt::Debug for SharedTimer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedTimer")
    }
}
