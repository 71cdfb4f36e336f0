//! The retry rules of one API call, as a pure state machine: the client's async shell sends,
//! classifies the answer into an [`Outcome`], and does what [`CallRetry::next`] says.
//!
//! The machine holds no clock, transport or randomness: a 5xx asks for a backoff of up to a
//! duration, and the shell picks the jittered wait ([`jittered`]) from its entropy.

use std::time::Duration;

use serde::Serialize;

use crate::api::{ApiError, Verdict};
use crate::http::{Method, TransportError};

/// Retry limits for API calls.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RetryPolicy {
    /// Attempts per call for 5xx and network errors.
    pub max_attempts: u32,
    /// First backoff delay (doubled each time, with full jitter).
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// 429 answers tolerated per call.
    pub max_rate_limited: u32,
    /// Longest `Retry-After` honoured for a 429 before giving up.
    pub max_retry_after: Duration,
    /// Most backoff (the sum of the caps) spent on attempts that could not connect at all, before
    /// the call gives up: a host that refuses connections is down or misconfigured, and waiting
    /// the full retry budget in silence helps nobody.
    pub connect_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limited: 20,
            max_retry_after: Duration::from_secs(300),
            connect_window: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The longest backoff before retry number `attempt`: the base delay doubled per attempt,
    /// capped at the longest delay.
    pub fn backoff_cap(&self, attempt: u32) -> Duration {
        self.base_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay)
    }
}

/// A wait between half of `cap` and `cap`, placed by `random` (any `u32`, uniformly drawn), so
/// that callers that failed together do not retry together.
pub fn jittered(cap: Duration, random: u32) -> Duration {
    let frac = f64::from(random) / f64::from(u32::MAX);
    cap.mul_f64(0.5 + frac / 2.0)
}

/// A retry about to happen, for the host to tell the user (the machine itself logs nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNotice {
    /// The call's URL, redacted.
    pub url: String,
    /// Which retry this is (1 for the first), counting 429s and failures alike.
    pub retry: u32,
    /// How long the call waits first.
    pub wait: Duration,
    /// Why: the failure or the status (no secrets: transport errors and server messages only).
    pub reason: String,
}

/// What one attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// No answer: the transport failed.
    Transport(TransportError),
    /// The server answered; see [`classify`](fn@crate::api::classify).
    Answer(Verdict),
}

/// What the shell does next.
#[derive(Debug)]
pub enum Action {
    /// A 2xx: hand the response to the caller.
    Done,
    /// A 5xx or no answer: wait a jittered backoff of at most this long, then try again.
    RetryAfter(Duration),
    /// A 429: hold every call of the client this long (slowing its pace), then try again.
    Throttle(Duration),
    /// A first 401: get a different access token, then try again. Asked for once per call.
    Refresh,
    /// Stop: the call failed (quota, a refused key, a failure the server will repeat, or the
    /// retries ran out).
    Stop(ApiError),
}

/// The retry state of one call.
#[derive(Debug, Clone)]
pub struct CallRetry {
    policy: RetryPolicy,
    method: Method,
    url: String,
    /// Failed attempts (5xx and no answer).
    attempts: u32,
    /// 429 answers.
    limited: u32,
    refreshed: bool,
    /// Backoff caps spent on attempts that could not connect.
    connect_waited: Duration,
    /// Why the last attempt is being retried.
    last: String,
}

impl CallRetry {
    /// The state before the first attempt of `method` `url` (shown in errors: pass it redacted).
    pub fn new(policy: RetryPolicy, method: Method, url: String) -> Self {
        Self {
            policy,
            method,
            url,
            attempts: 0,
            limited: 0,
            refreshed: false,
            connect_waited: Duration::ZERO,
            last: String::new(),
        }
    }

    /// The notice for the retry [`CallRetry::next`] just asked for, waiting `wait`.
    pub fn notice(&self, wait: Duration) -> RetryNotice {
        RetryNotice { url: self.url.clone(), retry: self.attempts + self.limited, wait, reason: self.last.clone() }
    }

    /// What to do after an attempt came to `outcome`.
    pub fn next(&mut self, outcome: Outcome) -> Action {
        let verdict = match outcome {
            // A body over the limit will be over it again.
            Outcome::Transport(e @ TransportError::TooLarge { .. }) => return Action::Stop(e.into()),
            Outcome::Transport(TransportError::Connect { host, message }) => return self.connect_failed(host, message),
            Outcome::Transport(e) => return self.backoff(e.to_string()),
            Outcome::Answer(verdict) => verdict,
        };
        match verdict {
            Verdict::Success => Action::Done,
            Verdict::Unauthorized { subscription_key: true, message } => {
                Action::Stop(ApiError::SubscriptionKey { message })
            }
            Verdict::Unauthorized { message, .. } if self.refreshed => Action::Stop(ApiError::Unauthorized { message }),
            Verdict::Unauthorized { .. } => {
                self.refreshed = true;
                Action::Refresh
            }
            Verdict::RateLimited { retry_after } => {
                self.limited += 1;
                self.last = "HTTP 429 (rate limited)".into();
                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                if self.limited > self.policy.max_rate_limited || wait > self.policy.max_retry_after {
                    Action::Stop(ApiError::RateLimited { attempts: self.limited })
                } else {
                    Action::Throttle(wait)
                }
            }
            Verdict::QuotaExhausted { retry_after, message } => {
                Action::Stop(ApiError::QuotaExhausted { retry_after, message })
            }
            Verdict::Transient { status, message } => self.backoff(format!("HTTP {status}: {message}")),
            Verdict::Failed { status, message } => {
                Action::Stop(ApiError::Http { method: self.method.as_str(), url: self.url.clone(), status, message })
            }
        }
    }

    /// No connection: back off like any failure, but within the connect window.
    fn connect_failed(&mut self, host: String, message: String) -> Action {
        let cap = self.policy.backoff_cap(self.attempts + 1);
        if self.connect_waited + cap > self.policy.connect_window || self.attempts + 1 >= self.policy.max_attempts {
            return Action::Stop(ApiError::Unreachable { host, attempts: self.attempts + 1, last: message });
        }
        self.connect_waited += cap;
        self.backoff(format!("cannot connect to {host}: {message}"))
    }

    /// A retryable failure: back off, unless it was the last attempt.
    fn backoff(&mut self, last: String) -> Action {
        self.last.clone_from(&last);
        self.attempts += 1;
        if self.attempts >= self.policy.max_attempts {
            return Action::Stop(ApiError::Unavailable { url: self.url.clone(), attempts: self.attempts, last });
        }
        Action::RetryAfter(self.policy.backoff_cap(self.attempts))
    }
}
