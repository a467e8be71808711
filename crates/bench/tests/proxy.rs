//! `poolbench proxy`: the race through reverse proxies, with the figures
//! it must reach for freshpool-proxy, and nginx from the distribution's
//! packages (`.ci/run` installs it) raced beside it through `--proxy`.
//!
//! Without an `nginx` binary the nginx test says so and passes: it cannot
//! run here, and CI (which installs nginx) runs it.

mod support;

use serde_json::Value;
use support::nginx::{Nginx, free_port, skip};
use support::{one_at_a_time, poolbench_json};

fn lane<'a>(doc: &'a Value, id_prefix: &str) -> &'a Value {
    doc["proxies"]
        .as_array()
        .expect("proxies")
        .iter()
        .find(|p| p["id_prefix"] == id_prefix)
        .unwrap_or_else(|| panic!("no lane {id_prefix} in {doc:#}"))
}

/// What every run must show for freshpool-proxy: no 5xx, nothing lost,
/// nothing processed twice.
fn assert_freshpool_clean(doc: &Value, requests: u64) {
    let fp = lane(doc, "freshpool");
    assert_eq!(fp["status_5xx"], 0, "{fp:#}");
    assert_eq!(fp["errors"], 0, "{fp:#}");
    assert_eq!(fp["duplicates"], 0, "{fp:#}");
    assert_eq!(fp["processed"], requests, "{fp:#}");
    assert_eq!(fp["requests"], requests, "{fp:#}");
    let direct = lane(doc, "direct");
    assert_eq!(direct["errors"], 0, "the baseline failed: {direct:#}");
    assert_eq!(direct["added_p50_ms"], Value::Null);
}

#[test]
fn the_freshpool_proxy_answers_no_5xx_beside_the_hyper_util_proxy() {
    let _serial = one_at_a_time();
    let doc = poolbench_json(&["proxy", "--requests", "60", "--duration", "400ms", "--json"]);
    assert_eq!(doc["scenario"], "proxy");
    assert_freshpool_clean(&doc, 60);
    let hu = lane(&doc, "hyper-util");
    assert_eq!(hu["requests"], 60, "{hu:#}");
    assert_eq!(hu["duplicates"], 0, "{hu:#}");
    assert_eq!(hu["ratio_to_hyper_util"], 1.0, "{hu:#}");
    let fp = lane(&doc, "freshpool");
    for figure in [
        "p50_ms",
        "p99_ms",
        "added_p50_ms",
        "added_p99_ms",
        "ratio_to_hyper_util",
    ] {
        assert!(fp[figure].is_f64(), "{figure} missing: {fp:#}");
    }
    assert!(
        fp["requests_per_second"].as_f64().is_some_and(|r| r > 0.0),
        "{fp:#}"
    );
    assert_eq!(fp["throughput_errors"], 0, "{fp:#}");
    eprintln!(
        "5xx: freshpool-proxy {}, hyper-util proxy {}",
        fp["status_5xx"], hu["status_5xx"]
    );
}

/// nginx as a reverse proxy in front of `origin_port`, with upstream
/// keep-alive, as the anchor measured it.
fn reverse_proxy(origin_port: u16) -> Option<Nginx> {
    Nginx::start("proxy", |_, port| {
        format!(
            "    access_log off;
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 100000;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}"
        )
    })
}

#[test]
fn nginx_is_raced_beside_the_freshpool_proxy() {
    let _serial = one_at_a_time();
    let origin_port = free_port();
    let Some(nginx) = reverse_proxy(origin_port) else {
        return skip();
    };
    let doc = poolbench_json(&[
        "proxy",
        "--proxy",
        &nginx.url(),
        "--origin-port",
        &origin_port.to_string(),
        "--requests",
        "150",
        "--duration",
        "400ms",
        "--json",
    ]);
    assert_freshpool_clean(&doc, 150);
    let ng = lane(&doc, "external");
    assert_eq!(ng["requests"], 150, "{ng:#}");
    assert!(
        ng["processed"].as_u64().is_some_and(|p| p > 0),
        "nginx forwarded nothing: {ng:#}"
    );
    assert!(ng["added_p50_ms"].is_f64(), "{ng:#}");
    assert!(ng["ratio_to_hyper_util"].is_f64(), "{ng:#}");
    eprintln!(
        "5xx: freshpool-proxy {}, hyper-util proxy {}, nginx {} ({:?})",
        lane(&doc, "freshpool")["status_5xx"],
        lane(&doc, "hyper-util")["status_5xx"],
        ng["status_5xx"],
        ng["errors_by_kind"]
    );
}
