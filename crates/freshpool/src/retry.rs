//! When a failed request may be sent again: RFC 9112 §9.3.1, and no more.
//!
//! > A user agent MUST NOT automatically retry a request with a
//! > non-idempotent method unless it has some means to know that the
//! > request semantics are actually idempotent, regardless of the method,
//! > or some means to detect that the original request was never applied.
//!
//! The decision is pure ([`RetryPolicy::decide`]); the client supplies the
//! facts it *knows* about the failed attempt ([`Attempt`]): whether the
//! connection was reused, whether hyper handed the request back unsent, how
//! many bytes of it reached the socket, whether any response byte arrived,
//! and whether the body can be replayed. Nothing is guessed. [`Retries`]
//! carries one request through its attempts (its replayable body, the
//! retries made, the decision after each failure); both freshpool clients
//! drive their attempt loops with it.

use std::fmt;

use http::{HeaderMap, Method};

use crate::replay::ReplayBody;

/// The header that marks a non-idempotent request as safe to repeat
/// (draft-ietf-httpapi-idempotency-key-header).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// What the client knows about one failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The attempt ran on a connection taken from the pool (not a fresh one).
    pub reused: bool,
    /// hyper handed the request back without sending it.
    pub returned_unsent: bool,
    /// The server said it did not process the request: an HTTP/2
    /// `REFUSED_STREAM`, or a `GOAWAY` whose last stream id is below the
    /// request's stream (RFC 9113 §8.7).
    pub refused: bool,
    /// Bytes of this request the socket accepted.
    pub bytes_written: u64,
    /// At least one byte of a response arrived.
    pub response_started: bool,
    /// Retries already made for this request (0 on the first failure).
    pub retries_done: u32,
    /// The request body can be sent again (empty, fully buffered, or within
    /// the replay buffer's cap).
    pub body_replayable: bool,
}

/// The rule of RFC 9112 §9.3.1 under which a retry is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// hyper handed the request back: it never left the client.
    Unsent,
    /// The server refused the HTTP/2 stream unprocessed (RFC 9113 §8.7).
    Refused,
    /// Not one byte of the request was written to the socket.
    NothingWritten,
    /// The method is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE).
    Idempotent,
    /// The request carries an `Idempotency-Key` header.
    IdempotencyKey,
}

impl Rule {
    /// Every rule, in the order [`RetryPolicy::decide`] tries them.
    pub const ALL: [Rule; 5] = [
        Rule::Unsent,
        Rule::Refused,
        Rule::NothingWritten,
        Rule::Idempotent,
        Rule::IdempotencyKey,
    ];

    /// A short, stable name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::Unsent => "unsent",
            Rule::Refused => "refused",
            Rule::NothingWritten => "nothing-written",
            Rule::Idempotent => "idempotent",
            Rule::IdempotencyKey => "idempotency-key",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Rule::Unsent => 0,
            Rule::Refused => 1,
            Rule::NothingWritten => 2,
            Rule::Idempotent => 3,
            Rule::IdempotencyKey => 4,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a failed request was not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Retries are switched off (`retries(0)`).
    Disabled,
    /// The failure happened on a freshly connected connection: the server
    /// is not closing an idle connection, something else is wrong. (A
    /// request the server provably did not process, unsent or refused, is
    /// retried all the same.)
    FreshConnection,
    /// Part of a response had arrived: the server processed the request.
    ResponseStarted,
    /// The failure was a retry's: a failed retry is not retried again
    /// (RFC 9112 §9.3.1), unless hyper handed it back unsent or an HTTP/2
    /// server refused it unprocessed.
    RetryFailed,
    /// The retry budget for this request is spent.
    Exhausted,
    /// The request may have reached the server and its method is not
    /// idempotent (and it carries no `Idempotency-Key`).
    NotIdempotent,
    /// The body was streamed beyond the replay buffer's cap and cannot be
    /// sent again.
    BodyNotReplayable,
}

impl Refusal {
    /// A short, stable name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::Disabled => "disabled",
            Refusal::FreshConnection => "fresh-connection",
            Refusal::ResponseStarted => "response-started",
            Refusal::RetryFailed => "retry-failed",
            Refusal::Exhausted => "exhausted",
            Refusal::NotIdempotent => "not-idempotent",
            Refusal::BodyNotReplayable => "body-not-replayable",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Disabled => "retries are disabled",
            Refusal::FreshConnection => "the connection was fresh, not reused",
            Refusal::ResponseStarted => "a response had started",
            Refusal::RetryFailed => "a failed retry is not retried again",
            Refusal::Exhausted => "the retry budget is spent",
            Refusal::NotIdempotent => {
                "the request may have been processed and its method is not idempotent"
            }
            Refusal::BodyNotReplayable => "the request body is too large to replay",
        })
    }
}

/// The retry rules in force for a client.
///
/// ```
/// use freshpool::retry::{Attempt, Refusal, RetryPolicy, Rule};
/// use http::{HeaderMap, Method};
///
/// let policy = RetryPolicy::default();
/// let headers = HeaderMap::new();
/// let attempt = Attempt {
///     method: &Method::POST,
///     headers: &headers,
///     reused: true,
///     returned_unsent: false,
///     refused: false,
///     bytes_written: 120,
///     response_started: false,
///     retries_done: 0,
///     body_replayable: true,
/// };
/// // The POST reached the socket: it may have been processed.
/// assert_eq!(policy.decide(&attempt), Err(Refusal::NotIdempotent));
/// // Had nothing been written, it could not have been.
/// let unwritten = Attempt { bytes_written: 0, ..attempt };
/// assert_eq!(policy.decide(&unwritten), Ok(Rule::NothingWritten));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries allowed per request. Default 2. A retry whose request may
    /// have been processed is final (RFC 9112 §9.3.1): only requests hyper
    /// handed back unsent, or HTTP/2 streams refused unprocessed, are
    /// retried more than once.
    pub retries: u32,
    /// Whether an `Idempotency-Key` header makes any method retryable.
    /// Default `true`.
    pub idempotency_key: bool,
    /// Whether requests that provably never left the client are retried.
    /// Default `true` (hyper-util's `retry_canceled_requests`).
    pub unsent: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 2,
            idempotency_key: true,
            unsent: true,
        }
    }
}

impl RetryPolicy {
    /// Decides whether the failed `attempt` may be retried on a fresh
    /// connection, and under which rule.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] naming the first rule that forbids the retry.
    pub fn decide(&self, attempt: &Attempt<'_>) -> Result<Rule, Refusal> {
        if self.retries == 0 {
            return Err(Refusal::Disabled);
        }
        if attempt.response_started {
            return Err(Refusal::ResponseStarted);
        }
        let unsent = self.unsent && attempt.returned_unsent;
        // A request the server provably did not process may go again
        // whatever connection it failed on; otherwise a fresh connection's
        // failure is not the stale-connection race a retry is for.
        if !attempt.reused && !unsent && !attempt.refused {
            return Err(Refusal::FreshConnection);
        }
        // Only a request the server provably did not process (never sent,
        // or refused) may be tried once more after a retry.
        if attempt.retries_done > 0 && !unsent && !attempt.refused {
            return Err(Refusal::RetryFailed);
        }
        if attempt.retries_done >= self.retries {
            return Err(Refusal::Exhausted);
        }
        let rule = if unsent {
            Rule::Unsent
        } else if attempt.refused {
            Rule::Refused
        } else if self.unsent && attempt.bytes_written == 0 {
            Rule::NothingWritten
        } else if is_idempotent(attempt.method) {
            Rule::Idempotent
        } else if self.idempotency_key && attempt.headers.contains_key(IDEMPOTENCY_KEY) {
            Rule::IdempotencyKey
        } else {
            return Err(Refusal::NotIdempotent);
        };
        if !attempt.body_replayable {
            return Err(Refusal::BodyNotReplayable);
        }
        Ok(rule)
    }
}

/// What a client knows about the connection and the bytes of one failed
/// attempt: the facts of an [`Attempt`] that are not the request's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// See [`Attempt::reused`].
    pub reused: bool,
    /// See [`Attempt::returned_unsent`].
    pub returned_unsent: bool,
    /// See [`Attempt::refused`].
    pub refused: bool,
    /// See [`Attempt::bytes_written`].
    pub bytes_written: u64,
    /// See [`Attempt::response_started`].
    pub response_started: bool,
}

/// One request's way through its attempts: the body each attempt sends,
/// how many retries were made, and the decision after each failure.
///
/// The attempt loop of every freshpool client drives one (freshpool's
/// [`Client`](crate::Client) and `freshpool-legacy`'s `RetryClient`), so
/// the rules, the counting that makes a failed retry final, and the body
/// replay are one piece of code; a client of your own can drive one too.
///
/// ```
/// use bytes::Bytes;
/// use freshpool::retry::{Facts, Refusal, Retries, RetryPolicy, Rule};
/// use http::{HeaderMap, Method};
/// use http_body_util::Full;
///
/// let mut retries = Retries::new(RetryPolicy::default(), Full::new(Bytes::from("hi")), 1024);
/// let body = retries.body().expect("a full body replays");
/// # drop(body);
/// // The first attempt met a close on a reused connection before any
/// // response byte: a GET goes again, once.
/// let stale = Facts {
///     reused: true,
///     returned_unsent: false,
///     refused: false,
///     bytes_written: 80,
///     response_started: false,
/// };
/// let headers = HeaderMap::new();
/// assert_eq!(retries.after_failure(&Method::GET, &headers, stale), Ok(Rule::Idempotent));
/// assert_eq!(retries.attempt(), 2);
/// // The retry failed too: that is final.
/// let fresh = Facts { reused: false, ..stale };
/// assert_eq!(
///     retries.after_failure(&Method::GET, &headers, fresh),
///     Err(Refusal::FreshConnection)
/// );
/// ```
#[derive(Debug)]
pub struct Retries<B> {
    policy: RetryPolicy,
    replay: ReplayBody<B>,
    done: u32,
}

impl<B: http_body::Body> Retries<B> {
    /// Starts a request whose body is `body`, recording up to
    /// `replay_cap` bytes of it for a retry (see [`ReplayBody`]).
    pub fn new(policy: RetryPolicy, body: B, replay_cap: usize) -> Retries<B> {
        Retries {
            policy,
            replay: ReplayBody::new(body, replay_cap),
            done: 0,
        }
    }

    /// The body for the next attempt; `None` only once the body can no
    /// longer be replayed, which [`after_failure`](Self::after_failure)
    /// refuses first.
    pub fn body(&self) -> Option<ReplayBody<B>> {
        self.replay.replay()
    }

    /// The number of the attempt running (or that just failed), from 1.
    pub fn attempt(&self) -> u32 {
        self.done + 1
    }

    /// Retries made so far.
    pub fn retries_done(&self) -> u32 {
        self.done
    }

    /// The rules in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Decides whether the attempt that just failed, with `method`,
    /// `headers` and `facts`, may go again; a retry allowed is counted.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] that stops the request.
    pub fn after_failure(
        &mut self,
        method: &Method,
        headers: &HeaderMap,
        facts: Facts,
    ) -> Result<Rule, Refusal> {
        let rule = self.policy.decide(&Attempt {
            method,
            headers,
            reused: facts.reused,
            returned_unsent: facts.returned_unsent,
            refused: facts.refused,
            bytes_written: facts.bytes_written,
            response_started: facts.response_started,
            retries_done: self.done,
            body_replayable: self.replay.is_replayable(),
        })?;
        self.done += 1;
        Ok(rule)
    }
}

/// RFC 9110 §9.2.2: the idempotent methods.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt<'a>(method: &'a Method, headers: &'a HeaderMap) -> Attempt<'a> {
        Attempt {
            method,
            headers,
            reused: true,
            returned_unsent: false,
            refused: false,
            bytes_written: 100,
            response_started: false,
            retries_done: 0,
            body_replayable: true,
        }
    }

    #[test]
    fn each_rule_allows_and_each_refusal_refuses() {
        let p = RetryPolicy::default();
        let none = HeaderMap::new();
        let mut keyed = HeaderMap::new();
        keyed.insert(IDEMPOTENCY_KEY, "abc".parse().unwrap());

        let post = attempt(&Method::POST, &none);
        assert_eq!(p.decide(&post), Err(Refusal::NotIdempotent));
        assert_eq!(
            p.decide(&Attempt {
                returned_unsent: true,
                ..post
            }),
            Ok(Rule::Unsent)
        );
        assert_eq!(
            p.decide(&Attempt {
                bytes_written: 0,
                ..post
            }),
            Ok(Rule::NothingWritten)
        );
        assert_eq!(
            p.decide(&attempt(&Method::PUT, &none)),
            Ok(Rule::Idempotent)
        );
        assert_eq!(
            p.decide(&attempt(&Method::POST, &keyed)),
            Ok(Rule::IdempotencyKey)
        );
        let no_keys = RetryPolicy {
            idempotency_key: false,
            ..p
        };
        assert_eq!(
            no_keys.decide(&attempt(&Method::POST, &keyed)),
            Err(Refusal::NotIdempotent)
        );

        let get = attempt(&Method::GET, &none);
        assert_eq!(
            p.decide(&Attempt {
                reused: false,
                ..get
            }),
            Err(Refusal::FreshConnection)
        );
        // Refused or unsent, the server did not process it: fresh or not.
        assert_eq!(
            p.decide(&Attempt {
                reused: false,
                refused: true,
                ..get
            }),
            Ok(Rule::Refused)
        );
        assert_eq!(
            p.decide(&Attempt {
                reused: false,
                refused: true,
                retries_done: 1,
                ..get
            }),
            Ok(Rule::Refused)
        );
        assert_eq!(
            p.decide(&Attempt {
                response_started: true,
                returned_unsent: true,
                ..get
            }),
            Err(Refusal::ResponseStarted)
        );
        assert_eq!(
            p.decide(&Attempt {
                retries_done: 1,
                ..get
            }),
            Err(Refusal::RetryFailed)
        );
        assert_eq!(
            p.decide(&Attempt {
                retries_done: 1,
                returned_unsent: true,
                ..get
            }),
            Ok(Rule::Unsent)
        );
        assert_eq!(
            p.decide(&Attempt {
                retries_done: 2,
                returned_unsent: true,
                ..get
            }),
            Err(Refusal::Exhausted)
        );
        assert_eq!(
            p.decide(&Attempt {
                body_replayable: false,
                ..get
            }),
            Err(Refusal::BodyNotReplayable)
        );
        let off = RetryPolicy { retries: 0, ..p };
        assert_eq!(off.decide(&get), Err(Refusal::Disabled));
    }

    #[test]
    fn idempotent_methods_are_exactly_rfc_9110s() {
        for m in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
            assert!(is_idempotent(&m.parse().unwrap()), "{m}");
        }
        for m in ["POST", "PATCH", "CONNECT", "PURGE"] {
            assert!(!is_idempotent(&m.parse().unwrap()), "{m}");
        }
    }
}
