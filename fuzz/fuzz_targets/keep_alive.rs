//! `KeepAlive::parse` and `response_reuse` never panic, and what `parse`
//! accepts round-trips through `Display`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| freshpool_expiry::fuzzing::keep_alive(data));
