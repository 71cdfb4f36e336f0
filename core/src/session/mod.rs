//! A valid access token on demand: refresh when due, single-flight, never losing a refresh token.
//!
//! Within a process, one caller refreshes and the others wait for it. Across processes the
//! store's lock does the same, and the store is re-read after taking the lock, so a second job
//! that waited simply uses what the first one saved. The refresh runs as its own task on the
//! host's [`Runtime`]: if the caller gives up, a rotated refresh token is still saved.

//!
//! The decisions (use, refresh or rotate; retry, record or give up) are pure functions in
//! [`plan`]; this module is their async shell.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::OAuthConfig;
use crate::host::{Clock, Runtime};
use crate::http::HttpClient;
use crate::secret::AccessToken;
use crate::store::{TokenStore, Versioned};
use crate::token::{RefreshMode, parse_token_response, refresh_request};
use crate::token_set::{RenewalPolicy, TokenSet};

mod error;
pub mod plan;

pub use error::SessionError;
use plan::{AfterAttempt, AfterSaveFailure, Attempt, Step, Trigger};

/// What a session is built from.
#[derive(Clone)]
pub struct SessionParts {
    /// The application.
    pub oauth: OAuthConfig,
    /// Refresh and rotation windows.
    pub policy: RenewalPolicy,
    /// Transport for token calls.
    pub http: Arc<dyn HttpClient>,
    /// Where tokens live.
    pub store: Arc<dyn TokenStore>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Task runner and sleeper.
    pub runtime: Arc<dyn Runtime>,
}

impl std::fmt::Debug for SessionParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionParts").field("oauth", &self.oauth).field("policy", &self.policy).finish_non_exhaustive()
    }
}

struct Inner {
    parts: SessionParts,
    cached: Mutex<Option<Versioned>>,
    /// Held by the refresh task, not the caller, so a caller giving up does not let a second
    /// refresh start beside the one still running.
    flight: Arc<futures::lock::Mutex<()>>,
    token_calls: AtomicU64,
}

/// Hands out valid access tokens. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("client_id", &self.inner.parts.oauth.client_id).finish_non_exhaustive()
    }
}

impl Session {
    /// A session over `parts`.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn new(parts: SessionParts) -> Self {
        Self {
            inner: Arc::new(Inner {
                parts,
                cached: Mutex::new(None),
                flight: Arc::new(futures::lock::Mutex::new(())),
                token_calls: AtomicU64::new(0),
            }),
        }
    }

    /// How many token-endpoint calls this session has made.
    pub fn token_calls(&self) -> u64 {
        self.inner.token_calls.load(Ordering::Relaxed)
    }

    /// A valid access token, refreshing (or rotating, inside the renewal window) when due.
    pub async fn access_token(&self) -> Result<AccessToken, SessionError> {
        let tokens = self.ensure(Trigger::Due).await?;
        tokens.access_token.ok_or(SessionError::Cancelled)
    }

    /// The current token set, refreshed when due.
    pub async fn tokens(&self) -> Result<TokenSet, SessionError> {
        self.ensure(Trigger::Due).await
    }

    /// The API rejected `token` (401): get a different one, refreshing unless another caller
    /// already did.
    pub async fn rejected(&self, token: &AccessToken) -> Result<AccessToken, SessionError> {
        let tokens = self.ensure(Trigger::Rejected(token.clone())).await?;
        tokens.access_token.ok_or(SessionError::Cancelled)
    }

    /// Rotates the refresh token now (a refresh without `preserve_refresh_token`).
    pub async fn rotate(&self) -> Result<TokenSet, SessionError> {
        self.ensure(Trigger::Rotate).await
    }

    /// The cached tokens, if the policy says they can be used as they are.
    fn cached_fresh(&self) -> Option<TokenSet> {
        let now = self.inner.parts.clock.now();
        let cached = self.inner.cached.lock().expect("session cache");
        let cached = cached.as_ref()?;
        matches!(plan::plan(&Trigger::Due, &cached.tokens, &self.inner.parts.policy, now), Step::Use)
            .then(|| cached.tokens.clone())
    }

    async fn ensure(&self, trigger: Trigger) -> Result<TokenSet, SessionError> {
        if matches!(trigger, Trigger::Due)
            && let Some(t) = self.cached_fresh()
        {
            return Ok(t);
        }
        let flight = self.inner.flight.clone().lock_owned().await;
        if matches!(trigger, Trigger::Due)
            && let Some(t) = self.cached_fresh()
        {
            return Ok(t);
        }
        let parts = &self.inner.parts;
        let lock = parts.store.lock().await?;
        // Re-read under the lock: another process may have refreshed while we waited.
        let current = parts.store.load().await?.ok_or(SessionError::NotLoggedIn)?;
        if current.tokens.client_id != parts.oauth.client_id {
            return Err(SessionError::WrongClient {
                stored: current.tokens.client_id.clone(),
                configured: parts.oauth.client_id.clone(),
            });
        }
        *self.inner.cached.lock().expect("session cache") = Some(current.clone());
        let mode = match plan::plan(&trigger, &current.tokens, &parts.policy, parts.clock.now()) {
            Step::Use => return Ok(current.tokens),
            Step::Fail(e) => return Err(e),
            Step::Refresh(mode) => mode,
        };

        let (tx, rx) = futures::channel::oneshot::channel();
        let inner = self.inner.clone();
        parts.runtime.spawn(Box::pin(async move {
            let result = inner.refresh(current, mode).await;
            drop(lock);
            drop(flight);
            let _ = tx.send(result);
        }));
        rx.await.unwrap_or(Err(SessionError::Cancelled))
    }
}

impl Inner {
    fn remember(&self, tokens: TokenSet, generation: u64) {
        *self.cached.lock().expect("session cache") = Some(Versioned { tokens, generation });
    }

    /// Saves `tokens` over `current`, best effort: used for markers whose loss only costs a
    /// clearer message later.
    async fn mark(&self, current: &Versioned, tokens: TokenSet) {
        if let Ok(generation) = self.parts.store.save(&tokens, Some(current.generation)).await {
            self.remember(tokens, generation);
        }
    }

    async fn refresh(&self, current: Versioned, mode: RefreshMode) -> Result<TokenSet, SessionError> {
        let parts = &self.parts;
        // A rotation recorded by an earlier run that never learnt its outcome.
        let interrupted = current.tokens.rotation_started_at;
        let mut current = current;
        if mode == RefreshMode::Rotate {
            // Durably record the intent before anything is sent: if this process dies, or the
            // response is lost after Blackbaud rotated, the next run can say what happened. The
            // write also proves the store is writable, so a rotated token is not received
            // into a store that cannot keep it.
            let mut marked = current.tokens.clone();
            marked.rotation_started_at = Some(parts.clock.now());
            let generation =
                parts.store.save(&marked, Some(current.generation)).await.map_err(SessionError::StoreNotWritable)?;
            current = Versioned { tokens: marked, generation };
            self.remember(current.tokens.clone(), generation);
        }
        let request = refresh_request(&parts.oauth, &current.tokens.refresh_token, mode);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            self.token_calls.fetch_add(1, Ordering::Relaxed);
            let outcome = match parts.http.execute(request.clone()).await {
                Ok(resp) => Attempt::Answered(parse_token_response(&request.url, &resp).map(Box::new)),
                Err(e) => Attempt::NoAnswer(e),
            };
            match plan::after_attempt(mode, attempt, outcome) {
                AfterAttempt::Save(response) => break *response,
                AfterAttempt::RetryAfter(wait) => parts.runtime.sleep(wait).await,
                AfterAttempt::Refused(e) => {
                    let (record, error) = plan::refusal(&current.tokens, interrupted, e, parts.clock.now());
                    if let Some(tokens) = record {
                        self.mark(&current, tokens).await;
                    }
                    return Err(error);
                }
                AfterAttempt::Unanswered(e) => return Err(e.into()),
            }
        };
        let next = current.tokens.after_refresh(response, parts.clock.now());
        let rotated = !next.refresh_token.ct_eq(&current.tokens.refresh_token);
        let mut save_attempt = 0;
        let generation = loop {
            save_attempt += 1;
            let error = match parts.store.save(&next, Some(current.generation)).await {
                Ok(g) => break g,
                Err(error) => error,
            };
            match plan::after_save_failure(save_attempt, error, rotated) {
                AfterSaveFailure::RetryAfter(wait) => parts.runtime.sleep(wait).await,
                AfterSaveFailure::Report(error) => {
                    // Keep the new tokens in memory so this process can go on working.
                    self.remember(next, current.generation);
                    return Err(error);
                }
                AfterSaveFailure::Rescue(error) => {
                    self.remember(next.clone(), current.generation);
                    // The stored refresh token is dead now: the new one must reach the disk.
                    return Err(match parts.store.rescue(&next).await {
                        Ok(rescue_file) => SessionError::RotationRescued { error, rescue_file },
                        Err(rescue_error) => SessionError::RotationUnsaved { error, rescue_error },
                    });
                }
            }
        };
        self.remember(next.clone(), generation);
        Ok(next)
    }
}
