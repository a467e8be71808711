//! A progress bar on stderr, drawn only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Counts finished work; a task redraws the bar ten times a second.
#[derive(Debug)]
pub(crate) struct Progress {
    done: Arc<AtomicU64>,
    drawer: Option<JoinHandle<()>>,
}

impl Progress {
    /// A bar for `total` units labelled `label`; silent when stderr is not
    /// a terminal. Must be called inside a tokio runtime.
    pub(crate) fn start(label: &str, total: u64) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let drawer = std::io::stderr().is_terminal().then(|| {
            let done = Arc::clone(&done);
            let label = label.to_owned();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    draw(&label, done.load(Ordering::Relaxed), total);
                }
            })
        });
        Progress { done, drawer }
    }

    /// A handle that counts one unit per [`Counter::add`].
    pub(crate) fn counter(&self) -> Counter {
        Counter(Arc::clone(&self.done))
    }

    /// Removes the bar.
    pub(crate) fn finish(mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        if let Some(drawer) = self.drawer.take() {
            drawer.abort();
            let mut err = std::io::stderr().lock();
            // Best effort: a closed terminal is no reason to fail the run.
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Counts finished units for a [`Progress`].
#[derive(Debug, Clone)]
pub(crate) struct Counter(Arc<AtomicU64>);

impl From<Arc<AtomicU64>> for Counter {
    fn from(count: Arc<AtomicU64>) -> Counter {
        Counter(count)
    }
}

impl Counter {
    /// One more unit done.
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn draw(label: &str, done: u64, total: u64) {
    const WIDTH: u64 = 40;
    let total = total.max(1);
    let filled = (done.min(total) * WIDTH / total) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(WIDTH as usize - filled)
    );
    let mut err = std::io::stderr().lock();
    // Best effort, as above.
    let _ = write!(err, "\r{label} [{bar}] {done}/{total}");
    let _ = err.flush();
}
