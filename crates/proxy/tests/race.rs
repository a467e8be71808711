//! The keep-alive race through a reverse proxy, in real time over
//! loopback: clients → proxy → `freshpool-origin` (idle timeout 200 ms, no
//! `Keep-Alive` header, closing with a FIN or an RST), POSTs every
//! 200 ms ± 2 ms and ± 100 ms.
//!
//! The same proxy runs on freshpool's client and on hyper-util's, side by
//! side in one run, each in front of its own origin. The freshpool proxy
//! must answer no 5xx and cause no duplicate at the origin; hyper-util's
//! 5xx are counted beside it. What freshpool may give up for that is
//! reuse, so its upstream reuse is asserted against hyper-util's in the
//! same run: at ± 100 ms jitter about half the gaps are shorter than the
//! upstream's timeout, and those connections must still be reused.
//!
//! Bounded: 5 senders × 16 requests per proxy and setting, about 4 s.

mod support;

use std::time::Duration;

use freshpool_origin::{Advertise, CloseMode, Origin};
use freshpool_proxy::{Proxy, Upstream};
use freshpool_testkit::XorShift;
use http::Request;
use http_body_util::BodyExt;
use support::{Running, client, freshpool_client, full, legacy_client, run};

const IDLE: Duration = Duration::from_millis(200);
const SENDERS: u32 = 5;
const REQUESTS: u32 = 16;

/// One proxy in front of one origin, and what happened.
struct Lane {
    name: String,
    freshpool: bool,
    jitter: Duration,
    origin: Origin,
    proxy: Running,
    status_5xx: u64,
    errors: u64,
    /// Requests that got neither a response nor an error in 10 s: hangs,
    /// counted apart from errors.
    hangs: u64,
}

async fn lane<Cl: Upstream>(
    name: String,
    freshpool: bool,
    jitter: Duration,
    origin: Origin,
    client: Cl,
) -> Lane {
    let proxy = Proxy::builder(origin.base_url().parse().expect("url"))
        .build(client)
        .expect("proxy");
    let proxy = run(proxy).await;
    Lane {
        name,
        freshpool,
        jitter,
        origin,
        proxy,
        status_5xx: 0,
        errors: 0,
        hangs: 0,
    }
}

/// One sender: its own client (own connection to the proxy), POSTs with
/// unique ids, `IDLE ± jitter` apart; the first pause is one and a half
/// intervals, so the proxy has seen its upstream close an idle
/// connection before the race proper. The origin takes 20 ms to answer,
/// so the senders' requests overlap and the proxy keeps one upstream
/// connection per sender, each idle for about a pause between uses (as
/// with nginx in front of a busy site, where the 502s come from).
/// Returns (5xx, other errors).
async fn sender(url: String, prefix: String, jitter: Duration, seed: u64) -> (u64, u64, u64) {
    let client = client();
    let mut rng = XorShift::new(seed);
    let (mut status_5xx, mut errors, mut hangs) = (0, 0, 0);
    for n in 0..REQUESTS {
        if n > 0 {
            let mut pause = rng.around(IDLE, jitter);
            if n == 1 {
                pause += IDLE / 2;
            }
            tokio::time::sleep(pause).await;
        }
        let req = Request::post(&url)
            .header("x-request-id", format!("{prefix}.{n}"))
            .header("x-delay-ms", "20")
            .body(full(&b"{\"order\":1}"[..]))
            .expect("request");
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            let response = client.request(req).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        })
        .await;
        match outcome {
            Ok(Ok((status, _))) if status.is_server_error() => status_5xx += 1,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => errors += 1,
            Err(_) => hangs += 1,
        }
    }
    (status_5xx, errors, hangs)
}

#[test]
fn through_the_freshpool_proxy_no_post_meets_a_stale_upstream_connection() {
    // The origins get a runtime (and thread) of their own, as a server in
    // another process would: timers of one runtime share ticks.
    let origins = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("origin runtime");
    let proxies = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("proxy runtime");

    let mut settings = Vec::new();
    for close in [CloseMode::Fin, CloseMode::Rst] {
        for jitter in [Duration::from_millis(2), Duration::from_millis(100)] {
            for freshpool in [true, false] {
                let origin = origins
                    .block_on(
                        Origin::builder()
                            .idle_timeout(IDLE)
                            .close_mode(close)
                            .advertise(Advertise::None)
                            .start(),
                    )
                    .expect("origin");
                let name = format!(
                    "{} proxy, close {}, jitter ±{} ms",
                    if freshpool { "freshpool" } else { "hyper-util" },
                    close.as_str(),
                    jitter.as_millis()
                );
                settings.push((name, freshpool, jitter, origin));
            }
        }
    }

    let lanes = proxies.block_on(async move {
        let mut lanes = Vec::new();
        for (name, freshpool, jitter, origin) in settings {
            let lane = if freshpool {
                lane(name, true, jitter, origin, freshpool_client()).await
            } else {
                lane(name, false, jitter, origin, legacy_client()).await
            };
            lanes.push(lane);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (index, lane) in lanes.iter().enumerate() {
            for s in 0..SENDERS {
                let url = lane.proxy.url("/orders");
                let prefix = format!("{index}.{s}");
                // Both proxies of a setting follow the same schedule.
                let seed = u64::from(s) + 1 + (index as u64 / 2) * 100;
                let jitter = lane.jitter;
                tasks.spawn(async move { (index, sender(url, prefix, jitter, seed).await) });
            }
        }
        while let Some(done) = tasks.join_next().await {
            let (index, (status_5xx, errors, hangs)) = done.expect("sender");
            lanes[index].status_5xx += status_5xx;
            lanes[index].errors += errors;
            lanes[index].hangs += hangs;
        }
        lanes
    });

    let requests = u64::from(SENDERS * REQUESTS);
    let mut report = String::new();
    let mut reuse_by_setting: Vec<(bool, Duration, f64)> = Vec::new();
    let mut idle_closes = 0;
    for lane in &lanes {
        let stats = lane.origin.stats();
        let reuse =
            1.0 - stats.connections_accepted as f64 / stats.requests_processed.max(1) as f64;
        idle_closes += stats.idle_closes_fin + stats.idle_closes_rst;
        report.push_str(&format!(
            "{:<44} 5xx {:>3}  errors {:>2}  hangs {}  processed {:>3}  duplicates {}  upstream connections {:>3}  reuse {:>5.1}%\n",
            lane.name,
            lane.status_5xx,
            lane.errors,
            lane.hangs,
            stats.requests_processed,
            stats.duplicate_requests,
            stats.connections_accepted,
            100.0 * reuse,
        ));
        reuse_by_setting.push((lane.freshpool, lane.jitter, reuse));
    }
    eprintln!("{report}");
    assert!(
        idle_closes > 0,
        "the origins never closed an idle connection: no race\n{report}"
    );
    for lane in &lanes {
        assert_eq!(
            lane.hangs, 0,
            "{}: a request got no response and no error in 10 s\n{report}",
            lane.name
        );
        assert_eq!(lane.errors, 0, "the client→proxy hop failed\n{report}");
        if lane.freshpool {
            let stats = lane.origin.stats();
            assert_eq!(lane.status_5xx, 0, "{}: 5xx\n{report}", lane.name);
            assert_eq!(
                stats.duplicate_requests, 0,
                "{}: duplicates\n{report}",
                lane.name
            );
            assert_eq!(
                stats.requests_processed, requests,
                "{}: lost\n{report}",
                lane.name
            );
        }
    }
    // Short gaps are still reused: at ± 100 ms jitter, freshpool keeps
    // most of the reuse hyper-util gets (by winning and losing the race).
    for pair in reuse_by_setting.chunks(2) {
        let [(true, jitter, fresh), (false, _, hyper)] = pair else {
            panic!("lanes out of order");
        };
        if *jitter == Duration::from_millis(100) {
            assert!(
                *fresh >= 0.25 && *fresh >= 0.7 * hyper,
                "freshpool reused {:.0}% of upstream connections, hyper-util {:.0}%\n{report}",
                100.0 * fresh,
                100.0 * hyper
            );
        }
    }
    for lane in lanes {
        proxies.block_on(lane.proxy.stop());
        origins.block_on(lane.origin.shutdown());
    }
}
