//! The fast path against `httparse`: whenever it reads a head, `httparse`
//! (hyper's parser, default settings) reads the same one; whatever is out
//! of the ordinary goes to `httparse`.

use freshpool_testkit::XorShift;

use super::*;

/// What `httparse` makes of a complete head: its length, version (`true`
/// for HTTP/1.0), status or method, and the framing headers in order.
type Parsed<T> = (usize, bool, T, Vec<(Field, Vec<u8>)>);

fn framing(headers: &[httparse::Header<'_>]) -> Vec<(Field, Vec<u8>)> {
    headers
        .iter()
        .filter_map(|h| Some((Field::of(h.name.as_bytes())?, h.value.to_vec())))
        .collect()
}

fn httparse_response(bytes: &[u8]) -> Option<Parsed<u16>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = response.parse(bytes) else {
        return None;
    };
    let code = response.code?;
    Some((len, response.version? == 0, code, framing(response.headers)))
}

fn httparse_request(bytes: &[u8]) -> Option<Parsed<String>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = request.parse(bytes) else {
        return None;
    };
    let method = request.method?.to_owned();
    Some((len, request.version? == 0, method, framing(request.headers)))
}

fn owned(fields: &Fields<'_>) -> Vec<(Field, Vec<u8>)> {
    fields.iter().map(|(f, v)| (f, v.to_vec())).collect()
}

/// Asserts that the fast path, if it reads `bytes` as a response head,
/// agrees with `httparse`; returns whether it read it.
fn check_response(bytes: &[u8]) -> bool {
    let mut fast_fields = Fields::new();
    let Some(fast) = response(bytes, &mut fast_fields) else {
        return false;
    };
    let esc = bytes.escape_ascii();
    let Some((len, http10, code, fields)) = httparse_response(bytes) else {
        panic!("fast path read a head httparse does not: {esc}");
    };
    assert_eq!(fast.len, len, "head length: {esc}");
    assert_eq!(fast.http10, http10, "version: {esc}");
    assert_eq!(fast.status, code, "status: {esc}");
    assert_eq!(owned(&fast_fields), fields, "framing headers: {esc}");
    true
}

/// As [`check_response`], for request heads.
fn check_request(bytes: &[u8]) -> bool {
    let mut fast_fields = Fields::new();
    let Some(fast) = request(bytes, &mut fast_fields) else {
        return false;
    };
    let esc = bytes.escape_ascii();
    let Some((len, http10, method, fields)) = httparse_request(bytes) else {
        panic!("fast path read a head httparse does not: {esc}");
    };
    let expected = match method.as_str() {
        "HEAD" => Method::Head,
        "CONNECT" => Method::Connect,
        _ => Method::Other,
    };
    assert_eq!(fast.len, len, "head length: {esc}");
    assert_eq!(fast.http10, http10, "version: {esc}");
    assert_eq!(fast.method, expected, "method: {esc}");
    assert_eq!(owned(&fast_fields), fields, "framing headers: {esc}");
    true
}

const RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-connection-id: 1\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 03:00:00 GMT\r\n\
      Content-Type: text/html\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\
      Keep-Alive: timeout=5, max=100\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.0 204 No Content\r\nCONNECTION: Keep-Alive\r\n\r\n",
    b"HTTP/1.1 304\r\nETag: \"x\"\r\n\r\n",
    b"HTTP/1.1 200 \r\ncontent-length:5\r\n\r\n",
    b"HTTP/1.1 404 Not \t Found \r\ncontent-length: \t 0 \t \r\nx-empty:\r\nx-blank:  \t\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
    b"HTTP/1.1 042 Odd\r\n\r\n",
    b"HTTP/1.1 999 Odd\r\nContent-Length: 5, 5\r\ncontent-length: 5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nx!#$%&'*+-.^_`|~09AZaz: ok\r\nconnection: close\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nlong: 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ncontent-lengths: 1\r\nconnections: x\r\nkeep-alives: y\r\n\r\n",
];

const REQUESTS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n",
    b"POST /upload?x=1 HTTP/1.1\r\nhost: a\r\ncontent-length: 11\r\n\r\nhello=world",
    b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HEAD / HTTP/1.1\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n",
    b"GET http://a/b HTTP/1.0\r\nconnection: keep-alive\r\n\r\n",
    b"M-SEARCH * HTTP/1.1\r\nConnection: close\r\n\r\n",
];

#[test]
fn ordinary_heads_take_the_fast_path() {
    for bytes in RESPONSES {
        assert!(check_response(bytes), "{}", bytes.escape_ascii());
    }
    for bytes in REQUESTS {
        assert!(check_request(bytes), "{}", bytes.escape_ascii());
    }
    let mut fields = Fields::new();
    response(RESPONSES[1], &mut fields).expect("fast path");
    assert_eq!(
        fields.iter().collect::<Vec<_>>(),
        [
            (Field::TransferEncoding, &b"chunked"[..]),
            (Field::Connection, b"keep-alive"),
            (Field::KeepAlive, b"timeout=5, max=100"),
        ]
    );
}

#[test]
fn a_hundred_headers_but_not_more() {
    let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        head.extend_from_slice(format!("x-{i}: {i}\r\n").as_bytes());
    }
    let mut more = head.clone();
    head.extend_from_slice(b"\r\n");
    assert!(check_response(&head));
    // httparse fails the 101st line (`TooManyHeaders`), so the fast path
    // leaves it to httparse.
    more.extend_from_slice(b"x-last: 1\r\n\r\n");
    assert!(response(&more, &mut Fields::new()).is_none());
    assert!(httparse_response(&more).is_none());
}

#[test]
fn unusual_heads_go_to_httparse() {
    let many_fields = format!("HTTP/1.1 200 OK\r\n{}\r\n", "connection: x\r\n".repeat(9));
    let unusual: &[&[u8]] = &[
        // Empty lines before the status line, which httparse skips.
        b"\r\nHTTP/1.1 200 OK\r\n\r\n",
        b"\nHTTP/1.1 200 OK\r\n\r\n",
        // Bare LF line ends, which httparse accepts.
        b"HTTP/1.1 200 OK\ncontent-length: 0\n\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\n",
        b"HTTP/1.1 200\n\r\n",
        // Obsolete line folding, a space before the colon, no name.
        b"HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n x: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n: a\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx(y): a\r\n\r\n",
        // Values and reasons beyond visible ASCII.
        b"HTTP/1.1 200 OK\r\nx: caf\xc3\xa9\r\n\r\n",
        b"HTTP/1.1 200 \xff\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx: a\x7fb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nx: a\rb\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\rx",
        // Start lines httparse reads differently or not at all.
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200OK\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        many_fields.as_bytes(),
    ];
    for bytes in unusual {
        assert!(
            response(bytes, &mut Fields::new()).is_none(),
            "{}",
            bytes.escape_ascii()
        );
    }
    let requests: &[&[u8]] = &[
        b"\r\nGET / HTTP/1.1\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\n\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.2\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b" / HTTP/1.1\r\n\r\n",
    ];
    for bytes in requests {
        assert!(
            request(bytes, &mut Fields::new()).is_none(),
            "{}",
            bytes.escape_ascii()
        );
    }
}

#[test]
fn incomplete_heads_go_to_httparse() {
    for bytes in RESPONSES {
        let len = httparse_response(bytes).expect("a complete head").0;
        for end in 0..len {
            assert!(
                response(&bytes[..end], &mut Fields::new()).is_none(),
                "{end}"
            );
        }
    }
    for bytes in REQUESTS {
        let len = httparse_request(bytes).expect("a complete head").0;
        for end in 0..len {
            assert!(
                request(&bytes[..end], &mut Fields::new()).is_none(),
                "{end}"
            );
        }
    }
}

#[test]
fn text_end_finds_the_first_byte_outside_text() {
    let mut line = b"0123456789abcdefghij\tklmnopqrstuvwxyz ~".to_vec();
    assert_eq!(text_end(&line, 0), None);
    for at in 0..line.len() {
        for odd in [0x00, 0x08, b'\r', b'\n', 0x1f, 0x7f, 0x80, 0xff] {
            let keep = line[at];
            line[at] = odd;
            // Every start before the odd byte finds it.
            for start in 0..=at {
                assert_eq!(text_end(&line, start), Some(at), "{odd:#x} at {at}");
            }
            line[at] = keep;
        }
    }
}

#[test]
fn token_len_and_visible_end_stop_at_the_first_odd_byte() {
    // Every byte value at every position of a name longer than two words,
    // including bytes whose carries spill into the next byte.
    let name = b"X-Forwarded-For_2.Trace-Id";
    for at in 0..name.len() {
        for odd in 0..=255u8 {
            let mut bytes = name.to_vec();
            bytes[at] = odd;
            bytes.extend_from_slice(b": v\r\n");
            let expected = bytes.iter().position(|&b| !is_token(b));
            assert_eq!(Some(token_len(&bytes)), expected, "{odd:#x} at {at}");
            let expected = bytes.iter().position(|b| !(0x21..0x7f).contains(b));
            assert_eq!(visible_end(&bytes, 0), expected, "{odd:#x} at {at}");
        }
    }
    assert_eq!(token_len(b"abcdefghijklmnopq"), 17);
    assert_eq!(visible_end(b"abcdefghijklmnopq", 0), None);
}

/// Bytes that sit on the edges of the fast path's subset.
const EDGES: &[u8] = b"\r\n\t :,\x00\x1f\x7f\x80\xff\"(){}aZ09-_";

fn mutate(rng: &mut XorShift, bytes: &mut Vec<u8>) {
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(8) {
            0..=2 if at < bytes.len() => bytes[at] = EDGES[rng.below(EDGES.len())],
            0..=5 => bytes.insert(at, EDGES[rng.below(EDGES.len())]),
            6 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
}

#[test]
fn mutated_heads_agree_with_httparse() {
    // A fixed seed: the same cases on every run.
    let mut rng = XorShift::from_state(0x9e37_79b9_7f4a_7c15);
    let (mut fast, mut total) = (0, 0);
    for _ in 0..200_000 {
        let responses = rng.below(2) == 0;
        let seeds = if responses { RESPONSES } else { REQUESTS };
        let mut bytes = seeds[rng.below(seeds.len())].to_vec();
        mutate(&mut rng, &mut bytes);
        let read = if responses {
            check_response(&bytes)
        } else {
            check_request(&bytes)
        };
        fast += u32::from(read);
        total += 1;
    }
    // Both sides of the check ran: mutants the fast path read, and
    // mutants it left to httparse.
    assert!(
        fast > total / 10 && fast < total * 9 / 10,
        "{fast} of {total}"
    );
}
