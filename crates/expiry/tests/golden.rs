//! Replays every golden trace in `tests/traces` (the format is in
//! `freshpool_expiry::trace`): each is a scenario of evidence with the
//! estimate, retire time and watch it must give at each step.

use std::fs;
use std::path::Path;

#[test]
fn every_golden_trace_replays_as_written() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .expect("the traces directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "trace"))
        .collect();
    names.sort();
    let failures: Vec<String> = names
        .iter()
        .filter_map(|path| {
            let text = fs::read_to_string(path).expect("a readable trace");
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            freshpool_expiry::trace::replay(&text)
                .err()
                .map(|error| format!("{name}: {error}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The issue that asked for them: at least 30, one per estimator case.
    assert!(names.len() >= 30, "only {} traces", names.len());
}
