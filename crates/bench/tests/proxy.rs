//! `poolbench proxy`: the race through reverse proxies, with the figures
//! it must reach for freshpool-proxy, and nginx from the distribution's
//! packages (`.ci/run` installs it) raced beside it through `--proxy`.
//!
//! Without an `nginx` binary the nginx test says so and passes: it cannot
//! run here, and CI (which installs nginx) runs it.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
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
/// keep-alive, as the anchor measured it; stopped on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Nginx {
    fn start(origin_port: u16) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())?;
        let dir =
            std::env::temp_dir().join(format!("poolbench-nginx-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let d = dir.display();
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    access_log off;
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
    }}
}}
"
        );
        std::fs::write(dir.join("nginx.conf"), config).expect("config written");
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", nginx.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen; its error log:\n{}",
                std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Ours, by its own handle; a dead child is fine.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn nginx_is_raced_beside_the_freshpool_proxy() {
    let _serial = one_at_a_time();
    let origin_port = free_port();
    let Some(nginx) = Nginx::start(origin_port) else {
        eprintln!("skipped: no nginx binary (apt-get install nginx-light; .ci/run installs it)");
        return;
    };
    let doc = poolbench_json(&[
        "proxy",
        "--proxy",
        &format!("http://127.0.0.1:{}/", nginx.port),
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
