//! `poolbench` against a real server that is not ours: nginx from the
//! distribution's packages (`.ci/run` installs it), on loopback, with
//! `keepalive_timeout 200ms`. nginx's access log, which names each
//! request's `x-request-id`, shows what it processed.
//!
//! Without an `nginx` binary these tests say so and pass: they cannot run
//! here, and CI (which installs nginx) runs them.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{client, one_at_a_time, poolbench_json, within};

/// nginx on 127.0.0.1, stopped (and its files removed) on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// Starts nginx, or `None` when it is not installed.
    fn start(name: &str) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())?;
        let dir =
            std::env::temp_dir().join(format!("poolbench-nginx-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // A free port: bind, learn it, release it for nginx.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
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
    log_format ids '$http_x_request_id $status';
    keepalive_timeout 200ms;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        access_log {d}/access.log ids;
        location / {{ return 200 \"ok\\n\"; }}
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
        nginx.wait_listening();
        Some(nginx)
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen; its error log:\n{}",
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Processings per `x-request-id`, from the access log.
    fn processed(&self) -> HashMap<String, u64> {
        processed(&self.dir.join("access.log"))
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

fn skip() {
    eprintln!("skipped: no nginx binary (apt-get install nginx-light; .ci/run installs it)");
}

#[test]
fn race_against_nginx_freshpool_fails_and_duplicates_nothing() {
    let _serial = one_at_a_time();
    let Some(nginx) = Nginx::start("race") else {
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
    let processed = nginx.processed();
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
    let Some(nginx) = Nginx::start("discover") else {
        return skip();
    };
    let doc = poolbench_json(&["discover", "--target", &nginx.url(), "--json"]);
    let found = doc["idle_timeout_ms"]
        .as_f64()
        .expect("a timeout was found");
    assert!(within(found, 200.0, 0.10), "found {found} ms: {doc:#}");
    assert_eq!(doc["reuse_check_ok"], true, "{doc:#}");
}
