//! The session's renewal decisions, with plain values: no transport, store or runtime.

use std::time::Duration;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::token_set::{fresh_set, response};
use crate::http::TransportError;
use crate::secret::AccessToken;
use crate::session::SessionError;
use crate::session::plan::{
    AfterAttempt, AfterSaveFailure, Attempt, Step, Trigger, after_attempt, after_save_failure, plan, refusal,
};
use crate::store::StoreError;
use crate::token::{OAuthErrorBody, RefreshMode, TokenError};
use crate::token_set::{RenewalPolicy, TokenSet};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

fn policy() -> RenewalPolicy {
    RenewalPolicy::default()
}

fn grant_error(error: &str) -> OAuthErrorBody {
    OAuthErrorBody { error: error.into(), error_description: None, error_uri: None }
}

fn no_answer() -> TransportError {
    TransportError::Network { host: "oauth2.sky.blackbaud.com".into(), message: "reset".into() }
}

#[test]
fn a_valid_token_is_used_and_a_due_one_refreshed_with_preserve() {
    let t = fresh_set();
    assert!(matches!(plan(&Trigger::Due, &t, &policy(), T0), Step::Use));
    assert!(matches!(plan(&Trigger::Due, &t, &policy(), T0 + HOUR), Step::Refresh(RefreshMode::Preserve)));
    assert!(matches!(plan(&Trigger::Rotate, &t, &policy(), T0), Step::Refresh(RefreshMode::Rotate)));
}

#[test]
fn inside_the_renewal_window_a_due_refresh_rotates() {
    let t = fresh_set();
    assert!(matches!(plan(&Trigger::Due, &t, &policy(), T0 + 306 * DAY), Step::Refresh(RefreshMode::Rotate)));
}

#[test]
fn a_refresh_token_issued_with_the_access_token_in_use_is_not_rotated_again() {
    // A 30-day refresh token inside a 60-day window: the rotation that just happened issued it.
    let t = fresh_set().after_refresh(response("at1", Some("rt1"), Some(30 * DAY)), T0 + HOUR);
    let p = policy();
    assert!(matches!(plan(&Trigger::Due, &t, &p, T0 + HOUR), Step::Use));
    assert_eq!(p.need(&t, T0 + HOUR), crate::token_set::Need::Nothing, "the policy says the same: one rule");
    // Once that access token is due, the window applies again.
    assert!(matches!(plan(&Trigger::Due, &t, &p, T0 + 2 * HOUR), Step::Refresh(RefreshMode::Rotate)));
    // A refresh that kept the refresh token does not count as issuing it.
    let kept = t.after_refresh(response("at2", None, None), T0 + 2 * HOUR);
    assert!(matches!(plan(&Trigger::Due, &kept, &p, T0 + 2 * HOUR), Step::Refresh(RefreshMode::Rotate)));
}

#[test]
fn an_expired_refresh_token_or_a_refused_grant_fails_without_a_call() {
    let t = fresh_set();
    assert!(matches!(
        plan(&Trigger::Due, &t, &policy(), T0 + 366 * DAY),
        Step::Fail(SessionError::RefreshTokenExpired { .. })
    ));
    let mut dead = t.clone();
    dead.grant_refused_at = Some(T0);
    assert!(matches!(plan(&Trigger::Rotate, &dead, &policy(), T0), Step::Fail(SessionError::GrantRefused { .. })));
    dead.rotation_started_at = Some(T0);
    assert!(matches!(plan(&Trigger::Due, &dead, &policy(), T0), Step::Fail(SessionError::RotationLost { .. })));
}

#[test]
fn a_rejected_token_is_refreshed_unless_it_was_already_replaced() {
    let t = fresh_set();
    let current = t.access_token.clone().unwrap();
    assert!(matches!(plan(&Trigger::Rejected(current), &t, &policy(), T0), Step::Refresh(RefreshMode::Preserve)));
    let stale = Trigger::Rejected(AccessToken::new("an older one"));
    assert!(matches!(plan(&stale, &t, &policy(), T0), Step::Use));
    assert!(matches!(plan(&stale, &t, &policy(), T0 + HOUR), Step::Refresh(RefreshMode::Preserve)));
}

#[test]
fn only_a_preserving_refresh_is_retried() {
    let transient = || Attempt::Answered(Err(TokenError::Unavailable { status: 503, excerpt: String::new() }));
    assert!(matches!(
        after_attempt(RefreshMode::Preserve, 1, transient()),
        AfterAttempt::RetryAfter(d) if d == Duration::from_secs(2)
    ));
    assert!(matches!(
        after_attempt(RefreshMode::Preserve, 2, Attempt::NoAnswer(no_answer())),
        AfterAttempt::RetryAfter(d) if d == Duration::from_secs(4)
    ));
    assert!(matches!(after_attempt(RefreshMode::Preserve, 3, transient()), AfterAttempt::Refused(_)));
    assert!(matches!(after_attempt(RefreshMode::Rotate, 1, transient()), AfterAttempt::Refused(_)));
    assert!(matches!(
        after_attempt(RefreshMode::Rotate, 1, Attempt::NoAnswer(no_answer())),
        AfterAttempt::Unanswered(_)
    ));
    let refused = Attempt::Answered(Err(TokenError::ConsentRequired { body: grant_error("invalid_grant") }));
    assert!(matches!(after_attempt(RefreshMode::Preserve, 1, refused), AfterAttempt::Refused(_)));
    let ok = Attempt::Answered(Ok(Box::new(response("at1", None, None))));
    assert!(matches!(after_attempt(RefreshMode::Rotate, 1, ok), AfterAttempt::Save(_)));
}

#[test]
fn invalid_grant_records_a_dead_grant_and_names_a_lost_rotation() {
    let mut t = fresh_set();
    let dead = || TokenError::ConsentRequired { body: grant_error("invalid_grant") };
    let (record, error) = refusal(&t, None, dead(), T0 + HOUR);
    assert_eq!(record.and_then(|r| r.grant_refused_at), Some(T0 + HOUR));
    assert!(matches!(error, SessionError::Token(TokenError::ConsentRequired { .. })));
    t.rotation_started_at = Some(T0);
    let (record, error) = refusal(&t, Some(T0), dead(), T0 + HOUR);
    assert_eq!(record.and_then(|r| r.rotation_started_at), Some(T0));
    assert!(matches!(error, SessionError::RotationLost { .. }));
}

#[test]
fn a_refusal_that_shows_nothing_rotated_clears_only_this_runs_intent() {
    let mut t: TokenSet = fresh_set();
    t.rotation_started_at = Some(T0 + HOUR); // recorded by this run
    let bad_client = || TokenError::InvalidClient { body: grant_error("invalid_client") };
    let (record, _) = refusal(&t, None, bad_client(), T0 + HOUR);
    assert_eq!(record.map(|r| r.rotation_started_at), Some(None));
    // An earlier run's unknown rotation stays recorded.
    let (record, _) = refusal(&t, Some(T0 + HOUR), bad_client(), T0 + HOUR);
    assert!(record.is_none());
    // A 5xx says nothing about whether the server rotated.
    let unavailable = TokenError::Unavailable { status: 502, excerpt: String::new() };
    assert!(refusal(&t, None, unavailable, T0 + HOUR).0.is_none());
}

#[test]
fn a_failed_save_is_retried_then_rescued_if_the_token_rotated() {
    let io = || StoreError::Io("disk full".into());
    assert!(matches!(after_save_failure(1, io(), true), AfterSaveFailure::RetryAfter(_)));
    assert!(matches!(after_save_failure(3, io(), true), AfterSaveFailure::Rescue(_)));
    assert!(matches!(after_save_failure(3, io(), false), AfterSaveFailure::Report(SessionError::SaveFailed(_))));
    let conflict = StoreError::Conflict { expected: Some(1), found: Some(2) };
    assert!(matches!(after_save_failure(1, conflict, false), AfterSaveFailure::Report(_)));
}
