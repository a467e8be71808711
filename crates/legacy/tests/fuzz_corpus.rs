//! Replays the committed corpus of the `tracker_differential` fuzz target
//! and a fixed-seed batch of mutations of it, so the differential check
//! runs in every `cargo test` (no nightly, no libFuzzer needed).
//!
//! `cargo test -p freshpool-legacy --test fuzz_corpus -- --ignored
//! write_corpus` regenerates the seed inputs.

use std::fs;
use std::path::{Path, PathBuf};

use freshpool_legacy::fuzzing::{Report, Request, encode, report, tracker_differential};
use freshpool_testkit::XorShift;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tracker_differential")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(corpus_dir())
        .expect("the committed corpus directory exists")
        .map(|entry| {
            let path = entry.expect("readable corpus entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                fs::read(&path).expect("readable corpus file"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn replay_corpus() {
    let files = corpus();
    assert!(files.len() >= 30, "corpus has only {} files", files.len());
    let mut total = Report::default();
    for (name, data) in &files {
        eprintln!("replaying {name}");
        let one = report(data);
        total.completed += one.completed;
        total.agreed_idle += one.agreed_idle;
        total.stuck += one.stuck;
    }
    eprintln!("{total:?}");
    // The checks ran: hyper completed responses, reused connections the
    // tracker called idle, and waited on bodies only EOF could end.
    assert!(total.completed >= files.len() as u32, "{total:?}");
    assert!(total.agreed_idle >= files.len() as u32 / 2, "{total:?}");
    assert!(total.stuck >= 8, "{total:?}");
}

/// Fragments that push mutations toward interesting framing.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n",
    b"content-length: 0\r\n",
    b"content-length: 5\r\n",
    b"transfer-encoding: chunked\r\n",
    b"connection: close\r\n",
    b"connection: keep-alive\r\n",
    b";ext=1",
    b"ffff",
    b" ",
    b"\n--8<--\n",
];

fn mutate(rng: &mut XorShift, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => data[at] = rng.next_u64() as u8,
            2 => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            4 if at < data.len() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                let copy = data[at..end].to_vec();
                data.splice(end..end, copy);
            }
            // The header bytes: requests and read splits.
            _ => {
                if let Some(byte) = data.get_mut(rng.below(4)) {
                    *byte = rng.next_u64() as u8;
                }
            }
        }
    }
}

fn mutations(seed: u64, count: u32) {
    let files = corpus();
    // The same seed, the same mutations on every run.
    let mut rng = XorShift::from_state(seed);
    for _ in 0..count {
        let mut data = files[rng.below(files.len())].1.clone();
        mutate(&mut rng, &mut data);
        // Mutate mutants too, to get further from the seeds.
        if rng.below(2) == 0 {
            mutate(&mut rng, &mut data);
        }
        let run = std::panic::catch_unwind(|| tracker_differential(&data));
        if let Err(panic) = run {
            eprintln!("failing input: {:?}", data.escape_ascii().to_string());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn mutations_of_the_corpus() {
    // About a second in a debug build.
    mutations(0x5eed_f00d_cafe_d00d, 10_000);
}

/// A longer run for a machine without nightly: `cargo test --release -p
/// freshpool-legacy --test fuzz_corpus -- --ignored mutations_long`.
/// `FUZZ_SEED=<u64>` picks another seed.
#[test]
#[ignore = "long: a million mutations"]
fn mutations_long() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0123_4567_89ab_cdef);
    mutations(seed | 1, 1_000_000);
}

/// A seed: file name stem, requests, response segments.
type Case = (&'static str, &'static [Request], &'static [&'static [u8]]);

/// Seed inputs: every framing the tracker follows, read whole, in odd
/// pieces and byte by byte, alone and several on one connection.
fn seeds() -> Vec<(String, Vec<u8>)> {
    use Request::*;
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                    5;ext=1\r\nhello\r\n3 \r\nabc\r\n0\r\nx-trailer: yes\r\n\r\n";
    let cases: Vec<Case> = vec![
        ("content_length", &[Get], &[OK]),
        ("content_length_twice", &[Get, PostLength], &[OK, OK]),
        ("chunked", &[Get], &[CHUNKED]),
        ("chunked_then_length", &[PostChunked, Get], &[CHUNKED, OK]),
        ("chunked_plain", &[Get], &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"]),
        ("chunked_not_last", &[Get], &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: CHUNKED, gzip\r\n\r\nbody until close"]),
        ("head", &[Head, Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n", OK]),
        ("no_content", &[PostLength, Get], &[b"HTTP/1.1 204 No Content\r\ncontent-length: 3\r\n\r\n", OK]),
        ("not_modified", &[Get, Get], &[b"HTTP/1.1 304 Not Modified\r\n\r\n", OK]),
        ("continue", &[PostLength, Get], &[b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", OK]),
        ("processing", &[Get], &[b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]),
        ("switching", &[GetUpgrade], &[b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n\x81\x00"]),
        ("switching_unasked", &[Get], &[b"HTTP/1.1 101 Switching Protocols\r\n\r\n"]),
        ("connect", &[Connect], &[b"HTTP/1.1 200 Connection Established\r\n\r\ntunnel"]),
        ("connect_refused", &[Connect, Get], &[b"HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\n\r\nnope", OK]),
        ("close_delimited", &[Get], &[b"HTTP/1.1 200 OK\r\n\r\nread me until the server closes"]),
        ("http10_close", &[Get, Get], &[b"HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello", OK]),
        ("http10_keep_alive", &[Get, Get], &[b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\ncontent-length: 5\r\n\r\nhello", OK]),
        ("http10_request", &[GetHttp10, Get], &[OK, OK]),
        ("connection_close", &[Get, Get], &[b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello", OK]),
        ("connection_close_later", &[Get, Get], &[b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nconnection: x, close\r\ncontent-length: 0\r\n\r\n", OK]),
        ("request_close", &[GetClose, Get], &[OK, OK]),
        ("content_length_invalid", &[Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 5x\r\n\r\nhello"]),
        ("content_length_differ", &[Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!"]),
        ("content_length_same", &[Get, Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello", OK]),
        ("stray_after_response", &[Get, Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 408 Request Timeout\r\n\r\n", OK]),
        ("short_body", &[Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]),
        ("obs_fold", &[Get], &[b"HTTP/1.1 200 OK\r\nx: a\r\n b\r\ncontent-length: 0\r\n\r\n"]),
        ("bad_chunk", &[Get], &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"]),
        ("bad_trailer", &[Get, Get], &[b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n", OK]),
        ("te_http10", &[Get], &[b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"]),
        ("four_in_a_row", &[Get, Head, PostChunked, PostLength], &[OK, b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", CHUNKED, b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n"]),
        ("bare_lf_head", &[Get, Get], &[b"HTTP/1.1 200 OK\ncontent-length: 2\n\nok", OK]),
        ("status_low", &[Get], &[b"HTTP/1.1 042 Odd\r\n\r\n"]),
        // The edges of the tracker's fast head scanner: what it reads itself,
        // and what it leaves to httparse (which accepts or rejects it).
        ("scan_token_names", &[Get, Get], &[b"HTTP/1.1 200 OK\r\nx!#$%&'*+-.^_`|~09: a\r\nCONTENT-LENGTH: 2\r\nConnection: Keep-Alive\r\n\r\nok", OK]),
        ("scan_space_before_colon", &[Get], &[b"HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\nok"]),
        ("scan_delimiter_in_name", &[Get], &[b"HTTP/1.1 200 OK\r\nx(y): 1\r\ncontent-length: 2\r\n\r\nok"]),
        ("scan_blanks_around_values", &[Get, Get], &[b"HTTP/1.1 200 OK\r\ncontent-length:\t 2 \t\r\nconnection: \tclose\t\r\n\r\nok", OK]),
        ("scan_empty_values", &[Get, Get], &[b"HTTP/1.1 200 OK\r\nx-a:\r\nx-b: \t \r\ncontent-length: 2\r\n\r\nok", OK]),
        ("scan_obs_text_value", &[Get, Get], &[b"HTTP/1.1 200 OK\r\nx: caf\xc3\xa9\r\ncontent-length: 2\r\n\r\nok", OK]),
        ("scan_obs_text_reason", &[Get, Get], &[b"HTTP/1.1 200 \xffOK\r\ncontent-length: 2\r\n\r\nok", OK]),
        ("scan_del_in_value", &[Get], &[b"HTTP/1.1 200 OK\r\nx: a\x7fb\r\ncontent-length: 2\r\n\r\nok"]),
        ("scan_control_in_value", &[Get], &[b"HTTP/1.1 200 OK\r\nx: a\x01b\r\ncontent-length: 2\r\n\r\nok"]),
        ("scan_cr_without_lf", &[Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\rx: y\r\n\r\nok"]),
        ("scan_mixed_line_ends", &[Get, Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 2\n\r\nok", b"HTTP/1.1 200 OK\ncontent-length: 5\r\n\nhello"]),
        ("scan_no_reason", &[Get, Get], &[b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok", OK]),
        ("scan_two_spaces", &[Get], &[b"HTTP/1.1  200 OK\r\ncontent-length: 2\r\n\r\nok"]),
        ("scan_leading_zeros", &[Get, Get], &[b"HTTP/1.1 200 OK\r\ncontent-length: 0002\r\n\r\nok", OK]),
        ("scan_obs_fold_framing", &[Get], &[b"HTTP/1.1 200 OK\r\ncontent-length:\r\n 2\r\n\r\nok"]),
    ];
    // Heads at the scanner's limits: exactly hyper's 100 header lines and
    // one more, more framing headers than the scanner keeps, a long value.
    let lines = |n: usize| -> String { (0..n).map(|i| format!("x-{i}: {i}\r\n")).collect() };
    let generated = [
        (
            "scan_100_headers",
            format!(
                "HTTP/1.1 200 OK\r\n{}content-length: 2\r\n\r\nok",
                lines(99)
            ),
        ),
        (
            "scan_101_headers",
            format!(
                "HTTP/1.1 200 OK\r\n{}content-length: 2\r\n\r\nok",
                lines(100)
            ),
        ),
        (
            "scan_many_framing_headers",
            format!(
                "HTTP/1.1 200 OK\r\n{}content-length: 2\r\n\r\nok",
                "connection: keep-alive\r\n".repeat(9)
            ),
        ),
        (
            "scan_long_value",
            format!(
                "HTTP/1.1 200 OK\r\nx-long: {}\r\ncontent-length: 2\r\n\r\nok",
                "v".repeat(3000)
            ),
        ),
    ];
    let mut seeds = Vec::new();
    let all = cases
        .iter()
        .map(|&(name, requests, segments)| (name, requests, segments.to_vec()));
    let generated = generated
        .iter()
        .map(|(name, head)| (*name, &[Get, Get][..], vec![head.as_bytes(), OK]));
    for (name, requests, segments) in all.chain(generated) {
        // Read splits: one byte at a time, up to 7, up to 300, everything.
        for split in 0..4u8 {
            let file = format!("{name}-{split}");
            seeds.push((file, encode(requests, split * 17 + split, &segments)));
        }
    }
    seeds
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/tracker_differential"]
fn write_corpus() {
    let dir = corpus_dir();
    fs::create_dir_all(&dir).expect("create the corpus directory");
    for (name, data) in seeds() {
        tracker_differential(&data);
        fs::write(dir.join(name), data).expect("write a corpus file");
    }
}
