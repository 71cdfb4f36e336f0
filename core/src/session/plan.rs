//! The session's decisions as pure functions of values: whether stored tokens can be used as
//! they are, how to refresh them, what each token-endpoint answer and failed save leads to. The
//! async shell in [`Session`](crate::session::Session) takes the locks, talks to the token
//! endpoint and the store, and does what these say.

use std::time::Duration;

use time::OffsetDateTime;

use crate::http::TransportError;
use crate::secret::AccessToken;
use crate::session::SessionError;
use crate::store::StoreError;
use crate::token::{RefreshMode, TokenError, TokenResponse};
use crate::token_set::{Need, RenewalPolicy, TokenSet};

/// Tries for a preserving refresh that fails on the network or with a 5xx.
pub const PRESERVE_ATTEMPTS: u32 = 3;
/// Tries to save new tokens when the store fails with an I/O error.
pub const SAVE_ATTEMPTS: u32 = 3;

/// Why a caller wants tokens.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Valid tokens; refresh only if the policy says so.
    Due,
    /// The API answered 401 to this token.
    Rejected(AccessToken),
    /// Rotate now (a person asked for it).
    Rotate,
}

/// What to do with the stored tokens.
#[derive(Debug)]
pub enum Step {
    /// Hand them out as they are.
    Use,
    /// Call the token endpoint.
    Refresh(RefreshMode),
    /// Nothing can be handed out.
    Fail(SessionError),
}

/// What `trigger` calls for, given the `stored` tokens (already checked to be this
/// application's) at `now`. The policy's [`RenewalPolicy::need`] is the only renewal rule.
pub fn plan(trigger: &Trigger, stored: &TokenSet, policy: &RenewalPolicy, now: OffsetDateTime) -> Step {
    if let Some(refused_at) = stored.grant_refused_at {
        // A dead grant's access token may be revoked too, and a refresh would only be refused
        // again (or, at a server that revokes on replay, do harm).
        return Step::Fail(match stored.rotation_started_at {
            Some(at) => SessionError::RotationLost { started_at: rfc3339(at) },
            None => SessionError::GrantRefused { refused_at: rfc3339(refused_at) },
        });
    }
    let need = policy.need(stored, now);
    let by_policy = match need {
        Need::Consent => {
            return Step::Fail(SessionError::RefreshTokenExpired { expired_at: rfc3339(stored.refresh_expires_at) });
        }
        Need::Rotate => RefreshMode::Rotate,
        Need::Refresh | Need::Nothing => RefreshMode::Preserve,
    };
    match trigger {
        Trigger::Due if need == Need::Nothing => Step::Use,
        Trigger::Due => Step::Refresh(by_policy),
        Trigger::Rejected(token) => {
            let same = stored.access_token.as_ref().is_some_and(|t| t.ct_eq(token));
            // Someone else already replaced the rejected token.
            if !same && need == Need::Nothing { Step::Use } else { Step::Refresh(by_policy) }
        }
        Trigger::Rotate => Step::Refresh(RefreshMode::Rotate),
    }
}

/// What one call to the token endpoint came to.
#[derive(Debug)]
pub enum Attempt {
    /// The endpoint answered (parsed).
    Answered(Result<Box<TokenResponse>, TokenError>),
    /// No answer at all.
    NoAnswer(TransportError),
}

/// What to do after a call to the token endpoint.
#[derive(Debug)]
pub enum AfterAttempt {
    /// New tokens: save them.
    Save(Box<TokenResponse>),
    /// Wait this long and call again.
    RetryAfter(Duration),
    /// The endpoint refused: record what that means ([`refusal`]) and stop.
    Refused(TokenError),
    /// No answer and no retry: stop. The recorded rotation intent, if any, stays.
    Unanswered(TransportError),
}

/// What call number `attempt` (from 1) of a `mode` refresh leads to. Only a preserving refresh
/// is retried: a rotation whose response was lost may already have killed the old token, so a
/// failed rotation is retried by the next run.
pub fn after_attempt(mode: RefreshMode, attempt: u32, outcome: Attempt) -> AfterAttempt {
    let retry = mode == RefreshMode::Preserve && attempt < PRESERVE_ATTEMPTS;
    let backoff = Duration::from_secs(1 << attempt.min(16));
    match outcome {
        Attempt::Answered(Ok(response)) => AfterAttempt::Save(response),
        Attempt::Answered(Err(e)) if retry && e.is_transient() => AfterAttempt::RetryAfter(backoff),
        Attempt::Answered(Err(e)) => AfterAttempt::Refused(e),
        Attempt::NoAnswer(_) if retry => AfterAttempt::RetryAfter(backoff),
        // No answer at all: Blackbaud may have rotated and the new token is gone.
        Attempt::NoAnswer(e) => AfterAttempt::Unanswered(e),
    }
}

/// The token endpoint refused `current` (whose earlier, interrupted rotation is `interrupted`):
/// the token set to record, if any (best effort), and the error to report.
pub fn refusal(
    current: &TokenSet,
    interrupted: Option<OffsetDateTime>,
    e: TokenError,
    now: OffsetDateTime,
) -> (Option<TokenSet>, SessionError) {
    match e {
        TokenError::ConsentRequired { .. } => {
            // The grant is dead: remember it, so `status` and `token` stop calling it healthy.
            let mut dead = current.clone();
            dead.grant_refused_at = Some(now);
            dead.rotation_started_at = interrupted;
            let error = match interrupted {
                Some(at) => SessionError::RotationLost { started_at: rfc3339(at) },
                None => SessionError::Token(e),
            };
            (Some(dead), error)
        }
        e => {
            // This run's rotation intent can go if the answer shows nothing was rotated.
            let cleared = (current.rotation_started_at != interrupted && definitely_not_rotated(&e)).then(|| {
                let mut cleared = current.clone();
                cleared.rotation_started_at = interrupted;
                cleared
            });
            (cleared, SessionError::Token(e))
        }
    }
}

/// What to do after save number `attempt` (from 1) of new tokens failed.
#[derive(Debug)]
pub enum AfterSaveFailure {
    /// Wait this long and save again.
    RetryAfter(Duration),
    /// Give up: the refresh token was kept, so the stored one still works.
    Report(SessionError),
    /// Give up on the store: the refresh token was rotated and the stored one is dead, so the new
    /// one must go to the store's rescue place.
    Rescue(StoreError),
}

/// Saving must not be skipped: I/O errors are retried briefly before giving up.
pub fn after_save_failure(attempt: u32, error: StoreError, rotated: bool) -> AfterSaveFailure {
    match error {
        StoreError::Io(_) if attempt < SAVE_ATTEMPTS => AfterSaveFailure::RetryAfter(Duration::from_millis(200)),
        error if rotated => AfterSaveFailure::Rescue(error),
        error => AfterSaveFailure::Report(SessionError::SaveFailed(error)),
    }
}

/// Whether the server answered a rotation with an error that shows it did not rotate (a 4xx
/// other than `invalid_grant`), so the recorded intent can be dropped.
fn definitely_not_rotated(e: &TokenError) -> bool {
    matches!(e, TokenError::InvalidClient { .. })
        || matches!(e, TokenError::Server { status, .. } if (400..500).contains(status))
}

pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
