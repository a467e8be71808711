//! Joined byte streams: an HTTP/1.1 upgrade passed through, and CONNECT
//! tunnels.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::ResponseBody;
use crate::failure::{Failure, chain};

/// Once both sides have switched protocols, copies bytes between them
/// until either ends, in a task of its own.
pub(crate) fn join_upgrades(client: OnUpgrade, upstream: OnUpgrade) {
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(%error, "upgrade did not complete");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(up, down, "upgraded connection ended"),
            Err(error) => tracing::debug!(%error, "upgraded connection failed"),
        }
    });
}

/// Opens a TCP connection to the authority of a CONNECT request, and
/// answers `200` once it is open; the tunnel then runs in a task of its
/// own.
pub(crate) async fn connect<T, B>(
    mut req: Request<T>,
    timeout: Option<Duration>,
) -> Result<Response<ResponseBody<B>>, Failure> {
    debug_assert_eq!(req.method(), Method::CONNECT);
    let Some(authority) = req.uri().authority().cloned() else {
        return Err(Failure::TunnelFailed(
            "CONNECT needs a host:port target".to_owned(),
        ));
    };
    if authority.port_u16().is_none() {
        return Err(Failure::TunnelFailed(format!(
            "CONNECT target {authority} has no port"
        )));
    }
    let connecting = TcpStream::connect(authority.as_str());
    let stream = match timeout {
        Some(after) => tokio::time::timeout(after, connecting)
            .await
            .map_err(|_| Failure::Timeout(after))?,
        None => connecting.await,
    }
    .map_err(|e| Failure::TunnelFailed(format!("{authority}: {}", chain(&e))))?;
    let _ = stream.set_nodelay(true);
    let client = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let client = match client.await {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(%error, "CONNECT client did not switch to the tunnel");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut stream = stream;
        match tokio::io::copy_bidirectional(&mut client, &mut stream).await {
            Ok((up, down)) => tracing::debug!(%authority, up, down, "tunnel ended"),
            Err(error) => tracing::debug!(%authority, %error, "tunnel failed"),
        }
    });
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}
