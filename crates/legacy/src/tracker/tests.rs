//! Framing cases, each fed whole, byte by byte and in odd-sized pieces.

use super::*;

const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n";
const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nhost: example.com\r\n\r\n";
const CONNECT: &[u8] = b"CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n";

/// How a byte stream is cut into `on_read` / `on_write` calls.
#[derive(Debug, Clone, Copy)]
enum Split {
    Whole,
    Bytes,
    Pieces(usize),
}

const SPLITS: [Split; 4] = [
    Split::Whole,
    Split::Bytes,
    Split::Pieces(3),
    Split::Pieces(17),
];

fn pieces(bytes: &[u8], split: Split) -> Vec<&[u8]> {
    match split {
        Split::Whole => vec![bytes],
        Split::Bytes => bytes.chunks(1).collect(),
        Split::Pieces(n) => bytes.chunks(n).collect(),
    }
}

fn write(tracker: &mut Tracker, bytes: &[u8], split: Split) {
    for piece in pieces(bytes, split) {
        tracker.on_write(piece);
    }
}

/// Feeds `bytes` as reads; returns the absolute offset where each message
/// ended and whether a final head was reported.
fn read(tracker: &mut Tracker, bytes: &[u8], split: Split) -> (Vec<usize>, bool) {
    let (mut ends, mut head, mut offset) = (Vec::new(), false, 0);
    for piece in pieces(bytes, split) {
        let outcome = tracker.on_read(piece);
        head |= outcome.response_head;
        ends.extend(outcome.message_end.map(|end| offset + end));
        offset += piece.len();
    }
    (ends, head)
}

/// One request and its response; asserts where the response ended and
/// whether the connection is idle afterwards, for every split.
fn exchange(request: &[u8], response: &[u8], end: Option<usize>, idle_after: bool) {
    for split in SPLITS {
        let mut tracker = Tracker::new();
        assert!(tracker.is_idle());
        write(&mut tracker, request, split);
        assert!(
            !tracker.is_idle(),
            "{split:?}: idle with a request outstanding"
        );
        let (ends, _) = read(&mut tracker, response, split);
        assert_eq!(
            ends,
            end.into_iter().collect::<Vec<_>>(),
            "{split:?}: message end"
        );
        assert_eq!(
            tracker.is_idle(),
            idle_after,
            "{split:?}: idle after ({tracker:?})"
        );
    }
}

fn stopped(request: &[u8], response: &[u8], reason: StopReason) {
    for split in SPLITS {
        let mut tracker = Tracker::new();
        write(&mut tracker, request, split);
        read(&mut tracker, response, split);
        assert_eq!(tracker.stop_reason(), Some(reason), "{split:?}");
        assert!(!tracker.is_idle());
    }
}

#[test]
fn content_length() {
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
    exchange(GET, response, Some(response.len()), true);
}

#[test]
fn content_length_zero_and_empty_reads() {
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    exchange(GET, response, Some(response.len()), true);
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    assert_eq!(tracker.on_read(b""), ReadOutcome::default());
    assert!(tracker.is_tracking() && !tracker.is_idle());
}

#[test]
fn largest_content_length_and_big_reads() {
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    // u64::MAX - 2 is the largest length hyper accepts.
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551613\r\n\r\n";
    assert_eq!(tracker.on_read(head).message_end, None);
    let block = vec![b'x'; 1 << 20];
    for _ in 0..64 {
        assert_eq!(tracker.on_read(&block), ReadOutcome::default());
    }
    assert!(tracker.is_tracking() && !tracker.is_idle());

    // A large known-length body in one read ends exactly where it should.
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    let mut response = b"HTTP/1.1 200 OK\r\ncontent-length: 1048576\r\n\r\n".to_vec();
    let head_len = response.len();
    response.extend_from_slice(&block);
    let outcome = tracker.on_read(&response);
    assert_eq!(outcome.message_end, Some(head_len + block.len()));
    assert!(tracker.is_idle());
}

#[test]
fn body_incomplete_is_not_idle() {
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhello";
    exchange(GET, response, None, false);
}

#[test]
fn head_response_has_no_body() {
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n";
    exchange(HEAD, response, Some(response.len()), true);
    // An invalid Content-Length does not matter either: hyper never reads it.
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n";
    exchange(HEAD, response, Some(response.len()), true);
}

#[test]
fn no_content_and_not_modified_have_no_body() {
    for status in ["204 No Content", "304 Not Modified"] {
        let response = format!("HTTP/1.1 {status}\r\ncontent-length: 10\r\n\r\n");
        exchange(GET, response.as_bytes(), Some(response.len()), true);
    }
}

#[test]
fn continue_then_final_response() {
    let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n\
                     HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=5\r\n\r\nok";
    exchange(GET, response, Some(response.len()), true);
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    let outcome = tracker.on_read(b"HTTP/1.1 100 Continue\r\nkeep-alive: timeout=1\r\n\r\n");
    assert!(!outcome.response_head, "1xx is not the final head");
    assert!(tracker.response_head().is_none());
    assert!(!tracker.is_idle());
    let outcome = tracker.on_read(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(outcome.response_head);
    assert_eq!(
        tracker.response_head().map(|h| h.keep_alive_header),
        Some(None)
    );
}

#[test]
fn upgrade_and_connect_stop_tracking() {
    let switching = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n\x81\x00";
    let upgrade_request = b"GET / HTTP/1.1\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";
    stopped(upgrade_request, switching, StopReason::Upgrade);
    stopped(GET, switching, StopReason::Upgrade);
    stopped(
        CONNECT,
        b"HTTP/1.1 200 OK\r\n\r\ntunnel bytes",
        StopReason::Connect,
    );
    // A refused CONNECT is an ordinary response.
    let refused = b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n";
    exchange(CONNECT, refused, Some(refused.len()), true);
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n\
                     5;name=value;x\r\nhello\r\n\
                     A \t ;ext\r\n0123456789\r\n\
                     0\r\nx-checksum: abc\r\nx-more: 1\r\n\r\n";
    exchange(GET, response, Some(response.len()), true);
    let plain = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    exchange(GET, plain, Some(plain.len()), true);
}

#[test]
fn chunked_errors_stop_tracking() {
    let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    for body in [
        "g\r\n",                        // not a hex digit
        "5\nhello\r\n0\r\n\r\n",        // LF without CR after the size
        "5;a\nb\r\nhello\r\n0\r\n\r\n", // bare LF in an extension
        "3\r\nabcX\r\n",                // no CRLF after the data
        "0\r\nbad header\r\n\r\n",      // invalid trailer
        "10000000000000000\r\n",        // size overflows u64
    ] {
        stopped(
            GET,
            format!("{head}{body}").as_bytes(),
            StopReason::Invalid(Invalid::Chunked),
        );
    }
}

#[test]
fn chunked_limits_follow_hyper() {
    let head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut long_extension = head.to_vec();
    long_extension.extend_from_slice(b"1;");
    long_extension.extend(std::iter::repeat_n(b'e', 16 * 1024));
    stopped(GET, &long_extension, StopReason::Invalid(Invalid::Chunked));

    let mut many_trailers = head.to_vec();
    many_trailers.extend_from_slice(b"0\r\n");
    for i in 0..101 {
        many_trailers.extend_from_slice(format!("t{i}: v\r\n").as_bytes());
    }
    many_trailers.extend_from_slice(b"\r\n");
    stopped(GET, &many_trailers, StopReason::Invalid(Invalid::Chunked));
}

#[test]
fn chunked_not_last_coding_is_close_delimited() {
    let response = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\nabc";
    exchange(GET, response, None, false);
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_read(response);
    let close = tracker.on_eof();
    assert!(close.message_end && !close.was_idle);
    assert_eq!(tracker.messages_completed(), 1);
    assert_eq!(tracker.stop_reason(), Some(StopReason::Closed));
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let response = b"HTTP/1.1 200 OK\r\n\r\nall of this is body";
    exchange(GET, response, None, false);
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    assert!(tracker.on_read(response).response_head);
    assert_eq!(tracker.response_head().map(|h| h.keep_alive), Some(false));
    assert_eq!(
        tracker.on_eof(),
        CloseOutcome {
            was_idle: false,
            message_end: true
        }
    );
}

#[test]
fn http10_keep_alive_depends_on_connection_header() {
    let close = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok";
    exchange(GET, close, Some(close.len()), false);
    let keep = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=100\r\n\
                 content-length: 2\r\n\r\nok";
    exchange(GET, keep, Some(keep.len()), true);

    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_read(keep);
    let head = tracker.response_head().expect("a final head");
    assert_eq!(
        head,
        ResponseHead {
            status: 200,
            http10: true,
            keep_alive: true,
            connection: Some(b"Keep-Alive"),
            keep_alive_header: Some(b"timeout=5, max=100"),
        }
    );
}

#[test]
fn http10_transfer_encoding_is_rejected() {
    let response = b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    stopped(
        GET,
        response,
        StopReason::Invalid(Invalid::TransferEncodingHttp10),
    );
}

#[test]
fn reusable_until_keep_alive_ends() {
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    assert!(tracker.is_reusable());
    tracker.on_read(b"HTTP/1.1 200 OK\r\nconnection: close\r\n");
    assert!(tracker.is_reusable(), "the head is not complete yet");
    tracker.on_read(b"content-length: 1\r\n\r\n");
    assert!(
        !tracker.is_reusable(),
        "decided at the head, before the body"
    );
    tracker.on_read(b"!");
    assert!(!tracker.is_reusable() && !tracker.is_idle());
    assert!(tracker.is_tracking());
}

#[test]
fn connection_close_is_never_idle() {
    let response = b"HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nconnection: foo, CLOSE\r\n\
                     connection: keep-alive\r\ncontent-length: 0\r\n\r\n";
    exchange(GET, response, Some(response.len()), false);
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_read(response);
    assert_eq!(
        tracker.response_head().and_then(|h| h.connection),
        Some(&b"keep-alive, foo, CLOSE, keep-alive"[..])
    );
    // The request side counts too.
    let request = b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n";
    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    exchange(request, ok, Some(ok.len()), false);
}

#[test]
fn invalid_content_length_stops_tracking() {
    for value in [
        "abc",
        "-1",
        "",
        "1, 2",
        "18446744073709551616",
        "18446744073709551614",
    ] {
        let response = format!("HTTP/1.1 200 OK\r\ncontent-length: {value}\r\n\r\n");
        let reason = StopReason::Invalid(Invalid::ContentLength);
        stopped(GET, response.as_bytes(), reason);
    }
    let twice = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd";
    stopped(GET, twice, StopReason::Invalid(Invalid::ContentLength));
    // Repeated equal values are fine, in one line or several.
    let same = b"HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ncontent-length: 3\r\n\r\nabc";
    exchange(GET, same, Some(same.len()), true);
}

#[test]
fn malformed_heads_stop_tracking() {
    let invalid = StopReason::Invalid(Invalid::Head);
    stopped(GET, b"HTTP/1.1 200 OK\r\nx: a\r\n folded\r\n\r\n", invalid);
    stopped(GET, b"HTTP/2 200 OK\r\n\r\n", invalid);
    stopped(GET, b"garbage\r\n\r\n", invalid);
    stopped(
        GET,
        b"HTTP/1.1 099 Low\r\n\r\n",
        StopReason::Invalid(Invalid::Status),
    );
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..101 {
        many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    stopped(GET, &many, invalid);
}

#[test]
fn empty_lines_before_the_status_line() {
    // httparse (and so hyper) skips them.
    let response = b"\r\n\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    exchange(GET, response, Some(response.len()), true);
    // Arriving one by one, each is a place a head could end: after a few,
    // the tracker gives up rather than parse again and again.
    let mut many = b"\r\n".repeat(100);
    many.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    read(&mut tracker, &many, Split::Bytes);
    assert_eq!(tracker.stop_reason(), Some(StopReason::TooLarge));
}

#[test]
fn oversized_head_stops_tracking() {
    let mut huge = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_HEAD));
    stopped(GET, &huge, StopReason::TooLarge);
}

const MAX_HEAD: usize = 400 * 1024;

#[test]
fn several_messages_on_one_connection() {
    let responses: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\ncontent-length: 1\r\n\r\n!",
    ];
    let post = b"POST /submit HTTP/1.1\r\ncontent-length: 4\r\n\r\ndata";
    let post_chunked =
        b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for split in SPLITS {
        let mut tracker = Tracker::new();
        for (i, response) in responses.iter().enumerate() {
            let request: &[u8] = [GET, post, post_chunked, GET][i];
            write(&mut tracker, request, split);
            assert!(tracker.request_written());
            assert_eq!(tracker.bytes_written_current(), request.len() as u64);
            let (ends, head) = read(&mut tracker, response, split);
            assert!(head);
            assert_eq!(ends, [response.len()], "{split:?} message {i}");
            assert!(tracker.is_idle(), "{split:?} after message {i}");
        }
        assert_eq!(tracker.messages_completed(), 4);
    }
}

#[test]
fn request_body_must_be_written_before_idle() {
    let mut tracker = Tracker::new();
    let head = b"POST / HTTP/1.1\r\ncontent-length: 10\r\n\r\n";
    tracker.on_write(head);
    tracker.on_write(b"01234");
    assert!(!tracker.request_written());
    // The server answers early.
    let response = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    assert_eq!(tracker.on_read(response).message_end, Some(response.len()));
    assert!(
        !tracker.is_idle(),
        "the request body is still being written"
    );
    tracker.on_write(b"56789");
    assert!(tracker.request_written() && tracker.is_idle());
    assert_eq!(tracker.bytes_written_current(), head.len() as u64 + 10);
}

#[test]
fn stray_bytes_while_idle_stop_tracking() {
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_read(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert!(tracker.is_idle());
    tracker.on_read(b"HTTP/1.1 408 Request Timeout\r\n\r\n");
    assert_eq!(tracker.stop_reason(), Some(StopReason::UnexpectedData));
    assert!(!tracker.is_idle());
    // Extra bytes after a complete response in the same read, too.
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    let outcome = tracker.on_read(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n!extra");
    assert_eq!(outcome.message_end, Some(39));
    assert_eq!(tracker.stop_reason(), Some(StopReason::UnexpectedData));
    // And before any request.
    let mut tracker = Tracker::new();
    tracker.on_read(b"x");
    assert_eq!(tracker.stop_reason(), Some(StopReason::UnexpectedData));
}

#[test]
fn pipelined_request_stops_tracking() {
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_write(GET);
    assert_eq!(
        tracker.stop_reason(),
        Some(StopReason::Unsupported(Unsupported::Pipelined))
    );
    assert_eq!(tracker.bytes_written_current(), 2 * GET.len() as u64);
}

#[test]
fn bytes_written_count_survives_a_stop() {
    let mut tracker = Tracker::new();
    let head = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n";
    tracker.on_write(head);
    // Not valid chunked framing: tracking stops, counting goes on.
    tracker.on_write(b"zz\r\n");
    assert_eq!(
        tracker.stop_reason(),
        Some(StopReason::Unsupported(Unsupported::RequestFraming))
    );
    tracker.on_write(b"more");
    assert_eq!(tracker.bytes_written_current(), head.len() as u64 + 8);
}

#[test]
fn response_before_request_head_stops_tracking() {
    let mut tracker = Tracker::new();
    tracker.on_write(b"GET / HTTP/1.1\r\n");
    tracker.on_read(b"HTTP/1.1 200 OK\r\n");
    assert_eq!(
        tracker.stop_reason(),
        Some(StopReason::Unsupported(Unsupported::EarlyResponse))
    );
}

#[test]
fn eof_and_errors_report_whether_idle() {
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_read(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
    assert_eq!(
        tracker.on_eof(),
        CloseOutcome {
            was_idle: true,
            message_end: false
        }
    );
    assert!(!tracker.is_tracking());

    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    assert!(!tracker.on_read_error().was_idle);
    assert_eq!(tracker.stop_reason(), Some(StopReason::ReadError));
    tracker.on_write(GET);
    assert_eq!(tracker.on_read(GET), ReadOutcome::default());
    assert!(!tracker.is_idle());
}

#[test]
fn stop_is_final() {
    let mut tracker = Tracker::new();
    tracker.stop();
    assert!(!tracker.is_idle() && !tracker.is_tracking());
    tracker.on_eof();
    assert_eq!(tracker.stop_reason(), Some(StopReason::Stopped));
}

#[test]
fn repeated_heads_say_what_they_said_the_first_time() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nkeep-alive: timeout=5\r\n\r\nabc";
    let head_len = ok.len() - 3;
    let post: &[u8] = b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\n";
    let mut tracker = Tracker::new();
    for round in 0..3 {
        // The same request and response, whole, again and again.
        tracker.on_write(GET);
        assert_eq!(tracker.on_read(&ok[..head_len + 1]).message_end, None);
        assert_eq!(tracker.on_read(&ok[head_len + 1..]).message_end, Some(2));
        assert!(tracker.is_idle(), "round {round}");
        let head = tracker.response_head().expect("a final head");
        assert_eq!((head.status, head.keep_alive), (200, true));
        assert_eq!(head.keep_alive_header, Some(&b"timeout=5"[..]));
        // The same head with a body to follow waits for the body each time.
        tracker.on_write(post);
        assert!(!tracker.request_written(), "round {round}");
        tracker.on_write(b"data");
        assert!(tracker.request_written());
        assert_eq!(tracker.on_read(ok).message_end, Some(ok.len()));
    }
    // The same response head answering `HEAD` has no body.
    tracker.on_write(HEAD);
    assert_eq!(tracker.on_read(&ok[..head_len]).message_end, Some(head_len));
    assert!(tracker.is_idle());
    // A head that differs is parsed, and what it says replaces the last.
    tracker.on_write(GET);
    let close = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc";
    assert_eq!(tracker.on_read(close).message_end, Some(close.len()));
    let head = tracker.response_head().expect("a final head");
    assert_eq!(head.connection, Some(&b"close"[..]));
    assert_eq!(head.keep_alive_header, None);
    assert!(!tracker.is_idle() && !tracker.is_reusable());
    assert_eq!(tracker.messages_completed(), 8);
}

#[test]
fn a_head_that_set_the_last_head_in_pieces_is_not_kept() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nkeep-alive: timeout=5\r\n\r\n";
    let other: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nkeep-alive: timeout=9\r\n\r\n";
    let mut tracker = Tracker::new();
    tracker.on_write(GET);
    tracker.on_read(ok);
    // The other head, split: the last head is now its, and the first
    // one, whole again, must be parsed to say its own timeout.
    tracker.on_write(GET);
    for piece in other.chunks(7) {
        tracker.on_read(piece);
    }
    let head = tracker.response_head().expect("a final head");
    assert_eq!(head.keep_alive_header, Some(&b"timeout=9"[..]));
    tracker.on_write(GET);
    assert_eq!(tracker.on_read(ok).message_end, Some(ok.len()));
    let head = tracker.response_head().expect("a final head");
    assert_eq!(head.keep_alive_header, Some(&b"timeout=5"[..]));
}

#[test]
fn a_repeated_head_leaves_the_state_a_parsed_one_would() {
    // Fed whole, the second and later exchanges take the repeated-head
    // paths; fed in pieces, every head is parsed. Both must agree on
    // everything the IO wrapper asks, after every call.
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc";
    let post: &[u8] = b"POST / HTTP/1.1\r\ncontent-length: 4\r\n\r\n";
    let close = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc";
    let steps: [(bool, &[u8]); 12] = [
        (true, GET),
        (false, ok),
        (true, GET),
        (false, &ok[..ok.len() - 1]),
        (false, &ok[ok.len() - 1..]),
        (true, post),
        (false, ok),
        (true, b"data"),
        (true, HEAD),
        (false, &ok[..ok.len() - 3]),
        (true, GET),
        (false, close),
    ];
    let state = |t: &Tracker| {
        let head = t
            .response_head()
            .map(|h| (h.status, h.keep_alive, h.connection));
        let head = head.map(|(s, k, c)| (s, k, c.map(<[u8]>::to_vec)));
        (
            t.is_idle(),
            t.is_reusable(),
            t.request_written(),
            t.messages_completed(),
            t.bytes_written_current(),
            head,
        )
    };
    let (mut whole, mut split) = (Tracker::new(), Tracker::new());
    for (i, (is_write, bytes)) in steps.into_iter().enumerate() {
        if is_write {
            whole.on_write(bytes);
            write(&mut split, bytes, Split::Pieces(5));
        } else {
            let end = whole.on_read(bytes).message_end;
            let (ends, _) = read(&mut split, bytes, Split::Pieces(5));
            assert_eq!(end, ends.first().copied(), "step {i}");
        }
        assert_eq!(state(&whole), state(&split), "step {i}");
    }
    assert!(whole.is_tracking() && !whole.is_reusable());
}
