use super::*;

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

fn ka(timeout: Option<Duration>, max: Option<u32>) -> Option<KeepAlive> {
    Some(KeepAlive { timeout, max })
}

#[test]
fn real_servers() {
    // Apache httpd defaults, first and a later response.
    assert_eq!(
        KeepAlive::parse(b"timeout=5, max=100"),
        ka(secs(5), Some(100))
    );
    assert_eq!(
        KeepAlive::parse(b"timeout=5, max=98"),
        ka(secs(5), Some(98))
    );
    // Apache with `KeepAliveTimeout 15`.
    assert_eq!(
        KeepAlive::parse(b"timeout=15, max=100"),
        ka(secs(15), Some(100))
    );
    // Node.js http server defaults (keepAliveTimeout 5000 ms).
    assert_eq!(KeepAlive::parse(b"timeout=5"), ka(secs(5), None));
    // Node.js with maxRequestsPerSocket = 1000.
    assert_eq!(
        KeepAlive::parse(b"timeout=5, max=1000"),
        ka(secs(5), Some(1000))
    );
    // Other whole-second values, e.g. a proxy advertising 120 s.
    assert_eq!(KeepAlive::parse(b"timeout=120"), ka(secs(120), None));
    // Node and Apache configured below one second send `timeout=0`.
    assert_eq!(
        KeepAlive::parse(b"timeout=0"),
        ka(Some(KeepAlive::MIN_TIMEOUT), None)
    );
}

#[test]
fn case_whitespace_and_quotes() {
    assert_eq!(KeepAlive::parse(b"Timeout=5, MAX=7"), ka(secs(5), Some(7)));
    assert_eq!(
        KeepAlive::parse(b"  timeout = 5 ,\tmax\t=\t7  "),
        ka(secs(5), Some(7))
    );
    assert_eq!(
        KeepAlive::parse(b"timeout=\"5\", max=\"7\""),
        ka(secs(5), Some(7))
    );
    assert_eq!(KeepAlive::parse(b"timeout=\"\\5\""), ka(secs(5), None));
    assert_eq!(KeepAlive::parse(b"timeout=5;max=7"), ka(secs(5), Some(7)));
    assert_eq!(KeepAlive::parse(b",,timeout=5,,"), ka(secs(5), None));
}

#[test]
fn unknown_parameters_are_ignored() {
    assert_eq!(
        KeepAlive::parse(b"foo=bar, timeout=5, baz"),
        ka(secs(5), None)
    );
    // A separator inside a quoted unknown value does not split.
    assert_eq!(
        KeepAlive::parse(b"x=\"a, timeout=1\", timeout=9"),
        ka(secs(9), None)
    );
    assert_eq!(
        KeepAlive::parse(b"x=\"a\\\", timeout=1\", max=3"),
        ka(None, Some(3))
    );
    assert_eq!(KeepAlive::parse(b"foo=bar"), None);
    assert_eq!(KeepAlive::parse(b"timeout"), None);
    assert_eq!(KeepAlive::parse(b""), None);
}

#[test]
fn duplicates_take_the_smallest() {
    assert_eq!(KeepAlive::parse(b"timeout=5, timeout=3"), ka(secs(3), None));
    assert_eq!(KeepAlive::parse(b"timeout=3, timeout=5"), ka(secs(3), None));
    assert_eq!(KeepAlive::parse(b"max=9, max=4, max=6"), ka(None, Some(4)));
    // An invalid duplicate does not erase a valid one.
    assert_eq!(KeepAlive::parse(b"timeout=5, timeout=x"), ka(secs(5), None));
}

#[test]
fn malformed_values_are_rejected() {
    for bad in [
        &b"timeout=-5"[..],
        b"timeout=+5",
        b"timeout=5.5",
        b"timeout=5s",
        b"timeout=",
        b"timeout=\"\"",
        b"timeout=\"5",
        b"timeout=5\"",
        b"timeout=\"5\\\"",
        b"timeout=0x10",
        b"timeout=5 5",
        b"timeout=18446744073709551616",
        b"timeout=99999999999999999999999",
        b"timeout=\xff",
        b"\xff\xfe=\x00",
    ] {
        assert_eq!(
            KeepAlive::parse(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(KeepAlive::parse(b"max=4294967296"), None);
    assert_eq!(KeepAlive::parse(b"max=-1, timeout=5"), ka(secs(5), None));
}

#[test]
fn timeouts_are_clamped() {
    assert_eq!(KeepAlive::parse(b"timeout=3600"), ka(secs(3600), None));
    assert_eq!(
        KeepAlive::parse(b"timeout=3601"),
        ka(Some(KeepAlive::MAX_TIMEOUT), None)
    );
    // Fits in u64 but not in a Duration-friendly range.
    assert_eq!(
        KeepAlive::parse(b"timeout=18446744073709551615"),
        ka(Some(KeepAlive::MAX_TIMEOUT), None)
    );
    assert_eq!(
        KeepAlive::parse(b"max=4294967295"),
        ka(None, Some(u32::MAX))
    );
}

#[test]
fn display_round_trips() {
    for value in [
        &b"timeout=5, max=100"[..],
        b"TIMEOUT = \"7\"",
        b"max=0",
        b"timeout=99999",
    ] {
        let parsed = KeepAlive::parse(value).unwrap();
        assert_eq!(
            KeepAlive::parse(parsed.to_string().as_bytes()),
            Some(parsed)
        );
    }
    assert_eq!(KeepAlive::default().to_string(), "");
}

#[test]
fn max_zero_forbids_reuse() {
    assert!(
        !KeepAlive::parse(b"timeout=5, max=0")
            .unwrap()
            .permits_reuse()
    );
    assert!(
        KeepAlive::parse(b"timeout=5, max=1")
            .unwrap()
            .permits_reuse()
    );
    assert!(KeepAlive::parse(b"timeout=5").unwrap().permits_reuse());
}

type Header<'a> = (&'a [u8], &'a [u8]);

fn reuse(http10: bool, headers: &[Header<'_>]) -> Reuse {
    response_reuse(http10, headers.iter().copied())
}

#[test]
fn http11_is_persistent_by_default() {
    assert_eq!(
        reuse(false, &[]),
        Reuse {
            reusable: true,
            keep_alive: None
        }
    );
    let r = reuse(false, &[(b"Keep-Alive", b"timeout=5, max=100")]);
    assert!(r.reusable);
    assert_eq!(r.keep_alive, ka(secs(5), Some(100)));
}

#[test]
fn connection_close_forbids_reuse() {
    assert!(!reuse(false, &[(b"Connection", b"close")]).reusable);
    assert!(!reuse(false, &[(b"CONNECTION", b" Close ")]).reusable);
    assert!(!reuse(false, &[(b"connection", b"keep-alive, close")]).reusable);
    // Several Connection headers: any close wins.
    assert!(
        !reuse(
            false,
            &[
                (b"connection", b"keep-alive"),
                (b"Connection", b"upgrade, close")
            ]
        )
        .reusable
    );
    // The hint is still reported so that the caller can learn from it.
    let r = reuse(
        false,
        &[(b"Connection", b"close"), (b"Keep-Alive", b"timeout=5")],
    );
    assert_eq!(r.keep_alive, ka(secs(5), None));
    // "closed" is not "close".
    assert!(reuse(false, &[(b"Connection", b"closed")]).reusable);
}

#[test]
fn iis_responses() {
    // IIS sends no Keep-Alive header to HTTP/1.1 clients: reusable, with
    // the timeout left to learning.
    let r = reuse(
        false,
        &[
            (b"Server", b"Microsoft-IIS/10.0"),
            (b"Content-Length", b"0"),
        ],
    );
    assert_eq!(
        r,
        Reuse {
            reusable: true,
            keep_alive: None
        }
    );
    // To an HTTP/1.0 client that asked for it, it answers
    // `Connection: Keep-Alive`, without parameters.
    let r = reuse(
        true,
        &[
            (b"Server", b"Microsoft-IIS/6.0"),
            (b"Connection", b"Keep-Alive"),
        ],
    );
    assert_eq!(
        r,
        Reuse {
            reusable: true,
            keep_alive: None
        }
    );
}

#[test]
fn http10_needs_keep_alive() {
    assert!(!reuse(true, &[]).reusable);
    assert!(!reuse(true, &[(b"Keep-Alive", b"timeout=5")]).reusable);
    assert!(reuse(true, &[(b"Connection", b"Keep-Alive")]).reusable);
    assert!(reuse(true, &[(b"connection", b"foo, keep-alive")]).reusable);
    assert!(!reuse(true, &[(b"Connection", b"keep-alive, close")]).reusable);
}

#[test]
fn keep_alive_max_zero_and_merging() {
    assert!(!reuse(false, &[(b"Keep-Alive", b"timeout=5, max=0")]).reusable);
    let r = reuse(
        false,
        &[
            (b"Keep-Alive", b"timeout=10, max=3"),
            (b"keep-alive", b"timeout=4, junk"),
        ],
    );
    assert!(r.reusable);
    assert_eq!(r.keep_alive, ka(secs(4), Some(3)));
    // A garbage Keep-Alive header is ignored, not fatal.
    let r = reuse(false, &[(b"Keep-Alive", b"timeout=never")]);
    assert_eq!(
        r,
        Reuse {
            reusable: true,
            keep_alive: None
        }
    );
}
