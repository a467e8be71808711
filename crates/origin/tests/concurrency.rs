//! Hundreds of concurrent connections, in real time on a multi-threaded
//! runtime: every request is processed exactly once.

mod support;

use std::time::Duration;

use freshpool_origin::Origin;
use support::Conn;
use tokio::task::JoinSet;

const CONNECTIONS: usize = 300;
const REQUESTS_PER_CONNECTION: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_connections() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(10))
        .body_size(100)
        .start()
        .await
        .expect("start origin");
    let origin = std::sync::Arc::new(origin);
    // Open every connection first, so they are all open at once.
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(&origin).await);
    }
    let mut clients = JoinSet::new();
    for (c, mut conn) in conns.into_iter().enumerate() {
        clients.spawn(async move {
            for r in 0..REQUESTS_PER_CONNECTION {
                conn.get(&format!("x-request-id: {c}-{r}\r\n")).await;
                let response = conn.response().await.expect("response");
                assert_eq!(response.body.len(), 100);
            }
            // Kept open until every client is done, so that all of them
            // are open at once.
            conn
        });
    }
    let mut finished = Vec::with_capacity(CONNECTIONS);
    let all = async {
        while let Some(done) = clients.join_next().await {
            finished.push(done.expect("client task"));
        }
    };
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("bounded run");

    let stats = origin.stats();
    assert_eq!(stats.connections_accepted, CONNECTIONS as u64);
    assert_eq!(stats.max_connections_open, CONNECTIONS as u64);
    assert_eq!(
        stats.requests_processed,
        (CONNECTIONS * REQUESTS_PER_CONNECTION) as u64
    );
    assert_eq!(origin.request_ids(), CONNECTIONS * REQUESTS_PER_CONNECTION);
    assert!(origin.duplicates().is_empty());
    assert!(
        origin
            .connections()
            .iter()
            .all(|c| c.requests == REQUESTS_PER_CONNECTION as u32)
    );
    origin.shutdown().await;
    assert_eq!(origin.stats().tasks_alive, 0);
    drop(finished);
}
