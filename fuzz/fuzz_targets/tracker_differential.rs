//! hyper's HTTP/1 client and freshpool-legacy's boundary tracker read the
//! same response bytes; they must agree on where every message ends.
//! See `freshpool_legacy::fuzzing` for the input format and the checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    freshpool_legacy::fuzzing::tracker_differential(data);
});
