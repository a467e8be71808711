//! The oracle, efficiency and band columns of `poolbench race` compute
//! what they claim: checked on runs whose gaps are known, against the
//! built-in origin (which knows its timeout), against a `--target` (whose
//! timeout is estimated), and with a slow consumer. These assert the
//! measurement, not freshpool's figures.

mod support;

use std::time::Duration;

use freshpool_origin::Advertise;
use serde_json::Value;

use support::{OwnOrigin, client, one_at_a_time, poolbench_json, within};

const CLIENTS: [&str; 4] = ["hyper-util", "connector", "retry-client", "freshpool"];

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

fn band(c: &Value, name: &str) -> (u64, u64) {
    let b = &c["bands"][name];
    (count(&b["requests"]), count(&b["reused"]))
}

#[test]
fn gaps_well_below_the_timeout_are_all_in_the_oracle() {
    let _serial = one_at_a_time();
    // Gaps of exactly 40 ms (60 ms for each sender's second request),
    // against a 200 ms timeout: every request but each sender's first
    // could reuse.
    let doc = poolbench_json(&[
        "race",
        "--idle",
        "200ms",
        "--interval",
        "40ms",
        "--jitter",
        "0ms",
        "--senders",
        "4",
        "--requests",
        "40",
        "--json",
    ]);
    assert_eq!(doc["oracle_source"], "origin");
    assert_eq!(doc["server_timeout_ms"], 200.0);
    for prefix in CLIENTS {
        let c = client(&doc, prefix);
        assert_eq!(count(&c["oracle_requests"]), 36, "{c:#}");
        assert!(
            within(c["oracle_percent"].as_f64().expect("%"), 90.0, 1e-9),
            "{c:#}"
        );
        let (below, _) = band(c, "below_retire");
        let (between, _) = band(c, "retire_to_timeout");
        assert_eq!(below + between, 36, "{c:#}");
        assert_eq!(band(c, "above_timeout"), (0, 0), "{c:#}");
    }
    // hyper-util reuses whatever the server still holds open: here all.
    let hyper_util = client(&doc, "hyper-util");
    assert_eq!(count(&hyper_util["reused_requests"]), 36, "{hyper_util:#}");
    let efficiency = hyper_util["efficiency"].as_f64().expect("efficiency");
    assert!(within(efficiency, 1.0, 1e-9), "{hyper_util:#}");
}

#[test]
fn gaps_above_the_timeout_leave_the_oracle_empty() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "race",
        "--idle",
        "100ms",
        "--interval",
        "150ms",
        "--jitter",
        "0ms",
        "--senders",
        "4",
        "--requests",
        "16",
        "--json",
    ]);
    for prefix in CLIENTS {
        let c = client(&doc, prefix);
        assert_eq!(count(&c["oracle_requests"]), 0, "{c:#}");
        assert_eq!(
            c["efficiency"],
            Value::Null,
            "no efficiency of nothing: {c:#}"
        );
        assert_eq!(band(c, "above_timeout").0, 12, "{c:#}");
        assert_eq!(
            count(&c["reused_requests"]),
            band(c, "above_timeout").1,
            "{c:#}"
        );
    }
    // The server had closed every connection: nobody reused one.
    assert_eq!(count(&client(&doc, "hyper-util")["reused_requests"]), 0);
}

#[test]
fn wide_gaps_fall_into_bands_that_add_up_and_hyper_util_matches_the_oracle() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "race",
        "--idle",
        "100ms",
        "--gaps",
        "uniform:0.5..1.5",
        "--cold",
        "--senders",
        "5",
        "--requests",
        "60",
        "--json",
    ]);
    assert_eq!(
        doc["settings"]["gaps"]["uniform"],
        serde_json::json!([0.5, 1.5])
    );
    assert_eq!(doc["settings"]["jitter_ms"], Value::Null);
    for prefix in CLIENTS {
        let c = client(&doc, prefix);
        let bands: Vec<_> = ["below_retire", "retire_to_timeout", "above_timeout"]
            .iter()
            .map(|b| band(c, b))
            .collect();
        // Every request but each sender's first has a gap, in one band.
        assert_eq!(bands.iter().map(|b| b.0).sum::<u64>(), 55, "{c:#}");
        // No mass close: the oracle is exactly the gaps below the timeout.
        assert_eq!(
            bands[0].0 + bands[1].0,
            count(&c["oracle_requests"]),
            "{c:#}"
        );
        // Gaps uniform on [50, 150] ms around a 100 ms timeout.
        let oracle = c["oracle_percent"].as_f64().expect("%");
        assert!((25.0..=70.0).contains(&oracle), "{c:#}");
        // A reused request is counted in its band.
        let reused: u64 = bands.iter().map(|b| b.1).sum();
        assert_eq!(reused, count(&c["reused_requests"]), "{c:#}");
    }
    // The same schedule for everyone: the same gaps, the same oracle
    // (up to the odd millisecond a request took).
    let oracles: Vec<u64> = CLIENTS
        .iter()
        .map(|p| count(&client(&doc, p)["oracle_requests"]))
        .collect();
    assert!(
        oracles.iter().max().expect("some") - oracles.iter().min().expect("some") <= 2,
        "{oracles:?}"
    );
    // hyper-util reuses every connection the server holds open and no
    // other: its efficiency is 1 by construction, up to the requests that
    // met the close within its timer's lateness (about one in a hundred
    // per millisecond late, on a loaded machine a few).
    let hyper_util = client(&doc, "hyper-util");
    let efficiency = hyper_util["efficiency"].as_f64().expect("efficiency");
    assert!(within(efficiency, 1.0, 0.15), "{hyper_util:#}");
    let (above, reused_above) = band(hyper_util, "above_timeout");
    assert!(above > 10 && reused_above <= 4, "{hyper_util:#}");
}

#[test]
fn against_a_target_the_timeout_is_estimated_from_hyper_util() {
    let _serial = one_at_a_time();
    let server = OwnOrigin::start(Duration::from_millis(150), Advertise::None);
    let url = format!("{}/orders", server.origin.base_url());
    let doc = poolbench_json(&[
        "race",
        "--target",
        &url,
        "--interval",
        "150ms",
        "--gaps",
        "uniform:0.5..1.5",
        "--cold",
        "--senders",
        "4",
        "--requests",
        "48",
        "--json",
    ]);
    server.shutdown();
    let source = doc["oracle_source"].as_str().expect("a source");
    assert!(source.contains("hyper-util"), "{source}");
    let timeout = doc["server_timeout_ms"].as_f64().expect("estimated");
    assert!(
        within(timeout, 150.0, 0.15),
        "estimated {timeout} ms: {doc:#}"
    );
    // By construction hyper-util's reuse less its errors is the oracle.
    let hyper_util = client(&doc, "hyper-util");
    let reuse = hyper_util["reuse_percent"].as_f64().expect("%");
    let errors = count(&hyper_util["errors"]) as f64 * 100.0 / 48.0;
    let oracle = hyper_util["oracle_percent"].as_f64().expect("%");
    assert!((oracle - (reuse - errors)).abs() < 2.1, "{hyper_util:#}");
}

#[test]
fn a_slow_consumers_gaps_count_from_the_response_head() {
    let _serial = one_at_a_time();
    // The body is read 300 ms after the head; the next request goes 800 to
    // 900 ms after the head, within the 1 s timeout. Counted from the end of
    // the body, the server would have seen 1.1 to 1.2 s and closed.
    let doc = poolbench_json(&[
        "race",
        "--slow-body",
        "300ms",
        "--interval",
        "1s",
        "--gaps",
        "uniform:0.8..0.9",
        "--cold",
        "--senders",
        "2",
        "--requests",
        "6",
        "--json",
    ]);
    assert_eq!(doc["settings"]["origin_keep_alive_timeout_s"], 1, "{doc:#}");
    assert_eq!(doc["settings"]["slow_body_ms"], 300.0);
    for prefix in CLIENTS {
        let c = client(&doc, prefix);
        assert_eq!(count(&c["oracle_requests"]), 4, "{c:#}");
        // The pause is the caller's, not the client's latency.
        let p50 = c["p50_ms"].as_f64().expect("p50");
        assert!(p50 < 250.0, "{c:#}");
    }
    // The origin agrees: it kept every connection open through the gap.
    let hyper_util = client(&doc, "hyper-util");
    assert_eq!(count(&hyper_util["reused_requests"]), 4, "{hyper_util:#}");
    assert_eq!(hyper_util["errors"], 0, "{hyper_util:#}");
}
