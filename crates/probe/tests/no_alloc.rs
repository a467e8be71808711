//! A probe never allocates: checked with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use freshpool_probe::{Liveness, Probe};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations count: only the test's own do.
    /// (libtest's main thread, waiting for the test, allocates now and
    /// then.) A `const` cell with no destructor: reading it never
    /// allocates.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every method forwards to `System` unchanged; the counter has no
// effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn probing_allocates_nothing() {
    COUNTED.with(|counted| counted.set(true));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        assert_eq!(client.probe(), Liveness::Alive);
    }
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        before,
        "alive probes allocated"
    );

    server.write_all(b"x").expect("write");
    while client.probe() == Liveness::Alive {
        std::thread::yield_now();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        assert_eq!(client.probe(), Liveness::Unexpected);
    }
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        before,
        "unexpected probes allocated"
    );

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        assert_eq!(client.probe_hangup(), Liveness::Alive);
    }
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        before,
        "hang-up probes allocated"
    );
}
