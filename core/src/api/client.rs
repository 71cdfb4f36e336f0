//! The async shell of an API call: budget, pace, headers and the bearer token, then whatever
//! the call's [`CallRetry`] decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::api::retry::{Action, CallRetry, Outcome, RetryNotice, RetryPolicy, jittered};
use crate::api::{ApiError, Pacer, Verdict, classify, json_body};
use crate::config::ApiConfig;
use crate::host::{Clock, Entropy, Runtime};
use crate::http::{HttpClient, HttpRequest, HttpResponse, Method, redacted_url};
use crate::secret::AccessToken;
use crate::session::Session;

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
    /// `(calls left today, the daily quota)` when a daily quota limits the run.
    daily: Option<(u64, u64)>,
    /// Run totals, shared by clones; every caller's [`CallStats`] adds up to them.
    totals: Arc<CallStats>,
    /// Told of every retry and 429 wait (the CLI logs a warning).
    on_retry: Option<RetryListener>,
}

/// Told of each retry (see [`ApiClient::with_retry_notices`]).
pub type RetryListener = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

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
            daily: None,
            totals: Arc::default(),
            on_retry: None,
        }
    }

    /// Calls `notify` before each retry and 429 wait, with the attempt, the wait and the reason.
    pub fn with_retry_notices(mut self, notify: RetryListener) -> Self {
        self.on_retry = Some(notify);
        self
    }

    fn notify(&self, retry: &CallRetry, wait: Duration) {
        if let Some(notify) = &self.on_retry {
            notify(&retry.notice(wait));
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

    /// Stops sending once `left` more calls would go over `quota` for today (a planned stop,
    /// [`ApiError::DailyQuotaReached`]); the tighter of this and the budget applies.
    pub fn with_daily_quota(mut self, left: u64, quota: u64) -> Self {
        self.daily = Some((left, quota));
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

    /// A jittered wait of at most `cap`, drawn from the client's entropy.
    fn backoff(&self, cap: Duration) -> Duration {
        let mut b = [0u8; 4];
        self.entropy.fill(&mut b);
        jittered(cap, u32::from_le_bytes(b))
    }

    /// Takes one call from the budget, counting it in the run totals and in `stats`. Done before
    /// waiting for a pacer slot: concurrent callers that checked first and counted after their
    /// wait would each overshoot it.
    fn take_call(&self, stats: &CallStats) -> Result<(), ApiError> {
        let daily_left = self.daily.map(|(left, _)| left);
        match (self.budget, daily_left) {
            (None, None) => {
                self.totals.calls.fetch_add(1, Ordering::Relaxed);
            }
            (budget, daily_left) => {
                let limit = budget.unwrap_or(u64::MAX).min(daily_left.unwrap_or(u64::MAX));
                if let Err(made) = self
                    .totals
                    .calls
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| (c < limit).then_some(c + 1))
                {
                    return Err(match (self.daily, budget) {
                        (Some((left, quota)), b) if b.is_none_or(|b| left < b) => {
                            ApiError::DailyQuotaReached { quota, used: quota - left + made }
                        }
                        _ => ApiError::BudgetSpent { budget: limit },
                    });
                }
            }
        }
        stats.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
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
        let mut retry = CallRetry::new(self.retry, method, redacted_url(&url));
        let mut token = self.session.access_token().await?;
        loop {
            self.take_call(stats)?;
            let wait = self.pacer.reserve(self.clock.now());
            if !wait.is_zero() {
                self.runtime.sleep(wait).await;
            }
            let request = self.request(method, url.clone(), &token, body.clone());
            let (response, outcome) = match self.http.execute(request).await {
                Ok(response) => {
                    let verdict = classify(&response);
                    (Some(response), Outcome::Answer(verdict))
                }
                Err(e) => (None, Outcome::Transport(e)),
            };
            if matches!(outcome, Outcome::Answer(Verdict::RateLimited { .. })) {
                // Every 429 counts, the one that makes the call give up too.
                self.count(stats, |c| &c.rate_limited);
            }
            match retry.next(outcome) {
                Action::Done => {
                    self.pacer.succeeded();
                    return Ok(response.expect("only an answer is a success"));
                }
                Action::RetryAfter(cap) => {
                    self.count(stats, |c| &c.retries);
                    let wait = self.backoff(cap);
                    self.notify(&retry, wait);
                    self.runtime.sleep(wait).await;
                }
                Action::Throttle(wait) => {
                    self.notify(&retry, wait);
                    self.pacer.throttled(self.clock.now(), wait);
                }
                Action::Refresh => {
                    self.count(stats, |c| &c.unauthorized);
                    token = self.session.rejected(&token).await?;
                }
                Action::Stop(error) => return Err(error),
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
