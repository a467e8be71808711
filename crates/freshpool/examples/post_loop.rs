//! POSTs to a local origin whose idle timeout equals the request interval,
//! the schedule that makes pooled clients fail, and prints what the pool
//! did about it.
//!
//! `cargo run -p freshpool --example post_loop`

use std::time::Duration;

use bytes::Bytes;
use freshpool_origin::Origin;
use http_body_util::{BodyExt, Full};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let idle = Duration::from_millis(200);
    let origin = Origin::builder().idle_timeout(idle).start().await?;
    let client = freshpool::Client::builder().build_http::<Full<Bytes>>()?;
    let url = format!("{}/orders", origin.base_url());

    let mut failures = 0;
    for i in 0..25 {
        let request = http::Request::post(url.as_str())
            .header("x-request-id", format!("order-{i}"))
            .body(Full::new(Bytes::from_static(b"{\"qty\": 1}")))?;
        match client.request(request).await {
            Ok(response) => {
                response.into_body().collect().await?;
            }
            Err(error) => {
                failures += 1;
                eprintln!("request {i} failed: {error}");
            }
        }
        tokio::time::sleep(idle).await;
    }

    let stats = client.stats();
    let ours = stats.origin(&origin.base_url()).expect("one origin");
    println!("failures: {failures}");
    println!(
        "duplicates at the origin: {}",
        origin.stats().duplicate_requests
    );
    println!("connections opened: {}", ours.connections_opened);
    println!("server closes observed: {}", ours.server_closes_observed);
    println!(
        "retired before the server's deadline: {}",
        ours.retired_by_expiry
    );
    if let Some((estimate, source)) = ours.estimate {
        println!("idle-timeout estimate: {estimate:?} ({source})");
    }
    origin.shutdown().await;
    Ok(())
}
