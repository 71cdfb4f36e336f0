//! Calling the SKY API: headers, and what to do with each answer (401, 429, quota 403, 5xx).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use crate::config::ApiConfig;
use crate::env::{Clock, Entropy, Runtime};
use crate::http::{HttpClient, HttpRequest, HttpResponse, Method, TransportError, redacted_url};
use crate::secret::AccessToken;
use crate::session::{Session, SessionError};

/// What an API response means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Success,
    /// 401: the access token was rejected (or the subscription key is wrong).
    Unauthorized {
        /// Whether the message blames the subscription key (refreshing will not help).
        subscription_key: bool,
        /// The server's message.
        message: String,
    },
    /// 429: wait and try again.
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 403 "Out of call volume quota": stop for the day.
    QuotaExhausted {
        /// When the quota replenishes, from `Retry-After` or the message.
        retry_after: Option<Duration>,
        /// The server's message.
        message: String,
    },
    /// 5xx (and 408): retry with backoff.
    Transient {
        /// HTTP status.
        status: u16,
    },
    /// Any other failure: retrying will not help.
    Failed {
        /// HTTP status.
        status: u16,
        /// The server's message, or a safe excerpt of the body.
        message: String,
    },
}

/// Reads Blackbaud's error message out of one of its several error shapes.
pub fn error_message(response: &HttpResponse) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&response.body) {
        let pick = |v: &serde_json::Value| -> Option<String> {
            for key in ["message", "Message", "error_description", "title", "detail", "error"] {
                if let Some(s) = v.get(key).and_then(|m| m.as_str()) {
                    return Some(crate::sanitize::server_text(s));
                }
            }
            None
        };
        if let Some(m) = pick(&v) {
            return m;
        }
        if let Some(first) = v.as_array().and_then(|a| a.first()).or_else(|| v.get("errors").and_then(|e| e.get(0)))
            && let Some(m) = pick(first)
        {
            return m;
        }
    }
    response.body_excerpt()
}

/// Parses `Retry-After` (delta-seconds; HTTP dates are not used by Blackbaud).
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs)
}

/// Parses "Quota will be replenished in HH:MM:SS" from a quota message.
pub fn quota_replenish(message: &str) -> Option<Duration> {
    let tail = message.split("replenished in").nth(1)?.trim().trim_end_matches('.');
    let parts: Vec<u64> = tail.split(':').map(|p| p.trim().parse().ok()).collect::<Option<_>>()?;
    match parts.as_slice() {
        [h, m, s] => Some(Duration::from_secs(h * 3600 + m * 60 + s)),
        [d, h, m, s] => Some(Duration::from_secs(d * 86400 + h * 3600 + m * 60 + s)),
        _ => None,
    }
}

/// Classifies a response.
pub fn classify(response: &HttpResponse) -> Verdict {
    match response.status {
        200..=299 => Verdict::Success,
        401 => {
            let message = error_message(response);
            Verdict::Unauthorized {
                subscription_key: message.to_ascii_lowercase().contains("subscription key"),
                message,
            }
        }
        429 => Verdict::RateLimited { retry_after: retry_after(response) },
        403 => {
            let message = error_message(response);
            if message.contains("Out of call volume quota") {
                let retry_after = retry_after(response).or_else(|| quota_replenish(&message));
                Verdict::QuotaExhausted { retry_after, message }
            } else {
                Verdict::Failed { status: 403, message }
            }
        }
        408 | 500..=599 => Verdict::Transient { status: response.status },
        status => Verdict::Failed { status, message: error_message(response) },
    }
}

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

/// " (replenishes in 1h 02m 03s)" unless Blackbaud's message already says when.
fn replenish_suffix(message: &str, retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) if !message.contains("replenished in") => format!(" (replenishes in {})", human_duration(d)),
        _ => String::new(),
    }
}

/// "1h 02m 03s".
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_rate_limited: 20,
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// The longest spacing a [`Pacer`] uses.
const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

/// A shared pace for all requests of a client: at most `rate` calls per second, slowing down
/// after each 429 and recovering slowly.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<PacerState>,
    floor: Duration,
}

#[derive(Debug)]
struct PacerState {
    interval: Duration,
    next_slot: Option<OffsetDateTime>,
}

impl Pacer {
    /// A pacer for `per_second` calls per second (0 = unlimited).
    pub fn new(per_second: f64) -> Self {
        // A tiny rate would overflow `Duration` (and the slot arithmetic): one call a day is slow enough.
        let floor = if per_second > 0.0 {
            Duration::try_from_secs_f64(1.0 / per_second).unwrap_or(MAX_INTERVAL).min(MAX_INTERVAL)
        } else {
            Duration::ZERO
        };
        Self { state: Mutex::new(PacerState { interval: floor, next_slot: None }), floor }
    }

    /// Reserves the next slot at or after `now`; returns how long to wait for it.
    pub fn reserve(&self, now: OffsetDateTime) -> Duration {
        let mut st = self.state.lock().expect("pacer");
        let slot = match st.next_slot {
            Some(s) if s > now => s,
            _ => now,
        };
        st.next_slot = Some(slot + st.interval);
        let wait = slot - now;
        if wait.is_positive() { wait.unsigned_abs() } else { Duration::ZERO }
    }

    /// A 429 arrived: hold everyone until `retry_after` has passed and slow down by half.
    pub fn throttled(&self, now: OffsetDateTime, retry_after: Duration) {
        let mut st = self.state.lock().expect("pacer");
        let base = st.interval.max(Duration::from_millis(50));
        // Slow down, capped at 5 s between calls, but never faster than the configured pace.
        st.interval = (base * 3 / 2).min(Duration::from_secs(5)).max(self.floor);
        let resume = now + retry_after;
        if st.next_slot.is_none_or(|s| s < resume) {
            st.next_slot = Some(resume);
        }
    }

    /// A call succeeded: drift back toward the configured pace.
    pub fn succeeded(&self) {
        let mut st = self.state.lock().expect("pacer");
        if st.interval > self.floor {
            st.interval = (st.interval * 19 / 20).max(self.floor);
        }
    }

    /// The current spacing between calls.
    pub fn interval(&self) -> Duration {
        self.state.lock().expect("pacer").interval
    }
}

/// Counters a caller can report.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct ApiCounters {
    /// Requests sent (each retry counts).
    pub calls: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Retries after 5xx or network errors.
    pub retries: u64,
    /// 401 answers that led to a refresh.
    pub unauthorized: u64,
}

/// Counters of the calls made on behalf of one caller (say, one synced entity), filled in by
/// [`ApiClient::send_with`]. They count exactly what the client-wide [`ApiCounters`] count, at the
/// same moments, so the stats of every caller of a client add up to its counters.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    rate_limited: AtomicU64,
    retries: AtomicU64,
    unauthorized: AtomicU64,
}

impl CallStats {
    /// Fresh, zeroed stats.
    pub fn new() -> Self {
        Self::default()
    }

    /// What has been counted so far.
    pub fn snapshot(&self) -> ApiCounters {
        ApiCounters {
            calls: self.calls.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
        }
    }
}

/// A SKY API client: subscription key, bearer token, pacing and retries.
#[derive(Clone)]
pub struct ApiClient {
    session: Session,
    http: Arc<dyn HttpClient>,
    runtime: Arc<dyn Runtime>,
    clock: Arc<dyn Clock>,
    entropy: Arc<dyn Entropy>,
    config: ApiConfig,
    retry: RetryPolicy,
    pacer: Arc<Pacer>,
    budget: Option<u64>,
    /// Run totals, shared by clones; every caller's [`CallStats`] adds up to them.
    totals: Arc<CallStats>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("base", &self.config.base.as_str()).finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client. `per_second` paces all calls through this client and its clones.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session: Session,
        http: Arc<dyn HttpClient>,
        runtime: Arc<dyn Runtime>,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        config: ApiConfig,
        per_second: f64,
    ) -> Self {
        Self {
            session,
            http,
            runtime,
            clock,
            entropy,
            config,
            retry: RetryPolicy::default(),
            pacer: Arc::new(Pacer::new(per_second)),
            budget: None,
            totals: Arc::default(),
        }
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Stops sending once `budget` calls have been made.
    pub fn with_budget(mut self, budget: Option<u64>) -> Self {
        self.budget = budget;
        self
    }

    /// The session behind the client.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Counters so far (shared by clones).
    pub fn counters(&self) -> ApiCounters {
        self.totals.snapshot()
    }

    /// Counts one event both in the run totals and in the caller's stats.
    fn count(&self, stats: &CallStats, counter: impl Fn(&CallStats) -> &AtomicU64) {
        counter(&self.totals).fetch_add(1, Ordering::Relaxed);
        counter(stats).fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves a path (`/constituent/v1/constituents?limit=1`) or an absolute URL (a
    /// `next_link`) against the API base. Absolute URLs must stay under the base's origin.
    pub fn resolve(&self, path_or_url: &str) -> Result<Url, ApiError> {
        let base = &self.config.base;
        if let Ok(abs) = Url::parse(path_or_url) {
            if abs.origin() != base.origin() {
                return Err(ApiError::ForeignUrl(redacted_url(&abs)));
            }
            return Ok(abs);
        }
        let rel = path_or_url.trim_start_matches('/');
        let mut joined = base.clone();
        if !joined.path().ends_with('/') {
            let p = format!("{}/", joined.path());
            joined.set_path(&p);
        }
        let url = joined
            .join(rel)
            .map_err(|e| ApiError::Malformed { url: path_or_url.to_owned(), problem: e.to_string() })?;
        // `\\host` is scheme-relative for http(s) URLs, so even a path can name another host.
        if url.origin() != base.origin() {
            return Err(ApiError::ForeignUrl(redacted_url(&url)));
        }
        Ok(url)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.retry.base_delay.saturating_mul(1 << attempt.min(16)).min(self.retry.max_delay);
        let mut b = [0u8; 4];
        self.entropy.fill(&mut b);
        let frac = f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX);
        cap.mul_f64(0.5 + frac / 2.0)
    }

    /// Sends one API call, handling pacing, 401 (refresh once), 429 (wait `Retry-After`),
    /// quota 403 (stop), and 5xx/network errors (backoff with jitter). Returns the 2xx response.
    pub async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, ApiError> {
        self.send_with(method, path_or_url, body, &CallStats::default()).await
    }

    /// [`send`](Self::send), also counting every attempt (retries, 429s and the re-try after a
    /// 401 included) in `stats` as well as in the client's [`counters`](Self::counters).
    pub async fn send_with(
        &self,
        method: Method,
        path_or_url: &str,
        body: Option<Vec<u8>>,
        stats: &CallStats,
    ) -> Result<HttpResponse, ApiError> {
        let url = self.resolve(path_or_url)?;
        let shown = redacted_url(&url);
        let mut token = self.session.access_token().await?;
        let mut refreshed = false;
        let mut attempts = 0u32;
        let mut limited = 0u32;
        loop {
            // Take the call from the budget before waiting for a pacer slot: concurrent callers
            // that checked first and counted after their wait would each overshoot it.
            match self.budget {
                Some(budget) => {
                    if self
                        .totals
                        .calls
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| (c < budget).then_some(c + 1))
                        .is_err()
                    {
                        return Err(ApiError::BudgetSpent { budget });
                    }
                }
                None => {
                    self.totals.calls.fetch_add(1, Ordering::Relaxed);
                }
            }
            stats.calls.fetch_add(1, Ordering::Relaxed);
            let wait = self.pacer.reserve(self.clock.now());
            if !wait.is_zero() {
                self.runtime.sleep(wait).await;
            }
            let request = self.request(method, url.clone(), &token, body.clone());
            let response = match self.http.execute(request).await {
                Ok(r) => r,
                Err(e @ TransportError::TooLarge { .. }) => return Err(e.into()),
                Err(e) => {
                    attempts += 1;
                    if attempts >= self.retry.max_attempts {
                        return Err(ApiError::Unavailable { url: shown, attempts, last: e.to_string() });
                    }
                    self.count(stats, |c| &c.retries);
                    self.runtime.sleep(self.backoff(attempts)).await;
                    continue;
                }
            };
            match classify(&response) {
                Verdict::Success => {
                    self.pacer.succeeded();
                    return Ok(response);
                }
                Verdict::Unauthorized { subscription_key: true, message } => {
                    return Err(ApiError::SubscriptionKey { message });
                }
                Verdict::Unauthorized { message, .. } => {
                    if refreshed {
                        return Err(ApiError::Unauthorized { message });
                    }
                    self.count(stats, |c| &c.unauthorized);
                    token = self.session.rejected(&token).await?;
                    refreshed = true;
                }
                Verdict::RateLimited { retry_after } => {
                    self.count(stats, |c| &c.rate_limited);
                    limited += 1;
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    if limited > self.retry.max_rate_limited || wait > self.retry.max_retry_after {
                        return Err(ApiError::RateLimited { attempts: limited });
                    }
                    self.pacer.throttled(self.clock.now(), wait);
                }
                Verdict::QuotaExhausted { retry_after, message } => {
                    return Err(ApiError::QuotaExhausted { retry_after, message });
                }
                Verdict::Transient { status } => {
                    attempts += 1;
                    if attempts >= self.retry.max_attempts {
                        return Err(ApiError::Unavailable {
                            url: shown,
                            attempts,
                            last: format!("HTTP {status}: {}", error_message(&response)),
                        });
                    }
                    self.count(stats, |c| &c.retries);
                    self.runtime.sleep(self.backoff(attempts)).await;
                }
                Verdict::Failed { status, message } => {
                    return Err(ApiError::Http { method: method.as_str(), url: shown, status, message });
                }
            }
        }
    }

    /// GETs a JSON document.
    pub async fn get_json(&self, path_or_url: &str) -> Result<serde_json::Value, ApiError> {
        let response = self.send(Method::Get, path_or_url, None).await?;
        json_body(&response, path_or_url)
    }

    fn request(&self, method: Method, url: Url, token: &AccessToken, body: Option<Vec<u8>>) -> HttpRequest {
        let mut req = HttpRequest::get(url)
            .header("Bb-Api-Subscription-Key", self.config.subscription_key.secret())
            .header("Authorization", format!("Bearer {}", token.secret()))
            .header("Accept", "application/json");
        req.method = method;
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json");
            req.body = b;
        }
        req
    }
}

/// The JSON body of a 2xx response, or a clear error for HTML pages and other surprises.
pub fn json_body(response: &HttpResponse, what: &str) -> Result<serde_json::Value, ApiError> {
    let url = what.split('?').next().unwrap_or(what).to_owned();
    if response.status == 204 || response.body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    if !response.is_json() {
        return Err(ApiError::Malformed { url, problem: format!("expected JSON, got {}", response.body_excerpt()) });
    }
    serde_json::from_slice(&response.body)
        .map_err(|e| ApiError::Malformed { url, problem: format!("invalid JSON: {e}") })
}
