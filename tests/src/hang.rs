//! Requests that neither answered nor failed: hangs, told apart from
//! errors, each with the story of the connection it was on.
//!
//! A hang is worse than the race this project removes (the caller cannot
//! even retry), so every race counts hangs on their own and every
//! assertion on a [`Report`](crate::Report) fails on one, printing:
//! which connection the client gave the request (from
//! `capture_connection`), that connection's debug events (see
//! [`story`](crate::story)), and what the origin saw on it.

use std::fmt;
use std::net::SocketAddr;

use freshpool_origin::{ConnectionRecord, Origin};
use http::Request;
use hyper_util::client::legacy::connect::HttpInfo;

use crate::story;

/// Which connection a request was given, as far as the client said.
#[derive(Debug)]
pub enum Captured {
    /// hyper-util's legacy `Client` (with or without freshpool's
    /// `Connector`).
    Legacy(hyper_util::client::legacy::connect::CaptureConnection),
    /// `freshpool::Client`.
    Native(freshpool::CaptureConnection),
    /// Not asked: `RetryClient` watches its requests' connections itself
    /// with the one capture a request carries (a capture of the caller's
    /// would turn that guard off).
    Unasked,
}

impl Captured {
    /// Asks hyper-util's `Client` to report the connection of `request`.
    pub fn legacy<B>(request: &mut Request<B>) -> Captured {
        Captured::Legacy(hyper_util::client::legacy::connect::capture_connection(
            request,
        ))
    }

    /// Asks `freshpool::Client` to report the connection of `request`.
    pub fn native<B>(request: &mut Request<B>) -> Captured {
        Captured::Native(freshpool::capture_connection(request))
    }

    /// The connection the client gave the request, if it gave one yet.
    pub fn hang(&self) -> Hang {
        let mut extras = http::Extensions::new();
        let (assigned, id) = match self {
            Captured::Legacy(captured) => match captured.connection_metadata().as_ref() {
                Some(connected) => {
                    connected.get_extras(&mut extras);
                    let id = extras
                        .get::<freshpool_legacy::ConnectionInfo>()
                        .map(|info| info.id());
                    (true, id)
                }
                None => (false, None),
            },
            Captured::Native(captured) => match captured.connection_metadata() {
                Some(info) => {
                    info.get_extras(&mut extras);
                    (true, Some(info.id()))
                }
                None => (false, None),
            },
            Captured::Unasked => {
                return Hang {
                    request_id: String::new(),
                    assigned: true,
                    id: None,
                    local: None,
                    server: None,
                };
            }
        };
        Hang {
            request_id: String::new(),
            assigned,
            id,
            local: extras.get::<HttpInfo>().map(HttpInfo::local_addr),
            server: None,
        }
    }
}

/// A request that got no response and no error within its bound.
#[derive(Debug, Clone)]
pub struct Hang {
    /// The request's `x-request-id`.
    pub request_id: String,
    /// The client had given the request a connection.
    pub assigned: bool,
    /// That connection's freshpool id (`None` for hyper-util's own
    /// connector, which numbers nothing).
    pub id: Option<u64>,
    /// The connection's local address, by which the origin knows it.
    pub local: Option<SocketAddr>,
    /// What the origin recorded for that connection.
    pub server: Option<ConnectionRecord>,
}

impl Hang {
    /// Fills in what `origin` saw on the connection and whether it
    /// processed the request.
    pub fn with_server(mut self, origin: &Origin) -> Hang {
        if let Some(local) = self.local {
            self.server = origin
                .connections()
                .into_iter()
                .rev()
                .find(|record| record.peer == local);
        }
        self
    }
}

impl fmt::Display for Hang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "hang: request {}", self.request_id)?;
        if !self.assigned {
            writeln!(
                f,
                "  client: no connection was given to it (it waited for a checkout or a connect)"
            )?;
        } else if self.id.is_none() && self.local.is_none() {
            writeln!(f, "  client: its connection was not captured")?;
        } else {
            let id = self.id.map_or("-".to_owned(), |id| id.to_string());
            let local = self.local.map_or("?".to_owned(), |a| a.to_string());
            writeln!(f, "  client: connection {id}, local address {local}")?;
        }
        match &self.server {
            Some(record) => writeln!(
                f,
                "  server: connection #{} from {}: {} requests processed, {}",
                record.id,
                record.peer,
                record.requests,
                record
                    .closed
                    .as_ref()
                    .map_or("still open".to_owned(), |why| format!("closed: {why:?}"))
            )?,
            None if self.local.is_some() => writeln!(f, "  server: no record of that address")?,
            None => {}
        }
        if let Some(id) = self.id {
            let events = story::of(id);
            writeln!(f, "  events of connection {id} ({}):", events.len())?;
            for event in events {
                writeln!(f, "    {event}")?;
            }
        }
        Ok(())
    }
}

/// What one exchange of a race ended in, other than a response.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The client returned an error of this kind.
    Error(String),
    /// Nothing came back within the bound.
    Hang(Box<Hang>),
}

impl From<String> for Failure {
    fn from(kind: String) -> Failure {
        Failure::Error(kind)
    }
}
