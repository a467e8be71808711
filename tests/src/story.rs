//! Every connection's story: the debug events freshpool's clients log
//! about a connection, kept per connection id, so that a race can say what
//! happened to the connection a hung request was on.
//!
//! [`install`] sets a process-wide `tracing` subscriber that keeps the
//! events of the `freshpool*` targets at `DEBUG` and above that carry an
//! `id` field (both clients log every retire, close, probe rejection and
//! retry with the connection's id). Spans and every other target are
//! disabled, so the clients' hot paths pay only the callsite check they pay
//! anyway. A test that installs a subscriber of its own for a thread
//! (`tracing::subscriber::with_default`) still gets its events there.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// The most events kept per connection: the last ones tell the story.
const PER_CONNECTION: usize = 48;

/// The most connections remembered; past it, the oldest half is forgotten.
const CONNECTIONS: usize = 200_000;

/// Shards of the events, by connection id: connections are logged from
/// every thread, and one lock for all of them would be contended.
const SHARDS: usize = 16;

struct Book {
    started: Instant,
    shards: [Mutex<HashMap<u64, Vec<String>>>; SHARDS],
}

impl Book {
    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<String>>> {
        self.shards[(id % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

static BOOK: OnceLock<Book> = OnceLock::new();

/// Sets the story subscriber as the process's global default, once. If
/// another global subscriber was set first, stories stay empty (and say
/// so).
pub fn install() {
    BOOK.get_or_init(|| {
        let installed = tracing::subscriber::set_global_default(Recorder).is_ok();
        if !installed {
            eprintln!("connection stories: another tracing subscriber is installed; none recorded");
        }
        Book {
            started: Instant::now(),
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    });
}

/// The events recorded for connection `id`, oldest first, one line each
/// (`+seconds target: message field=value ...`).
pub fn of(id: u64) -> Vec<String> {
    let Some(book) = BOOK.get() else {
        return vec!["(no story recorded: story::install was not called)".into()];
    };
    book.shard(id).get(&id).cloned().unwrap_or_default()
}

/// The subscriber: events only, of freshpool's targets, that name a
/// connection (every other callsite is disabled once, at registration).
struct Recorder;

fn wanted(metadata: &Metadata<'_>) -> bool {
    metadata.is_event()
        && *metadata.level() <= Level::DEBUG
        && metadata.target().starts_with("freshpool")
        && metadata.fields().field("id").is_some()
}

impl Subscriber for Recorder {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if wanted(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        wanted(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Never called: every span callsite is disabled. A valid id anyway.
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let Some(book) = BOOK.get() else {
            return;
        };
        let mut line = Line::default();
        event.record(&mut line);
        let Some(id) = line.id else {
            return;
        };
        let elapsed = book.started.elapsed().as_secs_f64();
        let text = format!(
            "+{elapsed:.6}s {}: {}{}",
            event.metadata().target(),
            line.message,
            line.fields
        );
        let mut events = book.shard(id);
        if events.len() >= CONNECTIONS / SHARDS && !events.contains_key(&id) {
            let mut ids: Vec<u64> = events.keys().copied().collect();
            ids.sort_unstable();
            for old in &ids[..ids.len() / 2] {
                events.remove(old);
            }
        }
        let story = events.entry(id).or_default();
        if story.len() >= PER_CONNECTION {
            story.remove(0);
        }
        story.push(text);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// One event's fields: its connection id apart, its message, the rest.
#[derive(Default)]
struct Line {
    id: Option<u64>,
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "id" {
            self.id = Some(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
