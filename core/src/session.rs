//! A valid access token on demand: refresh when due, single-flight, never losing a refresh token.
//!
//! Within a process, one caller refreshes and the others wait for it. Across processes the
//! store's lock does the same, and the store is re-read after taking the lock, so a second job
//! that waited simply uses what the first one saved. The refresh runs as its own task on the
//! host's [`Runtime`]: if the caller gives up, a rotated refresh token is still saved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::OAuthConfig;
use crate::env::{Clock, Runtime};
use crate::http::{HttpClient, TransportError};
use crate::secret::AccessToken;
use crate::store::{StoreError, TokenStore, Versioned};
use crate::token::{RefreshMode, TokenError, parse_token_response, refresh_request};
use crate::token_set::{Need, RenewalPolicy, TokenSet};

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Nothing is stored: nobody has consented yet for this profile.
    #[error("no tokens are stored for this profile; run `skysync login` (or `skysync import`) first")]
    NotLoggedIn,
    /// The refresh token expired.
    #[error("the refresh token expired on {expired_at}; someone must consent again (`skysync login`)")]
    RefreshTokenExpired {
        /// When it expired (RFC 3339).
        expired_at: String,
    },
    /// The stored tokens belong to another application.
    #[error(
        "the stored tokens were issued to application {stored}, but the configured client_id is {configured}; run `skysync login` for this application"
    )]
    WrongClient {
        /// client_id in the store.
        stored: String,
        /// configured client_id.
        configured: String,
    },
    /// The token endpoint refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token endpoint could not be reached.
    #[error("could not reach the token endpoint: {0}")]
    Transport(#[from] TransportError),
    /// The store failed.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// New tokens were received but could not be saved.
    #[error(
        "received new tokens but could not save them: {0}. The previous refresh token is kept; if this was a rotation, consent may be needed"
    )]
    SaveFailed(StoreError),
    /// A rotation's response was lost earlier, and the old refresh token is now refused.
    #[error(
        "the refresh token was rotated at {started_at}, but the response never arrived, so the new refresh token was lost and the stored one is no longer valid; someone must consent again (`skysync login`)"
    )]
    RotationLost {
        /// When the lost rotation was sent (RFC 3339).
        started_at: String,
    },
    /// The background refresh task went away (the runtime shut down).
    #[error("the token refresh was cancelled")]
    Cancelled,
}

impl SessionError {
    /// Whether a person must consent again (exit code 4 in the CLI).
    pub fn needs_consent(&self) -> bool {
        matches!(
            self,
            SessionError::NotLoggedIn
                | SessionError::RefreshTokenExpired { .. }
                | SessionError::WrongClient { .. }
                | SessionError::RotationLost { .. }
                | SessionError::Token(TokenError::ConsentRequired { .. })
        )
    }
}

/// Why a caller wants fresh tokens.
#[derive(Debug, Clone)]
enum Trigger {
    /// Refresh only if the policy says so.
    Due,
    /// The API answered 401 to this token.
    Rejected(AccessToken),
    /// Rotate now (`skysync renew`).
    Rotate,
}

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

/// Attempts for a preserving refresh that fails on the network or with a 5xx.
const PRESERVE_ATTEMPTS: u32 = 3;

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

    /// The renewal policy in use.
    pub fn policy(&self) -> RenewalPolicy {
        self.inner.parts.policy
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

    fn cached_fresh(&self) -> Option<TokenSet> {
        let now = self.inner.parts.clock.now();
        let cached = self.inner.cached.lock().expect("session cache");
        cached
            .as_ref()
            .filter(|v| due(&self.inner.parts.policy, &v.tokens, now) == Need::Nothing)
            .map(|v| v.tokens.clone())
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
        let now = parts.clock.now();
        let need = parts.policy.need(&current.tokens, now);
        if need == Need::Consent {
            let expired_at = current
                .tokens
                .refresh_expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            return Err(SessionError::RefreshTokenExpired { expired_at });
        }
        let by_policy = if need == Need::Rotate { RefreshMode::Rotate } else { RefreshMode::Preserve };
        let mode = match &trigger {
            Trigger::Due if due(&parts.policy, &current.tokens, now) == Need::Nothing => return Ok(current.tokens),
            Trigger::Due => by_policy,
            Trigger::Rejected(token) => {
                let same = current.tokens.access_token.as_ref().is_some_and(|t| t.ct_eq(token));
                if !same && need == Need::Nothing {
                    return Ok(current.tokens);
                }
                by_policy
            }
            Trigger::Rotate => RefreshMode::Rotate,
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

/// What a `Due` caller must do: the policy's answer, except that a refresh token issued with the
/// access token still in use is not rotated again before that access token is due. Otherwise a
/// refresh-token lifetime no longer than the renewal window would rotate on every call.
fn due(policy: &RenewalPolicy, tokens: &TokenSet, now: time::OffsetDateTime) -> Need {
    match policy.need(tokens, now) {
        Need::Rotate
            if tokens.usable_access_token(now, policy.access_skew).is_some()
                && tokens.last_refreshed_at.is_none_or(|at| tokens.refresh_obtained_at >= at) =>
        {
            Need::Nothing
        }
        need => need,
    }
}

impl Inner {
    async fn refresh(&self, current: Versioned, mode: RefreshMode) -> Result<TokenSet, SessionError> {
        let parts = &self.parts;
        let interrupted = current.tokens.rotation_started_at;
        let lost = |e: TokenError| match (e, interrupted) {
            (TokenError::ConsentRequired { .. }, Some(at)) => SessionError::RotationLost {
                started_at: at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            },
            (e, _) => SessionError::Token(e),
        };
        let request = refresh_request(&parts.oauth, &current.tokens.refresh_token, mode);
        let mut attempt = 0;
        let response = loop {
            attempt += 1;
            self.token_calls.fetch_add(1, Ordering::Relaxed);
            // A rotation whose response is lost may already have killed the old token, so only a
            // preserving refresh is retried; a failed rotation is retried by the next run.
            let retry = mode == RefreshMode::Preserve && attempt < PRESERVE_ATTEMPTS;
            let sent_at = parts.clock.now();
            match parts.http.execute(request.clone()).await {
                Ok(resp) => match parse_token_response(&request.url, &resp) {
                    Ok(r) => break r,
                    Err(e) if retry && e.is_transient() => {}
                    Err(e) => return Err(lost(e)),
                },
                Err(e) if retry => {
                    let _ = e;
                }
                Err(e) => {
                    if mode == RefreshMode::Rotate && !matches!(e, TransportError::TooLarge { .. }) {
                        // No answer at all: Blackbaud may have rotated and the new token is gone.
                        // Record it (the tokens themselves are unchanged) so the next refresh can
                        // say why the stored token stopped working, if it did.
                        let mut marked = current.tokens.clone();
                        marked.rotation_started_at = Some(sent_at);
                        let _best_effort = parts.store.save(&marked, Some(current.generation)).await;
                    }
                    return Err(e.into());
                }
            }
            parts.runtime.sleep(Duration::from_secs(1 << attempt)).await;
        };
        let next = current.tokens.after_refresh(response, parts.clock.now());
        // Saving must not be skipped: retry briefly on I/O errors before giving up.
        let mut save_attempt = 0;
        let generation = loop {
            save_attempt += 1;
            match parts.store.save(&next, Some(current.generation)).await {
                Ok(g) => break g,
                Err(StoreError::Io(_)) if save_attempt < 3 => parts.runtime.sleep(Duration::from_millis(200)).await,
                Err(e) => {
                    // Keep the new tokens in memory so this process can go on working.
                    *self.cached.lock().expect("session cache") =
                        Some(Versioned { tokens: next, generation: current.generation });
                    return Err(SessionError::SaveFailed(e));
                }
            }
        };
        *self.cached.lock().expect("session cache") = Some(Versioned { tokens: next.clone(), generation });
        Ok(next)
    }
}
