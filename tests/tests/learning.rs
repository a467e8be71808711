//! Learning you can trust, against `freshpool-origin` on loopback: closes
//! that are not the server's idle timer teach nothing, closes that are
//! teach both clients at once, a lower estimate reaches the connections
//! already parked, and the caller's own failures are never taken for the
//! server's.
//!
//! Timing is in paused tokio time, except where the race itself is the
//! point (then bounded in requests and seconds, and hyper-util runs beside
//! it).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use freshpool::Source;
use freshpool_legacy::{Connector, RetryClient};
use freshpool_origin::{Advertise, CloseMode, CloseReason, Origin};
use freshpool_tests::{TestClient, error_kind, post, read_body};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::ServiceExt;

type Legacy<C> = LegacyClient<C, Full<Bytes>>;

async fn origin(idle: Duration, advertise: Advertise) -> Origin {
    freshpool_tests::origin(idle, CloseMode::Fin, advertise).await
}

fn http() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

fn native() -> TestClient {
    freshpool::Client::builder()
        .build(http())
        .expect("default settings")
}

fn swapped() -> (Legacy<Connector<HttpConnector>>, Connector<HttpConnector>) {
    let connector = Connector::new(http());
    let client = LegacyClient::builder(TokioExecutor::new()).build(connector.clone());
    (client, connector)
}

/// Marks an error on a connection that had carried no request before.
const FRESH: &str = " (fresh connection)";

/// Whether hyper-util's error happened on a fresh connection, by the
/// adapter's connection info. hyper-util attaches the connection to the
/// error of every request it sent on one; an error without it came from
/// making the connection (one the server closed before it was ready for
/// its first request), which is fresh too.
fn on_fresh(error: &hyper_util::client::legacy::Error) -> bool {
    let Some(connected) = error.connect_info() else {
        return true;
    };
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    extensions
        .get::<freshpool_legacy::ConnectionInfo>()
        .is_some_and(|info| info.responses_completed() == 0)
}

fn legacy_kind(error: &hyper_util::client::legacy::Error) -> String {
    let kind = error_kind(error);
    if on_fresh(error) { kind + FRESH } else { kind }
}

/// POSTs `id` and reads the whole response.
async fn exchange<C>(client: &Legacy<C>, origin: &Origin, id: String) -> Result<(), String>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let response = client
        .request(post(format!("{}/", origin.base_url()), id, false))
        .await
        .map_err(|e| legacy_kind(&e))?;
    read_body(response).await
}

async fn exchange_native(client: &TestClient, origin: &Origin, id: String) -> Result<(), String> {
    let response = client
        .request(post(format!("{}/", origin.base_url()), id, false))
        .await
        .map_err(|e| {
            let kind = error_kind(&e);
            if e.is_reused_connection() {
                kind
            } else {
                kind + FRESH
            }
        })?;
    read_body(response).await
}

/// One request, then the server closes that idle connection 2 ms after
/// its response (a deploy, a reload), then 30 requests 20 ms apart.
async fn after_one_early_close(
    origin: &Origin,
    mut send: impl AsyncFnMut(String) -> Result<(), String>,
) {
    send("first".into()).await.expect("first request");
    tokio::time::sleep(Duration::from_millis(2)).await;
    origin.close_idle();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..30 {
        send(format!("after-{i}")).await.expect("request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn one_early_close_does_not_stop_reuse() {
    // hyper-util opens 2 connections for these 31 requests: the first, and
    // one after the close. So must both freshpool clients.
    let ours = origin(Duration::from_secs(10), Advertise::None).await;
    let client = native();
    after_one_early_close(&ours, async |id| exchange_native(&client, &ours, id).await).await;
    let stats = client.stats().total;
    assert_eq!(ours.stats().connections_accepted, 2, "{stats:?}");
    assert_eq!(stats.reused, 29, "{stats:?}");
    assert_eq!(
        client.stats().origins[0].1.estimate.map(|e| e.1),
        Some(Source::Default)
    );
    ours.shutdown().await;

    let theirs = origin(Duration::from_secs(10), Advertise::None).await;
    let (legacy, connector) = swapped();
    after_one_early_close(&theirs, async |id| exchange(&legacy, &theirs, id).await).await;
    assert_eq!(theirs.stats().connections_accepted, 2);
    let url = theirs.base_url().parse().expect("url");
    assert_eq!(
        connector.estimate(&url).map(|e| e.source),
        Some(Source::Default)
    );
    theirs.shutdown().await;
}

/// A server that closes every idle connection a few milliseconds after its
/// response, and says nothing: `count` back-to-back sequential POSTs, each
/// also `gap` after the last. Returns the errors on reused connections,
/// before and after `learned()` said the client knew the timeout when the
/// request was sent.
///
/// The origin also closes a connection that idles that long *before* its
/// first request: on a loaded runtime a fresh connection's request can
/// take a millisecond to arrive, and no client can help that (real servers
/// time a first request with another timer). Those are printed, not
/// counted.
async fn against_a_server_that_closes_at_once<F>(
    name: &str,
    count: usize,
    gap: Duration,
    learned: impl Fn() -> bool,
    mut send: F,
) -> Errors
where
    F: AsyncFnMut(String) -> Result<(), String>,
{
    let mut errors = Errors::default();
    for i in 0..count {
        let known = learned();
        let result = tokio::time::timeout(Duration::from_secs(5), send(format!("r{i}")))
            .await
            .unwrap_or_else(|_| Err("no response in 5 s".into()));
        if let Err(kind) = result {
            println!("    {name}, request {i} (timeout known: {known}): {kind}");
            if kind.ends_with(FRESH) {
                errors.fresh += 1;
            } else {
                *if known {
                    &mut errors.after
                } else {
                    &mut errors.before
                } += 1;
            }
        }
        tokio::time::sleep(gap).await;
    }
    errors
}

/// Errors on reused connections, before and after the client knew the
/// server's timeout, and errors on fresh ones.
#[derive(Debug, Default, Clone, Copy)]
struct Errors {
    before: usize,
    after: usize,
    fresh: usize,
}

/// Whether `estimate` is one the client learned.
fn is_learned(estimate: Option<Source>) -> bool {
    estimate == Some(Source::Learned)
}

/// The real-time tests one at a time: each is a race on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_early_closes_are_learned_by_every_client() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // 100 back-to-back POSTs to a server that closes each connection 1 ms
    // after its response: a request written as the FIN is on its way
    // fails. Once two closes agree, every freshpool client stops reusing.
    let idle = Duration::from_millis(1);
    let gap = Duration::ZERO;
    let hu_origin = origin(idle, Advertise::None).await;
    let hu: Legacy<HttpConnector> = LegacyClient::builder(TokioExecutor::new()).build(http());
    let hu_errors = against_a_server_that_closes_at_once(
        "hyper-util",
        100,
        gap,
        || false,
        async |id| exchange(&hu, &hu_origin, id).await,
    )
    .await;

    let fp_origin = origin(idle, Advertise::None).await;
    let fp = native();
    let fp_learned = || {
        is_learned(
            fp.stats()
                .origins
                .first()
                .and_then(|o| o.1.estimate)
                .map(|e| e.1),
        )
    };
    let fp_errors = against_a_server_that_closes_at_once(
        "freshpool::Client",
        100,
        gap,
        fp_learned,
        async |id| exchange_native(&fp, &fp_origin, id).await,
    )
    .await;
    println!("freshpool::Client learned: {:?}", fp.stats().origins);

    let sw_origin = origin(idle, Advertise::None).await;
    let sw_url: http::Uri = sw_origin.base_url().parse().expect("url");
    let (sw, sw_connector) = swapped();
    let sw_errors = against_a_server_that_closes_at_once(
        "Connector",
        100,
        gap,
        || is_learned(sw_connector.estimate(&sw_url).map(|e| e.source)),
        async |id| exchange(&sw, &sw_origin, id).await,
    )
    .await;
    println!(
        "Connector learned: {:?} retire {:?} {:?}",
        sw_connector.estimate(&sw_url),
        sw_connector.retire_after(&sw_url),
        sw_connector.stats()
    );

    let rc_origin = origin(idle, Advertise::None).await;
    let rc_url: http::Uri = rc_origin.base_url().parse().expect("url");
    let rc_connector = Connector::new(http());
    let rc: RetryClient<HttpConnector, Full<Bytes>> =
        RetryClient::new(LegacyClient::builder(TokioExecutor::new()).build(rc_connector.clone()));
    let rc_errors = against_a_server_that_closes_at_once(
        "RetryClient",
        100,
        gap,
        || is_learned(rc_connector.estimate(&rc_url).map(|e| e.source)),
        async |id| {
            let response = rc
                .request(post(format!("{}/", rc_origin.base_url()), id, false))
                .await
                .map_err(|e| match e.client_error() {
                    Some(client) => legacy_kind(client),
                    None => error_kind(&e),
                })?;
            read_body(response).await
        },
    )
    .await;
    println!(
        "errors on reused connections in 100 (before the timeout was known, after): \
         hyper-util {}, freshpool::Client {fp_errors:?}, Connector {sw_errors:?}, \
         RetryClient {rc_errors:?}",
        hu_errors.before
    );
    // Before it knows, a client can meet a close: the two closes that
    // teach it may each cross a request. After, none may.
    for (name, errors) in [
        ("freshpool::Client", fp_errors),
        ("Connector", sw_errors),
        ("RetryClient", rc_errors),
    ] {
        assert_eq!(errors.after, 0, "{name}: {errors:?} errors in 100");
        assert!(errors.before <= 2, "{name}: {errors:?} errors in 100");
    }
    for origin in [&hu_origin, &fp_origin, &sw_origin, &rc_origin] {
        assert_eq!(origin.stats().duplicate_requests, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_never_retires_a_connection_before_its_first_request() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A retire time of zero (here the client's own idle timeout; a learned
    // or advertised one of a few milliseconds gives the same): every
    // request goes on a fresh connection, which the adapter must not
    // retire before that request is written (hyper-util does not retry a
    // request that fails on a fresh connection). The server closes idle
    // connections 4 ms after their response.
    let origin = origin(Duration::from_millis(4), Advertise::None).await;
    let zero = freshpool_legacy::EstimatorConfig {
        default_timeout: Duration::ZERO,
        ..freshpool_legacy::EstimatorConfig::default()
    };
    let connector = Connector::with_config(http(), zero);
    let client: Legacy<_> = LegacyClient::builder(TokioExecutor::new()).build(connector.clone());
    let errors = against_a_server_that_closes_at_once(
        "Connector",
        40,
        Duration::from_millis(10),
        || false,
        async |id| exchange(&client, &origin, id).await,
    )
    .await;
    let url = origin.base_url().parse().expect("url");
    assert_eq!(connector.retire_after(&url), Some(Duration::ZERO));
    assert_eq!(errors.before, 0, "{:?}", connector.stats());
    // The server's idle timer also runs from the accept: a fresh
    // connection the loaded client takes longer than 4 ms to use is the
    // server's to close, and hyper-util then fails its request. Such a
    // connection is recorded closed by the idle timer with no request. One
    // the adapter retired unused would be recorded closed by the client:
    // there must be none.
    let unused = |closed: fn(&CloseReason) -> bool| {
        origin
            .connections()
            .iter()
            .filter(|record| record.requests == 0 && record.closed.as_ref().is_some_and(closed))
            .count()
    };
    let by_the_client = unused(|why| matches!(why, CloseReason::PeerClosed));
    let by_the_server = unused(|why| matches!(why, CloseReason::IdleTimeout(_)));
    assert_eq!(
        by_the_client, 0,
        "the adapter retired a connection before its request"
    );
    assert!(
        errors.fresh <= by_the_server,
        "{} fresh-connection errors, {by_the_server} unused connections the server closed",
        errors.fresh
    );
    assert_eq!(
        origin.stats().requests_processed as usize,
        40 - errors.fresh
    );
    origin.shutdown().await;
}

/// A request body that fails after its first frame: the caller's own
/// failure, which says nothing about the server.
struct Failing(u8);

impl http_body::Body for Failing {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.0 += 1;
        Poll::Ready(Some(match self.0 {
            1 => Ok(Frame::data(Bytes::from_static(b"part"))),
            _ => Err(io::Error::other("the caller's body failed")),
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn the_callers_body_error_is_not_a_server_close() {
    let origin = origin(Duration::from_secs(10), Advertise::None).await;
    let client = freshpool::Client::builder()
        .build::<_, http_body_util::Either<Empty<Bytes>, Failing>>(http())
        .expect("settings");
    let url = format!("{}/", origin.base_url());
    let first = http::Request::get(&url)
        .body(http_body_util::Either::Left(Empty::new()))
        .expect("request");
    client
        .request(first)
        .await
        .expect("first")
        .into_body()
        .collect()
        .await
        .expect("body");
    // Idle long enough that a close crossing a request would be learned.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let failing = http::Request::post(&url)
        .body(http_body_util::Either::Right(Failing(0)))
        .expect("request");
    let error = client.request(failing).await.expect_err("the body failed");
    println!("the caller's failure: {error}");
    let stats = client.stats();
    assert_eq!(stats.total.server_closes_observed, 0, "{stats:?}");
    assert_eq!(
        stats.origins[0].1.estimate.map(|e| e.1),
        Some(Source::Default)
    );
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_lower_estimate_reaches_connections_already_parked_natively() {
    // Two connections go idle at t = 0 and t = 1 s. At t = 1.2 s the
    // server starts closing connections idle for 1.5 s: the first closes
    // at 1.5 s, which teaches the client, and the second, parked since
    // 1 s with the 90 s default, must now be retired just before 2.5 s,
    // before the server closes it.
    let origin = origin(Duration::from_secs(600), Advertise::None).await;
    let client = native();
    let url = format!("{}/", origin.base_url());
    let mut held = Vec::new();
    for pause in ["0", "1000"] {
        let req = http::Request::get(&url)
            .header("x-body-size", "10")
            .header("x-pause-mid-body-ms", pause)
            .body(Full::default())
            .expect("request");
        held.push(client.request(req).await.expect("head"));
    }
    for response in held {
        response.into_body().collect().await.expect("body");
    }
    // Now t = 1 s.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(client.stats().total.idle, 2);
    origin.set_idle_timeout(Some(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(1400)).await;
    let stats = client.stats().total;
    assert_eq!(stats.server_closes_observed, 1, "{stats:?}");
    assert_eq!(stats.retired_by_expiry, 1, "{stats:?}");
    assert_eq!(origin.stats().connections_open, 0);
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_lower_estimate_reaches_connections_the_adapter_parked() {
    // hyper-util opens connections in the background that never carry a
    // request. One such, made before any header arrived, must follow the
    // `Keep-Alive: timeout=2` a later response teaches, not the 90 s
    // default it was made under.
    let origin = origin(Duration::from_secs(2), Advertise::Truthful).await;
    let (client, connector) = swapped();
    let uri: http::Uri = origin.base_url().parse().expect("url");
    let parked = connector
        .clone()
        .oneshot(uri.clone())
        .await
        .expect("connects");
    let (_sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(parked)
        .await
        .expect("handshake");
    let parked = tokio::spawn(conn);

    exchange(&client, &origin, "teaches".into())
        .await
        .expect("request");
    let estimate = connector.estimate(&uri).expect("origin known");
    assert_eq!(
        (estimate.timeout, estimate.source),
        (Duration::from_secs(2), Source::Header)
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(parked.is_finished(), "the parked connection was retired");
    let stats = connector.stats();
    assert_eq!((stats.retired, stats.server_closes), (2, 0), "{stats:?}");
    // The server closed the one that carried the request, after the
    // adapter retired it and while it watched it for that (which counts as
    // retired); the parked one, which never carried one, is not watched.
    assert_eq!(origin.stats().idle_closes_fin, 1);
    origin.shutdown().await;
}

/// The adapter keeps an estimate for every origin with a connection, and
/// for the 256 whose connections went most recently; older ones are
/// forgotten, so a connector facing many origins (a proxy) stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_forgets_origins_with_no_connection_beyond_a_bound() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let origin = Origin::builder()
        .listen("0.0.0.0:0".parse().expect("address"))
        .idle_timeout(Duration::from_secs(5))
        .advertise(Advertise::Truthful)
        .start()
        .await
        .expect("origin");
    let port = origin.addr().port();
    let (client, connector) = swapped();
    // 300 origins (all of 127/8 is loopback), each left with no connection
    // once the server closes its one.
    const ORIGINS: u32 = 300;
    let url = |i: u32| format!("http://127.0.{}.{}:{port}/p", i / 250, i % 250 + 1);
    for i in 0..ORIGINS {
        let request = http::Request::get(url(i))
            .header("x-close", "1")
            .body(Full::default())
            .expect("request");
        let response = client.request(request).await.expect("response");
        read_body(response).await.expect("body");
    }
    let mut stats = connector.stats();
    for _ in 0..200 {
        if stats.origins <= 256 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        stats = connector.stats();
    }
    assert_eq!(stats.connections, u64::from(ORIGINS));
    assert!(stats.origins <= 256, "{stats:?}");
    let known = |i: u32| connector.estimate(&url(i).parse().expect("url"));
    assert_eq!(known(0), None, "the first origin is forgotten");
    assert!(
        known(ORIGINS - 1).is_some(),
        "the last origin is remembered"
    );

    // A forgotten origin that comes back is served, and learned, afresh:
    // this response keeps its connection and advertises the timeout.
    let response = client
        .request(
            http::Request::get(url(0))
                .body(Full::default())
                .expect("request"),
        )
        .await
        .expect("again");
    read_body(response).await.expect("body");
    let back = known(0).expect("known again");
    assert_eq!(
        (back.source, back.timeout),
        (Source::Header, Duration::from_secs(5))
    );
    origin.shutdown().await;
}
