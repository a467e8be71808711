//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) and a
//! bounded number of pseudo-random inputs through the fuzz harnesses, so
//! that a plain `cargo test` on stable exercises them without libFuzzer.
//!
//! To regenerate the corpus from the seeds in `freshpool_expiry::fuzzing`:
//! `cargo test -p freshpool-expiry --test fuzz_corpus -- --ignored`.

use std::fs;
use std::path::PathBuf;

use freshpool_expiry::fuzzing;
use freshpool_testkit::XorShift;

/// Pseudo-random cases per target, on top of the corpus.
const RANDOM_CASES: usize = 2_000;

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `harness` on every file of the target's corpus; returns how many.
fn replay(target: &str, harness: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        harness(&data);
        count += 1;
    }
    count
}

#[test]
fn keep_alive_corpus() {
    let replayed = replay("keep_alive", fuzzing::keep_alive);
    assert!(
        replayed >= fuzzing::keep_alive_seeds().len(),
        "corpus has only {replayed} files"
    );
}

#[test]
fn expiry_queue_corpus() {
    let replayed = replay("expiry_queue", fuzzing::expiry_queue);
    assert!(
        replayed >= fuzzing::expiry_queue_seeds().len(),
        "corpus has only {replayed} files"
    );
}

#[test]
fn keep_alive_random() {
    let mut rng = XorShift::star(0xC0FF_EE00);
    for _ in 0..RANDOM_CASES {
        let len = (rng.next_u64() % 64) as usize;
        fuzzing::keep_alive(&rng.bytes(len, b"timeoutmax=0123456789,; \t\"\\\n:-+.xTM"));
    }
}

#[test]
fn expiry_queue_random() {
    let mut rng = XorShift::star(0xDEC0_DE00);
    for _ in 0..RANDOM_CASES / 4 {
        // Long enough sequences to reach heap compaction.
        let len = (rng.next_u64() % 4096) as usize;
        fuzzing::expiry_queue(&rng.bytes(len, &[]));
    }
}

/// Writes the seeds as corpus files (`seed-NN`). Ignored: run it by hand
/// when the seeds change.
#[test]
#[ignore = "writes into fuzz/corpus"]
fn regenerate_corpus() {
    for (target, seeds) in [
        ("keep_alive", fuzzing::keep_alive_seeds()),
        ("expiry_queue", fuzzing::expiry_queue_seeds()),
    ] {
        let dir = corpus_dir(target);
        fs::create_dir_all(&dir).expect("create corpus dir");
        for (i, seed) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i:02}")), seed).expect("write seed");
        }
    }
}
