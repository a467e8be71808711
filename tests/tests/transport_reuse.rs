//! Safety must not cost reuse: with idle gaps drawn around the server's
//! idle timeout, freshpool still reuses every connection it safely can.

use std::time::Duration;

use bytes::Bytes;
use freshpool_origin::{Advertise, Origin};
use freshpool_tests::{Captured, Gaps, Report, Schedule, assert_no_hangs, exchange, race};
use http_body_util::Full;

/// The origin's idle timeout, advertised as `Keep-Alive: timeout=1`.
const IDLE: Duration = Duration::from_secs(1);
/// Where the default margin (10%) retires connections.
const RETIRE: Duration = Duration::from_millis(900);

async fn run(gaps: Gaps, tasks: usize, per_task: usize) -> Report {
    let origin = Origin::builder()
        .idle_timeout(IDLE)
        .advertise(Advertise::Truthful)
        .start()
        .await
        .expect("origin");
    let schedule = Schedule {
        tasks,
        per_task,
        gaps,
        seed: 7,
    };
    let report = race("freshpool::Client", &origin, schedule, || {
        let client = freshpool::Client::builder()
            .build_http::<Full<Bytes>>()
            .expect("settings");
        move |url: String, id: String| {
            let client = client.clone();
            async move {
                let mut req = http::Request::post(url)
                    .header("x-request-id", id)
                    .body(Full::new(Bytes::from_static(b"x")))
                    .expect("request");
                let captured = Captured::native(&mut req);
                exchange(captured, client.request(req), false).await.into()
            }
        }
    })
    .await;
    origin.shutdown().await;
    report
}

/// The share of requests after a gap below `below` that reused a
/// connection (first requests of each sender excluded: they have none).
fn reuse_below(report: &Report, below: Duration) -> (usize, usize) {
    let eligible: Vec<_> = report
        .requests
        .iter()
        .filter(|sent| sent.gap > Duration::ZERO && sent.gap < below)
        .collect();
    let reused = eligible
        .iter()
        .filter(|sent| matches!(sent.result, Ok(true)))
        .count();
    (reused, eligible.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_around_the_idle_timeout_reuse_whenever_safe() {
    let report = run(Gaps::Uniform { max: IDLE * 2 }, 100, 10).await;
    println!("{report}");
    assert_no_hangs(&report);
    assert_eq!(report.error_count(), 0, "{report}");
    assert_eq!(report.duplicates, 0, "{report}");
    let (reused, eligible) = reuse_below(&report, RETIRE);
    println!("reused {reused} of {eligible} requests whose gap was below the retire time");
    assert!(eligible > 200, "enough eligible requests: {eligible}");
    assert!(reused * 100 >= eligible * 95, "{reused} of {eligible}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_faster_than_the_retire_time_reuse() {
    let report = run(
        Gaps::Uniform {
            max: RETIRE - Duration::from_millis(100),
        },
        50,
        12,
    )
    .await;
    println!("{report}");
    assert_no_hangs(&report);
    assert_eq!(report.error_count(), 0, "{report}");
    let later = report
        .requests
        .iter()
        .filter(|sent| sent.gap > Duration::ZERO)
        .count();
    let reused = report
        .requests
        .iter()
        .filter(|sent| matches!(sent.result, Ok(true)))
        .count();
    println!("reused {reused} of {later} requests after the first of each sender");
    assert!(reused * 100 >= later * 95, "{reused} of {later}");
}
