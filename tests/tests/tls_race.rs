//! The race of docs/design.md §1 over HTTPS: hyper-util's legacy `Client` over
//! hyper-rustls's `HttpsConnector` (the baseline), the same client over
//! `freshpool_legacy::Connector::new(https)`, and `freshpool::Client` built
//! on the `HttpsConnector` itself (the `rustls` feature, no wrapper), each
//! POSTing to a TLS origin with a 200 ms idle timeout and no `Keep-Alive`
//! header, in one run.
//!
//! The gaps are 200 ms ± 50 ms: half of them are below the server's idle
//! timeout, so a pool should reuse there, and some fall on the close
//! itself, where hyper-util's reuse meets it. What must hold:
//! `freshpool::Client` has no error once it has seen a close, the adapter
//! at most one (see the test), neither more than one per sender before;
//! nobody processes a request twice; and both still reuse the connections
//! idle for well under the timeout, as hyper-util does.

use std::time::Duration;

use bytes::Bytes;
use freshpool_legacy::Connector;
use freshpool_origin::{CloseMode, Origin, TlsClose};
use freshpool_tests::tls::https_connector;
use freshpool_tests::{
    AFTER_LEARNING, Captured, Gaps, Report, Schedule, assert_exactly_once, exchange, post, race,
    run_reference,
};
use http_body_util::Full;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::rt::TokioExecutor;

type Body = Full<Bytes>;

const IDLE: Duration = Duration::from_millis(200);
/// Gaps this far below the idle timeout are clear of any retire margin:
/// a pool that does not reuse them gives reuse away.
const CLEARLY_BELOW: Duration = Duration::from_millis(170);

async fn tls_origin() -> Origin {
    Origin::builder()
        .tls(true)
        .tls_close(TlsClose::Notify)
        .idle_timeout(IDLE)
        .close_mode(CloseMode::Fin)
        .start()
        .await
        .expect("TLS origin starts")
}

async fn run_hyper_util(origin: &Origin, schedule: Schedule) -> Report {
    run_reference("hyper-util", origin, schedule, || https_connector(origin)).await
}

async fn run_legacy_connector(origin: &Origin, schedule: Schedule) -> Report {
    race("hyper-util + Connector", origin, schedule, || {
        let connector = Connector::new(https_connector(origin));
        let client: LegacyClient<_, Body> =
            LegacyClient::builder(TokioExecutor::new()).build(connector.clone());
        move |url, id| {
            let (client, connector) = (client.clone(), connector.clone());
            async move {
                let learned = connector.stats().server_closes > 0;
                let mut req = post(url, id, false);
                let captured = Captured::legacy(&mut req);
                exchange(captured, client.request(req), learned)
                    .await
                    .into()
            }
        }
    })
    .await
}

/// freshpool's counters, summed over every sender's client.
#[derive(Debug, Default)]
struct Totals {
    reused: u64,
    probe_rejected_closed: u64,
    probe_rejected_reset: u64,
    probe_rejected_unexpected: u64,
    retired_by_expiry: u64,
    server_closes_observed: u64,
}

async fn run_freshpool(origin: &Origin, schedule: Schedule) -> (Report, Totals) {
    let clients = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let report = race("freshpool::Client", origin, schedule, || {
        let client = freshpool::Client::builder()
            .build::<_, Body>(https_connector(origin))
            .expect("default settings are valid");
        clients.lock().expect("clients").push(client.clone());
        move |url, id| {
            let client = client.clone();
            async move {
                let learned = client.stats().total.server_closes_observed > 0;
                let mut req = post(url, id, false);
                let captured = Captured::native(&mut req);
                exchange(captured, client.request(req), learned)
                    .await
                    .into()
            }
        }
    })
    .await;
    let mut total = Totals::default();
    for client in clients.lock().expect("clients").iter() {
        let stats = client.stats().total;
        total.reused += stats.reused;
        total.probe_rejected_closed += stats.probe_rejected_closed;
        total.probe_rejected_reset += stats.probe_rejected_reset;
        total.probe_rejected_unexpected += stats.probe_rejected_unexpected;
        total.retired_by_expiry += stats.retired_by_expiry;
        total.server_closes_observed += stats.server_closes_observed;
    }
    (report, total)
}

/// Errors once the client had seen a server close.
fn after_learning(report: &Report) -> u64 {
    report
        .errors
        .iter()
        .filter(|(kind, _)| kind.ends_with(AFTER_LEARNING))
        .map(|(_, n)| n)
        .sum()
}

/// Of the requests after a gap clearly below the idle timeout, how many
/// were sent on a reused connection, and how many there were.
fn reuse_below(report: &Report, below: Duration) -> (usize, usize) {
    let eligible: Vec<_> = report
        .requests
        .iter()
        .filter(|sent| sent.gap > Duration::ZERO && sent.gap < below && sent.result.is_ok())
        .collect();
    let reused = eligible
        .iter()
        .filter(|sent| matches!(sent.result, Ok(true)))
        .count();
    (reused, eligible.len())
}

fn reused(report: &Report) -> usize {
    report
        .requests
        .iter()
        .filter(|sent| matches!(sent.result, Ok(true)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_race_no_error_once_warm_and_reuse_below_the_timeout() {
    let schedule = Schedule {
        tasks: 10,
        per_task: 25,
        gaps: Gaps::Around {
            interval: IDLE,
            jitter: Duration::from_millis(50),
        },
        seed: 12,
    };
    let origins = [tls_origin().await, tls_origin().await, tls_origin().await];
    let (baseline, adapter, (native, native_stats)) = tokio::join!(
        run_hyper_util(&origins[0], schedule),
        run_legacy_connector(&origins[1], schedule),
        run_freshpool(&origins[2], schedule),
    );
    for origin in &origins {
        origin.shutdown().await;
    }
    println!("scenario: HTTPS, idle 200 ms, close_notify + FIN, no Keep-Alive, gaps 200 ± 50 ms");
    for report in [&baseline, &adapter, &native] {
        let (below, eligible) = reuse_below(report, CLEARLY_BELOW);
        println!(
            "  {report}  reused {}  reused below {} ms {below}/{eligible}",
            reused(report),
            CLEARLY_BELOW.as_millis()
        );
    }
    println!("  freshpool stats: {native_stats:?}");
    for report in [&baseline, &adapter, &native] {
        for (i, sent) in report.requests.iter().enumerate() {
            if let Err(kind) = &sent.result {
                println!(
                    "  {}: #{i} sender {} after {:?}: {kind}",
                    report.name, sent.task, sent.gap
                );
            }
        }
    }

    let sent = (schedule.tasks * schedule.per_task) as u64;
    for report in [&baseline, &adapter, &native] {
        assert_eq!(report.sent, sent, "{report}");
        assert_exactly_once(report);
    }
    // Both clients check the retire time in hyper's read right before a
    // request is written, so a late timer cannot let a request onto a
    // dying connection: no error once the timeout is known.
    for report in [&adapter, &native] {
        assert_eq!(after_learning(report), 0, "no error once warm: {report}");
    }
    for report in [&adapter, &native] {
        assert!(
            report.error_count() <= schedule.tasks as u64,
            "at most one error per sender before it learned: {report}"
        );
    }
    // The probe ran on TLS connections: whatever it rejected is counted
    // by kind, and a TLS record alone never made it discard a connection.
    assert_eq!(
        native_stats.probe_rejected_unexpected, 0,
        "{native_stats:?}"
    );
    assert!(native_stats.server_closes_observed > 0, "{native_stats:?}");

    // What freshpool gives up: nothing below the retire time. hyper-util
    // reuses every such gap; freshpool's clients must too.
    let (base_below, base_eligible) = reuse_below(&baseline, CLEARLY_BELOW);
    assert!(
        base_eligible > 0 && base_below * 10 >= base_eligible * 9,
        "{baseline}"
    );
    for report in [&adapter, &native] {
        let (below, eligible) = reuse_below(report, CLEARLY_BELOW);
        assert!(
            eligible > 0 && below * 10 >= eligible * 9,
            "reuse below {CLEARLY_BELOW:?}: {below}/{eligible}: {report}"
        );
    }
}
