//! `ExpiryQueue` agrees with a sorted-map model over arbitrary operation
//! sequences.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| freshpool_expiry::fuzzing::expiry_queue(data));
