//! Why an API call failed, in words a person can act on.

use std::time::Duration;

use crate::http::TransportError;
use crate::session::SessionError;

/// Why an API call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No valid access token.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The subscription key was refused.
    #[error(
        "the SKY API refused the subscription key ({message}); check `subscription_key` (Bb-Api-Subscription-Key) in your developer account's subscriptions"
    )]
    SubscriptionKey {
        /// The server's message.
        message: String,
    },
    /// Still 401 after a fresh token.
    #[error(
        "the SKY API rejected a freshly refreshed access token ({message}); the application may have been removed from the environment"
    )]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// The daily call quota is used up.
    #[error("out of SKY API call quota: {message}{}", replenish_suffix(message, *retry_after))]
    QuotaExhausted {
        /// When it replenishes.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// 429s outlasted the retry budget.
    #[error("the SKY API kept rate-limiting requests after {attempts} attempts")]
    RateLimited {
        /// Attempts made.
        attempts: u32,
    },
    /// The per-run call budget is spent.
    #[error("the per-run call budget of {budget} calls is spent")]
    BudgetSpent {
        /// The budget.
        budget: u64,
    },
    /// The next call would go over the `daily_quota` setting (a planned stop, like the budget).
    #[error("the daily_quota of {quota} calls is reached for today ({used} used); the next call would go over it")]
    DailyQuotaReached {
        /// The setting.
        quota: u64,
        /// Calls counted today when the run stopped.
        used: u64,
    },
    /// A failure the server will repeat.
    #[error("{method} {url} failed with HTTP {status}: {message}")]
    Http {
        /// Method.
        method: &'static str,
        /// URL without query values.
        url: String,
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Network failures or 5xx outlasted the retry budget.
    #[error("{url}: gave up after {attempts} attempts: {last}")]
    Unavailable {
        /// URL without query values.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// No connection could be made for the whole connect window: the host refuses connections,
    /// does not resolve, or cannot be reached.
    #[error(
        "cannot connect to {host} (gave up after {attempts} attempts): {last}. Check that the API URL \
         is right and that {host} is up and reachable from this machine (DNS, firewall, proxy)"
    )]
    Unreachable {
        /// The host (and port) called.
        host: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A response that is not what the SKY API sends.
    #[error("unexpected response from {url}: {problem}")]
    Malformed {
        /// URL without query values.
        url: String,
        /// What was wrong.
        problem: String,
    },
    /// A URL outside the API base (never send the bearer token elsewhere).
    #[error("refusing to send credentials to {0}: it is not under the configured API base URL")]
    ForeignUrl(String),
    /// The transport failed in a way that is not retried.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl ApiError {
    /// Whether this is a stop the configuration asked for (`--call-budget`, `daily_quota`):
    /// the run ends cleanly and is not a failure.
    pub fn is_planned_stop(&self) -> bool {
        matches!(self, ApiError::BudgetSpent { .. } | ApiError::DailyQuotaReached { .. })
    }
}

/// " (replenishes in 1h 02m 03s)" unless Blackbaud's message already says when.
fn replenish_suffix(message: &str, retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) if !message.contains("replenished in") => format!(" (replenishes in {})", hours_minutes_seconds(d)),
        _ => String::new(),
    }
}

/// "1h 02m 03s" (the CLI's reports format durations the same way, in its own output module).
fn hours_minutes_seconds(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}
