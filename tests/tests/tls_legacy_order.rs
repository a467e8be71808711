//! `freshpool_legacy::Connector` wrapped inside the TLS layer sees only
//! ciphertext and can protect nothing; it must say so, once, and count it.
//! Wrapped around the TLS connector (the right order) it follows the
//! HTTP/1 messages and says nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use freshpool_legacy::Connector;
use freshpool_origin::Origin;
use freshpool_tests::tls::{client_config, http_for_tls, https_connector};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Counts the warnings that name the wrapping order.
#[derive(Clone, Default)]
struct Warnings(Arc<AtomicUsize>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Warnings {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::WARN
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        if *event.metadata().level() == Level::WARN && message.0.contains("inside a TLS connector")
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

async fn tls_origin() -> Origin {
    Origin::builder()
        .tls(true)
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("TLS origin starts")
}

/// Two GETs, the first closing its connection, so two connections are made.
async fn two_connections<C>(client: &Client<C, Empty<Bytes>>, origin: &Origin)
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    for close in ["1", "0"] {
        let request = http::Request::get(format!("{}/", origin.base_url()))
            .header("x-close", close)
            .body(Empty::new())
            .expect("valid request");
        let response = client.request(request).await.expect("a response");
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.expect("the body");
    }
    assert_eq!(origin.stats().connections_accepted, 2);
}

// Current-thread: every task runs where the subscriber is set.
#[tokio::test(flavor = "current_thread")]
async fn connector_inside_tls_warns_once_and_counts_each_connection() {
    let warnings = Warnings::default();
    let _default = tracing::subscriber::set_default(warnings.clone());
    let origin = tls_origin().await;

    let inside = Connector::new(http_for_tls());
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(client_config(&origin))
        .https_only()
        .enable_http1()
        .wrap_connector(inside.clone());
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    two_connections(&client, &origin).await;

    let stats = inside.stats();
    assert_eq!(stats.connections, 2, "{stats:?}");
    assert_eq!(stats.wrong_order, 2, "{stats:?}");
    assert_eq!(warnings.0.load(Ordering::SeqCst), 1, "warned once");
    origin.shutdown().await;
}

#[tokio::test(flavor = "current_thread")]
async fn connector_around_tls_follows_and_stays_quiet() {
    let warnings = Warnings::default();
    let _default = tracing::subscriber::set_default(warnings.clone());
    let origin = tls_origin().await;

    let outside = Connector::new(https_connector(&origin));
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(outside.clone());
    two_connections(&client, &origin).await;

    let stats = outside.stats();
    assert_eq!(stats.connections, 2, "{stats:?}");
    assert_eq!(stats.wrong_order, 0, "{stats:?}");
    assert_eq!(stats.untracked, 0, "every exchange followed: {stats:?}");
    assert_eq!(warnings.0.load(Ordering::SeqCst), 0);
    origin.shutdown().await;
}
