//! TLS to clients: ALPN `h2` gets HTTP/2 and `http/1.1` gets HTTP/1.1
//! through the proxy, the upstream sees `X-Forwarded-Proto: https`, and a
//! client that fails its handshake does not stop the next one; the
//! binary serves TLS from PEM files and names a bad one.

#![cfg(feature = "rustls")]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use freshpool_proxy::Proxy;
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use support::{
    Running, TestBody, echo_upstream, echoed, echoed_headers, empty, freshpool_client, run_with,
};

/// A self-signed certificate for `localhost`: the proxy's config (no ALPN
/// set, so the serve loop picks `h2` and `http/1.1`) and the certificate a
/// client trusts.
fn self_signed() -> (ServerConfig, CertificateDer<'static>) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let der = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .expect("server config");
    (config, der)
}

/// A freshpool proxy to `upstream`, served over TLS on loopback.
async fn tls_proxy(upstream: &str, tls: ServerConfig) -> Running {
    let proxy = Proxy::builder(upstream.parse().expect("upstream URL"))
        .build(freshpool_client())
        .expect("proxy");
    run_with(|listener, shutdown| freshpool_proxy::serve_tls(listener, tls, proxy, shutdown)).await
}

/// A TLS connection to `addr` that trusts `root` and offers only `alpn`.
async fn connect(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    alpn: &[u8],
) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone()).expect("trust the test certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(
        Duration::from_secs(5),
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake within 5 s")
    .expect("handshake")
}

/// Sends one GET of `path` on `stream` with the protocol ALPN chose, and
/// returns the response with its body read whole.
async fn get(stream: TlsStream<TcpStream>, path: &str) -> (Response<()>, Bytes) {
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(stream);
    let response = async {
        if alpn.as_deref() == Some(b"h2") {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("HTTP/2 handshake");
            tokio::spawn(conn);
            let req: Request<TestBody> = Request::get(format!("https://localhost{path}"))
                .body(empty())
                .expect("request");
            sender.send_request(req).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("HTTP/1.1 handshake");
            tokio::spawn(conn);
            let req: Request<TestBody> = Request::get(path)
                .header("host", "localhost")
                .body(empty())
                .expect("request");
            sender.send_request(req).await
        }
    };
    let response = tokio::time::timeout(Duration::from_secs(5), response)
        .await
        .expect("answered within 5 s")
        .expect("answered");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("body within 5 s")
        .expect("body")
        .to_bytes();
    (Response::from_parts(parts, ()), body)
}

#[tokio::test]
async fn alpn_h2_gets_http2_and_alpn_http11_gets_http11_from_the_origin() {
    let origin = freshpool_origin::Origin::builder()
        .body_size(64)
        .start()
        .await
        .expect("origin");
    let (tls, root) = self_signed();
    let proxy = tls_proxy(&origin.base_url(), tls).await;

    let h2 = connect(proxy.addr, &root, b"h2").await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (response, body) = get(h2, "/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    assert!(
        response.headers().contains_key("x-connection-id"),
        "the answer came from the origin: {:?}",
        response.headers()
    );
    assert_eq!(body.len(), 64);

    let h1 = connect(proxy.addr, &root, b"http/1.1").await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (response, body) = get(h1, "/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_11);
    assert!(response.headers().contains_key("x-connection-id"));
    assert_eq!(body.len(), 64);

    assert_eq!(origin.stats().requests_processed, 2, "{:?}", origin.stats());
    proxy.stop().await;
}

#[tokio::test]
async fn the_upstream_sees_x_forwarded_proto_https_over_both_protocols() {
    let upstream = echo_upstream().await;
    let (tls, root) = self_signed();
    let proxy = tls_proxy(&format!("http://{upstream}"), tls).await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let (response, body) = get(connect(proxy.addr, &root, alpn).await, "/where").await;
        assert_eq!(response.status(), 200);
        let body = String::from_utf8_lossy(&body);
        let seen = echoed_headers(&body);
        assert_eq!(echoed(&seen, "x-forwarded-proto"), Some("https"), "{body}");
        assert_eq!(
            echoed(&seen, "x-forwarded-for"),
            Some("127.0.0.1"),
            "{body}"
        );
        assert_eq!(
            echoed(&seen, "x-forwarded-host"),
            Some("localhost"),
            "{body}"
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn a_failed_handshake_closes_that_connection_and_the_next_client_is_served() {
    let upstream = echo_upstream().await;
    let (tls, root) = self_signed();
    let proxy = tls_proxy(&format!("http://{upstream}"), tls).await;

    // A client still silent in its handshake does not hold up the others.
    let silent = TcpStream::connect(proxy.addr).await.expect("connect");
    for _ in 0..3 {
        let mut plain = TcpStream::connect(proxy.addr).await.expect("connect");
        plain
            .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer))
            .await
            .expect("the proxy closed the plain connection within 5 s");
        // A TLS alert at most, then the close (a FIN, or an RST if our
        // unread bytes were still queued): never an HTTP answer.
        assert!(
            !answer.starts_with(b"HTTP/"),
            "answered plain HTTP: {read:?} {answer:?}"
        );

        let (response, body) = get(connect(proxy.addr, &root, b"h2").await, "/next").await;
        assert_eq!(response.status(), 200);
        assert!(String::from_utf8_lossy(&body).starts_with("GET /next\n"));
    }
    drop(silent);
    proxy.stop().await;
}

/// The binary, whose TLS is the `bin-tls` feature.
#[cfg(feature = "bin-tls")]
mod binary {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    use super::*;

    /// PEM files in a fresh directory, removed on drop.
    struct PemFiles {
        dir: PathBuf,
    }

    impl PemFiles {
        fn new(test: &str) -> PemFiles {
            let dir =
                std::env::temp_dir().join(format!("freshpool-proxy-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            PemFiles { dir }
        }

        fn write(&self, name: &str, text: &str) -> String {
            let path = self.dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path.to_str().expect("UTF-8 temp path").to_owned()
        }
    }

    impl Drop for PemFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A self-signed certificate for `localhost` as PEM: certificate, key, DER.
    fn self_signed_pem() -> (String, String, CertificateDer<'static>) {
        let generated =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        (
            generated.cert.pem(),
            generated.key_pair.serialize_pem(),
            generated.cert.der().clone(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_binary_serves_tls_from_pem_files_and_drains_on_sigterm() {
        let origin = freshpool_origin::Origin::builder()
            .start()
            .await
            .expect("origin");
        let files = PemFiles::new("serves");
        let (cert, key, root) = self_signed_pem();
        let mut child = Command::new(env!("CARGO_BIN_EXE_freshpool-proxy"))
            .args(["--listen", "127.0.0.1:0", "--upstream", &origin.base_url()])
            .args(["--tls-cert", &files.write("cert.pem", &cert)])
            .args(["--tls-key", &files.write("key.pem", &key)])
            .args(["--drain", "2s"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("freshpool-proxy starts");
        let stderr = child.stderr.take().expect("stderr");
        // Kept open to the end: the binary reports its drain on stderr.
        let mut lines = BufReader::new(stderr).lines();
        let first = lines.next().expect("a line").expect("text");
        assert!(first.contains("TLS"), "{first}");
        let addr = first
            .split_whitespace()
            .find_map(|w| w.trim_end_matches(',').parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));

        for (alpn, version) in [
            (&b"h2"[..], Version::HTTP_2),
            (b"http/1.1", Version::HTTP_11),
        ] {
            let (response, _) = get(connect(addr, &root, alpn).await, "/").await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.version(), version);
        }

        let pid = libc::pid_t::try_from(child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid, with a valid signal number.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("wait task")
            .expect("exit status");
        assert!(status.success(), "{status}");
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(
            rest.iter().any(|l| l.contains("draining")),
            "stderr said: {rest:?}"
        );
        assert_eq!(origin.stats().requests_processed, 2);
        origin.shutdown().await;
    }

    #[test]
    fn the_binary_names_a_bad_tls_file_and_the_cause() {
        let files = PemFiles::new("refuses");
        let (cert, key, _) = self_signed_pem();
        let cert = files.write("cert.pem", &cert);
        let key = files.write("key.pem", &key);
        let missing = files
            .dir
            .join("missing.pem")
            .to_str()
            .expect("path")
            .to_owned();
        let start = |cert: &str, key: &str| {
            let output = Command::new(env!("CARGO_BIN_EXE_freshpool-proxy"))
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    "http://127.0.0.1:1",
                ])
                .args(["--tls-cert", cert, "--tls-key", key])
                .output()
                .expect("runs");
            assert_eq!(output.status.code(), Some(1), "{output:?}");
            String::from_utf8_lossy(&output.stderr).into_owned()
        };

        let said = start(&missing, &key);
        assert!(
            said.contains(&format!("--tls-cert {missing}: No such file")),
            "{said}"
        );
        let said = start(&key, &key);
        assert!(
            said.contains(&format!("--tls-cert {key}: no CERTIFICATE")),
            "{said}"
        );
        let said = start(&cert, &cert);
        assert!(
            said.contains(&format!("--tls-key {cert}: no PRIVATE KEY")),
            "{said}"
        );
        let garbled = files.write(
            "garbled.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let said = start(&garbled, &key);
        assert!(
            said.contains(&format!("--tls-cert {garbled}: not valid PEM")),
            "{said}"
        );
        let (_, other_key, _) = self_signed_pem();
        let other_key = files.write("other-key.pem", &other_key);
        let said = start(&cert, &other_key);
        assert!(
            said.contains(&format!("--tls-cert {cert} with --tls-key {other_key}: ")),
            "a key that is not the certificate's: {said}"
        );

        let output = Command::new(env!("CARGO_BIN_EXE_freshpool-proxy"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:1",
            ])
            .args(["--tls-cert", &cert])
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("--tls-cert needs --tls-key"));
    }
}
