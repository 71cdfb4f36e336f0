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
    /// A preserving refresh got new tokens that could not be saved. The stored refresh token was
    /// preserved, so it still works; only the new access token is lost.
    #[error(
        "received new tokens but could not save them: {0}. The refresh token was preserved, so the stored one still works"
    )]
    SaveFailed(StoreError),
    /// A rotation's new refresh token could not be saved in the store, and was written to a
    /// rescue file beside it instead, which the next run adopts.
    #[error(
        "the refresh token was rotated, but the new one could not be saved in the token store: {error}. It was written to {rescue_file} instead (mode 0600); the next skysync run adopts it automatically once the store is writable again. Do not delete that file: the stored refresh token no longer works"
    )]
    RotationRescued {
        /// Why the save failed.
        error: StoreError,
        /// Where the new tokens are.
        rescue_file: String,
    },
    /// A rotation's new refresh token could be saved nowhere: it is lost.
    #[error(
        "the refresh token was rotated, but the new one could not be saved: {error}; writing a rescue file failed too ({rescue_error}). The stored refresh token no longer works: fix the token directory (space, permissions), then consent again (`skysync login`)"
    )]
    RotationUnsaved {
        /// Why the save failed.
        error: StoreError,
        /// Why the rescue file failed.
        rescue_error: StoreError,
    },
    /// A rotation is only sent once its intent is on disk; the store refused that write.
    #[error("the token store is not writable, so the rotation was not sent (nothing changed): {0}")]
    StoreNotWritable(StoreError),
    /// A rotation's response was lost earlier, and the old refresh token is now refused.
    #[error(
        "the refresh token was rotated at {started_at}, but the response never arrived, so the new refresh token was lost and the stored one is no longer valid; someone must consent again (`skysync login`)"
    )]
    RotationLost {
        /// When the lost rotation was sent (RFC 3339).
        started_at: String,
    },
    /// An earlier refresh was refused (`invalid_grant`): the grant is dead.
    #[error(
        "the token endpoint refused this profile's refresh token at {refused_at} (invalid_grant: revoked, expired or replaced), so its tokens are not used any more; someone must consent again (`skysync login` or `skysync import`)"
    )]
    GrantRefused {
        /// When the refusal was recorded (RFC 3339).
        refused_at: String,
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
                | SessionError::RotationRescued { .. }
                | SessionError::RotationUnsaved { .. }
                | SessionError::GrantRefused { .. }
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
            .filter(|v| v.tokens.grant_refused_at.is_none())
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
        if let Some(refused_at) = current.tokens.grant_refused_at {
            // A dead grant's access token may be revoked too, and a refresh would only be refused
            // again (or, at a server that revokes on replay, do harm).
            return Err(match current.tokens.rotation_started_at {
                Some(at) => SessionError::RotationLost { started_at: rfc3339(at) },
                None => SessionError::GrantRefused { refused_at: rfc3339(refused_at) },
            });
        }
        let now = parts.clock.now();
        let need = parts.policy.need(&current.tokens, now);
        if need == Need::Consent {
            return Err(SessionError::RefreshTokenExpired { expired_at: rfc3339(current.tokens.refresh_expires_at) });
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

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Whether the server answered a rotation with an error that shows it did not rotate (a 4xx
/// other than `invalid_grant`), so the recorded intent can be dropped.
fn definitely_not_rotated(e: &TokenError) -> bool {
    matches!(e, TokenError::InvalidClient { .. })
        || matches!(e, TokenError::Server { status, .. } if (400..500).contains(status))
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
            // A rotation whose response is lost may already have killed the old token, so only a
            // preserving refresh is retried; a failed rotation is retried by the next run.
            let retry = mode == RefreshMode::Preserve && attempt < PRESERVE_ATTEMPTS;
            let error = match parts.http.execute(request.clone()).await {
                Ok(resp) => match parse_token_response(&request.url, &resp) {
                    Ok(r) => break r,
                    Err(e) if retry && e.is_transient() => None,
                    Err(e) => Some(e),
                },
                Err(_) if retry => None,
                // No answer at all: Blackbaud may have rotated and the new token is gone. The
                // recorded intent stays, so a later refusal is explained.
                Err(e) => return Err(e.into()),
            };
            if let Some(e) = error {
                return Err(self.refused(&current, interrupted, e).await);
            }
            parts.runtime.sleep(Duration::from_secs(1 << attempt)).await;
        };
        let next = current.tokens.after_refresh(response, parts.clock.now());
        let rotated = !next.refresh_token.ct_eq(&current.tokens.refresh_token);
        // Saving must not be skipped: retry briefly on I/O errors before giving up.
        let mut save_attempt = 0;
        let generation = loop {
            save_attempt += 1;
            match parts.store.save(&next, Some(current.generation)).await {
                Ok(g) => break g,
                Err(StoreError::Io(_)) if save_attempt < 3 => parts.runtime.sleep(Duration::from_millis(200)).await,
                Err(error) => {
                    // Keep the new tokens in memory so this process can go on working.
                    self.remember(next.clone(), current.generation);
                    if !rotated {
                        return Err(SessionError::SaveFailed(error));
                    }
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

    /// The token endpoint answered with an error: record what it means and explain it.
    async fn refused(
        &self,
        current: &Versioned,
        interrupted: Option<time::OffsetDateTime>,
        e: TokenError,
    ) -> SessionError {
        let now = self.parts.clock.now();
        match e {
            TokenError::ConsentRequired { .. } => {
                // The grant is dead: remember it, so `status` and `token` stop calling it healthy.
                let mut dead = current.tokens.clone();
                dead.grant_refused_at = Some(now);
                dead.rotation_started_at = interrupted;
                self.mark(current, dead).await;
                match interrupted {
                    Some(at) => SessionError::RotationLost { started_at: rfc3339(at) },
                    None => SessionError::Token(e),
                }
            }
            e => {
                if current.tokens.rotation_started_at != interrupted && definitely_not_rotated(&e) {
                    let mut cleared = current.tokens.clone();
                    cleared.rotation_started_at = interrupted;
                    self.mark(current, cleared).await;
                }
                SessionError::Token(e)
            }
        }
    }
}
