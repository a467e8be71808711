//! The `freshpool-origin` binary: help, argument errors, and a real run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_freshpool-origin");

#[test]
fn help_lists_the_flags() {
    let output = Command::new(BIN)
        .arg("--help")
        .output()
        .expect("run the binary");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--idle",
        "--close",
        "--keep-alive",
        "--max-requests",
        "--no-h2c",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn bad_arguments_fail_with_a_message_naming_them() {
    for (args, needle) in [
        (&["--close", "slam"][..], "slam"),
        (&["--idle", "200"], "needs a unit"),
        (&["--bogus"], "--bogus"),
    ] {
        let output = Command::new(BIN)
            .args(args)
            .output()
            .expect("run the binary");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn serves_on_the_printed_address() {
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--idle",
            "5s",
            "--body-size",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the binary");
    let mut first_line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .expect("the banner");
    let result = (|| -> std::io::Result<String> {
        let addr = first_line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| std::io::Error::other(format!("no address in {first_line:?}")))?;
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })();
    child.kill().expect("stop the binary");
    child.wait().expect("reap the binary");
    let response = result.expect("a response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nabc"), "{response}");
}
