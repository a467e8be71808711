//! `poolbench restart` splits each client's run into the phases it
//! claims, counts the origin's mass close, and judges recovery against
//! the oracle. These assert the measurement, with hyper-util (which the
//! project does not change) as the reference; not freshpool's figures.

mod support;

use serde_json::Value;

use support::{client, one_at_a_time, poolbench_json};

const CLIENTS: [&str; 4] = ["hyper-util", "connector", "retry-client", "freshpool"];
const PHASES: [&str; 3] = ["before", "during", "after"];

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

fn phase<'a>(c: &'a Value, name: &str) -> &'a Value {
    &c["phases"][name]
}

#[test]
fn a_mass_close_splits_the_run_and_hyper_util_recovers_at_once() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "restart",
        "--senders",
        "4",
        "--idle",
        "200ms",
        "--at",
        "500ms",
        "--after",
        "700ms",
        "--json",
    ]);
    assert_eq!(doc["scenario"], "restart");
    assert_eq!(doc["event"]["kind"], "mass_close");
    let from = doc["event"]["from_ms"].as_f64().expect("from");
    assert!((500.0..600.0).contains(&from), "{doc:#}");
    // 4 clients × 4 senders, each with one connection idle at the close
    // (a request takes a millisecond of its 50 to 150 ms cycle).
    let ordered = count(&doc["origin_idle_closes_ordered"]);
    assert!((10..=20).contains(&ordered), "{ordered} closed: {doc:#}");
    // 1.2 s at 100 ms: 12 requests per sender.
    let requests = count(&doc["settings"]["requests_per_client"]);
    assert_eq!(requests, 48);
    for prefix in CLIENTS {
        let c = client(&doc, prefix);
        let per_phase: Vec<u64> = PHASES
            .iter()
            .map(|p| count(&phase(c, p)["requests"]))
            .collect();
        assert!(per_phase.iter().all(|&n| n > 0), "{c:#}");
        assert_eq!(per_phase.iter().sum::<u64>(), requests, "{c:#}");
        let (before, during) = (phase(c, "before"), phase(c, "during"));
        // Connections idle at the close could not be reused after it.
        assert!(
            during["oracle_percent"].as_f64() < before["oracle_percent"].as_f64(),
            "{c:#}"
        );
        // A request reused a connection the server had closed only by
        // failing on it.
        assert!(
            count(&during["reused"])
                <= count(&during["oracle_requests"]) + count(&during["errors"]),
            "{c:#}"
        );
        assert_eq!(c["duplicates"], 0, "{c:#}");
    }
    let hyper_util = client(&doc, "hyper-util");
    for p in ["before", "after"] {
        let efficiency = phase(hyper_util, p)["efficiency"]
            .as_f64()
            .expect("efficiency");
        assert!(efficiency >= 0.9, "{p}: {hyper_util:#}");
    }
    let recovered = hyper_util["recovered_after_requests_per_sender"]
        .as_f64()
        .expect("hyper-util recovers");
    assert!(recovered <= 2.0, "{hyper_util:#}");
}

#[test]
fn an_overload_leaves_nothing_to_reuse_while_it_lasts() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "restart",
        "--senders",
        "4",
        "--idle",
        "200ms",
        "--at",
        "400ms",
        "--overload",
        "400ms",
        "--early",
        "5ms",
        "--after",
        "500ms",
        "--json",
    ]);
    assert_eq!(doc["event"]["kind"], "overload");
    assert_eq!(doc["event"]["early_ms"], 5.0);
    let from = doc["event"]["from_ms"].as_f64().expect("from");
    let until = doc["event"]["until_ms"].as_f64().expect("until");
    assert!((390.0..=420.0).contains(&(until - from)), "{doc:#}");
    assert_eq!(doc["origin_idle_closes_ordered"], 0, "timeouts, not orders");
    for prefix in CLIENTS {
        let c = client(&doc, prefix);
        let during = phase(c, "during");
        // Every gap is at least 50 ms; the server closed after 5.
        assert!(count(&during["requests"]) > 8, "{c:#}");
        assert_eq!(count(&during["oracle_requests"]), 0, "{c:#}");
        assert_eq!(during["efficiency"], Value::Null, "{c:#}");
        assert!(
            count(&during["reused"]) <= count(&during["errors"]),
            "{c:#}"
        );
        assert!(
            phase(c, "after")["oracle_percent"].as_f64() > Some(50.0),
            "{c:#}"
        );
    }
    let hyper_util = client(&doc, "hyper-util");
    let after = phase(hyper_util, "after")["efficiency"]
        .as_f64()
        .expect("efficiency");
    assert!(after >= 0.9, "{hyper_util:#}");
}
