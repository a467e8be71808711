//! Each scenario runs against the built-in origin, with small counts.

mod support;

use std::time::Duration;

use freshpool_origin::Advertise;

use support::{OwnOrigin, client, one_at_a_time, poolbench_json, within};

#[test]
fn race_shows_every_client_and_freshpool_fails_nothing() {
    let _serial = one_at_a_time();
    let dir = std::env::temp_dir().join(format!("poolbench-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let svg = dir.join("race.svg");
    let svg_arg = svg.to_str().expect("utf-8 path");
    let doc = poolbench_json(&[
        "race",
        "--idle",
        "100ms",
        "--senders",
        "4",
        "--requests",
        "40",
        "--json",
        "--plot",
        svg_arg,
    ]);
    assert_eq!(doc["scenario"], "race");
    assert_eq!(doc["builtin_origin"], true);
    let clients = doc["clients"].as_array().expect("clients");
    assert!(clients.len() >= 2, "{doc:#}");
    let mut processed = 0;
    for c in clients {
        assert_eq!(c["requests"], 40, "{c:#}");
        processed += c["ok"].as_u64().expect("ok");
        assert!(
            c["duplicates"].is_u64(),
            "the built-in origin knows duplicates: {c:#}"
        );
    }
    // Every successful request was processed exactly once by the origin.
    assert!(doc["origin_processed"].as_u64().expect("processed") >= processed);
    for prefix in ["connector", "retry-client", "freshpool"] {
        let c = client(&doc, prefix);
        assert_eq!(c["freshpool"], true, "{c:#}");
        assert_eq!(c["errors"], 0, "{c:#}");
        assert_eq!(c["duplicates"], 0, "{c:#}");
    }
    let fp = client(&doc, "freshpool");
    assert_eq!(fp["errors"], 0, "{fp:#}");
    assert_eq!(fp["duplicates"], 0, "{fp:#}");
    assert!(fp["p50_ms"].as_f64().expect("p50") > 0.0);
    assert!(fp["connections_opened"].as_u64().expect("connections") >= 4);

    let svg = std::fs::read_to_string(&svg).expect("the plot was written");
    assert_well_formed(&svg);
    assert!(svg.contains("hyper-util") && svg.contains("freshpool"));
    assert!(svg.contains("latency (ms)") && svg.contains("time since start (s)"));
    // One mark per request, ok (circle) or failed (red cross).
    let marks = svg.matches("<circle cx").count() + svg.matches("<path d=\"M").count();
    assert_eq!(marks, 40 * clients.len() + 2, "two marks are the legend's");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_cold_race_fails_freshpool_only_before_the_timeout_is_known() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "race",
        "--cold",
        "--idle",
        "100ms",
        "--senders",
        "4",
        "--requests",
        "24",
        "--json",
    ]);
    assert_eq!(doc["settings"]["cold"], true);
    let hyper_util = client(&doc, "hyper-util");
    assert_eq!(
        hyper_util["requests_once_timeout_known"], 0,
        "it never knows"
    );
    for prefix in ["connector", "retry-client", "freshpool"] {
        let c = client(&doc, prefix);
        let known = c["requests_once_timeout_known"].as_u64().expect("count");
        // Each sender's pool learns from its first idle close at the latest.
        assert!(known > 0 && known < 24, "{c:#}");
        assert_eq!(c["errors_once_timeout_known"], 0, "{c:#}");
        assert_eq!(c["duplicates"], 0, "{c:#}");
    }
}

/// Tags open and close in order; attributes are quoted.
fn assert_well_formed(svg: &str) {
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    let mut open = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>').expect("tag closes");
        let tag = &rest[start + 1..end];
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{tag}>"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name.to_owned()), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            open.push(tag.split_whitespace().next().expect("a name").to_owned());
        }
        rest = &rest[end + 1..];
    }
    assert!(open.is_empty(), "unclosed tags: {open:?}");
}

#[test]
fn ablation_switches_each_mechanism_off_in_turn() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "ablation",
        "--idle",
        "1s",
        "--senders",
        "2",
        "--requests",
        "6",
        "--json",
    ]);
    assert_eq!(doc["scenario"], "ablation");
    let names: Vec<&str> = doc["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .map(|c| c["id_prefix"].as_str().expect("prefix"))
        .collect();
    for expected in [
        "hyper-util",
        "all",
        "no-probe",
        "no-header",
        "no-learn",
        "no-retry",
        "none",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    let all = client(&doc, "all");
    assert_eq!(all["errors"], 0, "{all:#}");
    assert_eq!(all["duplicates"], 0, "{all:#}");
    // The origin says `Keep-Alive: timeout=1`: with the header on, that
    // is the estimate; with it off and learning on, it is learned.
    assert_eq!(all["idle_estimate_source"], "header", "{all:#}");
    let no_header = client(&doc, "no-header");
    assert_ne!(no_header["idle_estimate_source"], "header", "{no_header:#}");
}

#[test]
fn throughput_measures_every_client_at_each_concurrency() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&[
        "throughput",
        "--duration",
        "200ms",
        "--concurrency",
        "1,4",
        "--json",
    ]);
    let results = doc["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    for (result, concurrency) in results.iter().zip([1, 4]) {
        assert_eq!(result["concurrency"], concurrency);
        let clients = result["clients"].as_array().expect("clients");
        assert!(clients.len() >= 3, "{result:#}");
        assert_eq!(clients[0]["name"], "hyper-util");
        assert!((clients[0]["ratio_to_hyper_util"].as_f64().expect("ratio") - 1.0).abs() < 1e-9);
        for c in clients {
            assert!(c["requests"].as_u64().expect("requests") > 0, "{c:#}");
            assert_eq!(c["errors"], 0, "{c:#}");
        }
    }
}

#[test]
fn discover_finds_the_origins_idle_timeout_within_ten_percent() {
    let _serial = one_at_a_time();
    let origin = OwnOrigin::start(Duration::from_millis(300), Advertise::None);
    let url = format!("{}/", origin.origin.base_url());
    let doc = poolbench_json(&["discover", "--target", &url, "--json"]);
    let found = doc["idle_timeout_ms"]
        .as_f64()
        .expect("a timeout was found");
    assert!(within(found, 300.0, 0.10), "found {found} ms: {doc:#}");
    assert_eq!(doc["keep_alive_header"], serde_json::Value::Null);
    assert_eq!(doc["reuse_check_ok"], true, "{doc:#}");
    assert!(doc["requests_sent"].as_u64().expect("count") <= 40);
    origin.shutdown();
}

#[test]
fn discover_tells_a_false_keep_alive_header_from_a_true_one() {
    let _serial = one_at_a_time();
    let liar = OwnOrigin::start(
        Duration::from_millis(300),
        Advertise::False(Duration::from_secs(5)),
    );
    let url = format!("{}/", liar.origin.base_url());
    let doc = poolbench_json(&["discover", "--target", &url, "--json", "--connections", "2"]);
    assert_eq!(doc["keep_alive_header"], "timeout=5", "{doc:#}");
    assert_eq!(doc["advertised_timeout_s"], 5);
    assert_eq!(doc["advertised_agrees"], false, "{doc:#}");
    liar.shutdown();

    let honest = OwnOrigin::start(Duration::from_millis(1_200), Advertise::Truthful);
    let url = format!("{}/", honest.origin.base_url());
    let doc = poolbench_json(&["discover", "--target", &url, "--json", "--connections", "2"]);
    assert_eq!(doc["advertised_timeout_s"], 1, "{doc:#}");
    assert_eq!(doc["advertised_agrees"], true, "{doc:#}");
    let found = doc["idle_timeout_ms"]
        .as_f64()
        .expect("a timeout was found");
    assert!(within(found, 1_200.0, 0.10), "found {found} ms");
    honest.shutdown();
}
