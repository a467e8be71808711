//! nginx from the distribution's packages, on loopback, for the tests that
//! race `poolbench` against a real server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx on 127.0.0.1, stopped (and its files removed) on drop.
pub(crate) struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// A free loopback port: bind, learn it, release it for someone else.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Nginx {
    /// Starts nginx, or `None` when it is not installed. `site(dir, port)`
    /// gives what the `http` block holds besides nginx's temp paths: the
    /// `server` listening on `127.0.0.1:port`, its logs under `dir`.
    pub(crate) fn start(name: &str, site: impl FnOnce(&Path, u16) -> String) -> Option<Nginx> {
        let binary = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())?;
        let dir =
            std::env::temp_dir().join(format!("poolbench-nginx-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let port = free_port();
        let site = site(&dir, port);
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
{site}
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

    /// `http://127.0.0.1:<port>/`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Where its configuration and logs are.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
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

/// Says why an nginx test did nothing.
pub(crate) fn skip() {
    eprintln!("skipped: no nginx binary (apt-get install nginx-light; .ci/run installs it)");
}
