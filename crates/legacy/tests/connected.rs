//! The inner connector's `Connected` passes through the adapter: its proxy
//! flag, its ALPN result and its extras survive, and the adapter's own
//! extra is added. An HTTP/2 connection is never followed.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use freshpool_legacy::{ConnectionInfo, Connector};
use freshpool_origin::Advertise;
use http::Uri;
use http_body_util::BodyExt;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector, HttpInfo};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Body, http, origin};
use tokio::net::TcpStream;
use tower_service::Service;

/// An extra of the inner connector's own.
#[derive(Debug, Clone, PartialEq)]
struct Tag(&'static str);

/// A connector that says what a proxy or TLS connector would.
#[derive(Clone)]
struct Claiming {
    http: HttpConnector,
    proxy: bool,
    h2: bool,
}

struct ClaimingIo {
    inner: TokioIo<TcpStream>,
    proxy: bool,
    h2: bool,
}

impl Service<Uri> for Claiming {
    type Response = ClaimingIo;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<ClaimingIo, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let (proxy, h2) = (self.proxy, self.h2);
        Box::pin(async move {
            let inner = connecting.await?;
            Ok(ClaimingIo { inner, proxy, h2 })
        })
    }
}

impl Connection for ClaimingIo {
    fn connected(&self) -> Connected {
        let connected = self.inner.connected().proxy(self.proxy).extra(Tag("inner"));
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for ClaimingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for ClaimingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn proxy_flag_alpn_and_inner_extras_survive() {
    let origin = origin(Duration::from_secs(5), Advertise::None).await;
    let uri: Uri = origin.base_url().parse().expect("valid url");
    for (proxy, h2) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut connector = Connector::new(Claiming {
            http: http(),
            proxy,
            h2,
        });
        let io = connector.call(uri.clone()).await.expect("connects");
        let connected = io.connected();
        assert_eq!(connected.is_proxied(), proxy);
        assert_eq!(connected.is_negotiated_h2(), h2);

        let mut extensions = http::Extensions::new();
        connected.get_extras(&mut extensions);
        assert_eq!(extensions.get::<Tag>(), Some(&Tag("inner")));
        let info = extensions
            .get::<ConnectionInfo>()
            .expect("the adapter's extra");
        assert_eq!(info.id(), io.info().id());
        assert_eq!(info.is_followed(), !h2, "HTTP/2 is never followed");
        let http_info = extensions.get::<HttpInfo>().expect("HttpConnector's extra");
        assert_eq!(http_info.remote_addr(), origin.addr());
    }
    origin.shutdown().await;
}

#[tokio::test]
async fn responses_carry_every_extra_and_http2_passes_through() {
    let origin = origin(Duration::from_secs(5), Advertise::None).await;
    for h2 in [false, true] {
        let connector = Connector::new(Claiming {
            http: http(),
            proxy: false,
            h2,
        });
        let client: Client<_, Body> =
            Client::builder(TokioExecutor::new()).build(connector.clone());
        let mut ids = Vec::new();
        for _ in 0..3 {
            let response = client
                .get(format!("{}/", origin.base_url()).parse().expect("url"))
                .await
                .expect("response");
            assert_eq!(response.version() == http::Version::HTTP_2, h2);
            assert_eq!(response.extensions().get::<Tag>(), Some(&Tag("inner")));
            let info = response
                .extensions()
                .get::<ConnectionInfo>()
                .expect("the adapter's extra")
                .clone();
            response.into_body().collect().await.expect("body");
            assert_eq!(info.is_followed(), !h2);
            ids.push(info.id());
        }
        assert!(
            ids.iter().all(|&id| id == ids[0]),
            "one connection: {ids:?}"
        );
        let stats = connector.stats();
        assert_eq!(stats.connections, 1);
        assert_eq!(stats.untracked, u64::from(h2));
    }
    assert_eq!(origin.stats().h2_connections, 1);
    origin.shutdown().await;
}
