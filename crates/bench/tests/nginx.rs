//! `poolbench` against a real server that is not ours: nginx from the
//! distribution's packages (`.ci/run` installs it), on loopback, with
//! `keepalive_timeout 200ms`. nginx's access log, which names each
//! request's `x-request-id`, shows what it processed.
//!
//! Without an `nginx` binary these tests say so and pass: they cannot run
//! here, and CI (which installs nginx) runs them.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use support::nginx::{Nginx, skip};
use support::{client, one_at_a_time, poolbench_json, within};

/// nginx answering every request itself, with a 200 ms keep-alive timeout
/// and an access log that names each request's `x-request-id`.
fn start(name: &str) -> Option<Nginx> {
    Nginx::start(name, |dir, port| {
        let d = dir.display();
        format!(
            "    log_format ids '$http_x_request_id $status';
    keepalive_timeout 200ms;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        access_log {d}/access.log ids;
        location / {{ return 200 \"ok\\n\"; }}
    }}"
        )
    })
}

/// Processings per `x-request-id`, from nginx's access log.
fn processed_by(nginx: &Nginx) -> HashMap<String, u64> {
    processed(&nginx.dir().join("access.log"))
}

fn processed(log: &Path) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(log).expect("access log");
    let mut counts = HashMap::new();
    for line in text.lines() {
        if let Some(id) = line.split_whitespace().next().filter(|id| *id != "-") {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn race_against_nginx_freshpool_fails_and_duplicates_nothing() {
    let _serial = one_at_a_time();
    let Some(nginx) = start("race") else {
        return skip();
    };
    let doc = poolbench_json(&[
        "race",
        "--target",
        &nginx.url(),
        "--senders",
        "10",
        "--requests",
        "200",
        "--json",
    ]);
    assert_eq!(doc["builtin_origin"], false);
    // nginx writes its log line after the response; give the last a moment.
    std::thread::sleep(Duration::from_millis(100));
    let processed = processed_by(&nginx);
    let clients = doc["clients"].as_array().expect("clients");
    for c in clients {
        let prefix = format!("{}.", c["id_prefix"].as_str().expect("prefix"));
        let mine: Vec<u64> = processed
            .iter()
            .filter(|(id, _)| id.starts_with(&prefix))
            .map(|(_, n)| *n)
            .collect();
        let duplicates: u64 = mine.iter().map(|n| n - 1).sum();
        let ok = c["ok"].as_u64().expect("ok");
        assert!(
            mine.len() as u64 >= ok,
            "nginx logged fewer requests than succeeded: {c:#}"
        );
        if c["freshpool"] == true {
            assert_eq!(c["errors"], 0, "{c:#}");
            assert_eq!(ok, 200, "{c:#}");
            assert_eq!(duplicates, 0, "{} processed twice: {c:#}", c["name"]);
        }
    }
    let fp = client(&doc, "freshpool");
    let estimate = fp["idle_estimate_ms"]
        .as_f64()
        .expect("freshpool learned a timeout");
    assert!(within(estimate, 200.0, 0.10), "learned {estimate} ms");
}

#[test]
fn discover_finds_nginx_keepalive_timeout_within_ten_percent() {
    let _serial = one_at_a_time();
    let Some(nginx) = start("discover") else {
        return skip();
    };
    let doc = poolbench_json(&["discover", "--target", &nginx.url(), "--json"]);
    let found = doc["idle_timeout_ms"]
        .as_f64()
        .expect("a timeout was found");
    assert!(within(found, 200.0, 0.10), "found {found} ms: {doc:#}");
    assert_eq!(doc["reuse_check_ok"], true, "{doc:#}");
}

/// Against nginx, with gaps spread around its timeout, freshpool's clients
/// fail nothing once the timeout is known and still take the reuse that is
/// safe: their efficiency (reuse ÷ the oracle's, in the same run) stays
/// near hyper-util's, which reuses everything it can.
#[test]
fn against_nginx_freshpool_keeps_the_safe_reuse() {
    let _serial = one_at_a_time();
    let Some(nginx) = start("reuse") else {
        return skip();
    };
    let doc = poolbench_json(&[
        "race",
        "--target",
        &nginx.url(),
        "--interval",
        "200ms",
        "--gaps",
        "uniform:0.5..1.5",
        "--senders",
        "10",
        "--requests",
        "200",
        "--json",
    ]);
    let reference = client(&doc, "hyper-util");
    let oracle = reference["oracle_requests"].as_u64().expect("an oracle");
    assert!(
        oracle >= 40,
        "too few safe reuses to measure: {reference:#}"
    );
    for c in doc["clients"].as_array().expect("clients") {
        if c["freshpool"] != true {
            continue;
        }
        assert_eq!(c["errors_once_timeout_known"], 0, "{c:#}");
        let efficiency = c["efficiency"].as_f64().expect("efficiency");
        assert!(
            efficiency >= 0.85,
            "{} reused {efficiency:.2} of the safe reuse (hyper-util {}): {c:#}",
            c["name"],
            reference["efficiency"]
        );
    }
}
