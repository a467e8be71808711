//! The race the origin exists to reproduce, in real time and bounded: raw
//! clients reuse each connection at the idle timeout ± jitter. Whatever
//! the timing, a request is either answered or meets the close unprocessed:
//! the origin never processes a request it then fails to answer, and never
//! processes one twice.

mod support;

use std::time::Duration;

use freshpool_origin::{CloseMode, Origin};
use freshpool_testkit::XorShift;
use support::Conn;
use tokio::task::JoinSet;

const CLIENTS: usize = 8;
const REQUESTS_PER_CLIENT: usize = 15;
const IDLE: Duration = Duration::from_millis(100);

/// `IDLE ± 2 ms`.
fn jittered(rng: &mut XorShift) -> Duration {
    rng.around(IDLE, Duration::from_millis(2))
}

async fn race(mode: CloseMode) {
    let origin = Origin::builder()
        .idle_timeout(IDLE)
        .close_mode(mode)
        .start()
        .await
        .expect("start origin");
    let origin = std::sync::Arc::new(origin);
    let mut clients = JoinSet::new();
    for c in 0..CLIENTS {
        let origin = std::sync::Arc::clone(&origin);
        clients.spawn(async move {
            let mut rng = XorShift::from_state(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            let mut conn = Conn::open(&origin).await;
            let mut outcomes = Vec::new();
            for r in 0..REQUESTS_PER_CLIENT {
                let id = format!("{c}-{r}");
                let answered = conn
                    .try_get(&format!("x-request-id: {id}\r\n"))
                    .await
                    .is_ok()
                    && matches!(conn.response().await, Ok(response) if response.status == 200);
                if !answered {
                    conn = Conn::open(&origin).await;
                }
                outcomes.push((id, answered));
                tokio::time::sleep(jittered(&mut rng)).await;
            }
            outcomes
        });
    }
    let mut outcomes = Vec::new();
    let all = async {
        while let Some(done) = clients.join_next().await {
            outcomes.extend(done.expect("client task"));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("bounded run");

    assert_eq!(outcomes.len(), CLIENTS * REQUESTS_PER_CLIENT);
    let answered = outcomes.iter().filter(|(_, ok)| *ok).count();
    for (id, ok) in &outcomes {
        assert_eq!(
            origin.processed(id),
            u32::from(*ok),
            "request {id} (answered: {ok})"
        );
    }
    let stats = origin.stats();
    assert_eq!(stats.requests_processed, answered as u64);
    assert_eq!(stats.duplicate_requests, 0);
    // Most reuses came after the idle close: the race was really run.
    assert!(stats.connections_accepted > CLIENTS as u64, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fin_race_answers_or_closes_unprocessed() {
    race(CloseMode::Fin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rst_race_answers_or_closes_unprocessed() {
    race(CloseMode::Rst).await;
}
