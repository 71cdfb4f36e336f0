use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;

use super::T0;
use super::fake::{Answer, FakeHttp, ThreadRuntime};
use super::oauth::config;
use super::token_set::fresh_set;
use crate::config::ClientAuth;
use crate::host::testing::FixedClock;
use crate::http::TransportError;
use crate::secret::AccessToken;
use crate::session::{Session, SessionError, SessionParts};
use crate::store::{MemoryStore, StoreError, StoreLock, TokenStore, Versioned};
use crate::token::TokenError;
use crate::token_set::{RenewalPolicy, TokenSet};

const DAY: Duration = Duration::from_secs(86_400);

const REFRESHED: &str = r#"{"access_token":"at1","token_type":"bearer","expires_in":3600,"refresh_token":"rt0","refresh_token_expires_in":30240000}"#;
const ROTATED: &str = r#"{"access_token":"at2","token_type":"bearer","expires_in":3600,"refresh_token":"rt1","refresh_token_expires_in":31536000}"#;

struct Rig {
    http: Arc<FakeHttp>,
    store: Arc<MemoryStore>,
    clock: Arc<FixedClock>,
    runtime: Arc<ThreadRuntime>,
    session: Session,
}

fn rig_with(store: Arc<dyn TokenStore>, mem: Arc<MemoryStore>, answers: Vec<Answer>) -> Rig {
    let http = FakeHttp::new(answers);
    let clock = Arc::new(FixedClock::new(T0));
    let runtime = Arc::new(ThreadRuntime::default());
    let session = Session::new(SessionParts {
        oauth: config(ClientAuth::Basic),
        policy: RenewalPolicy::default(),
        http: http.clone(),
        store,
        clock: clock.clone(),
        runtime: runtime.clone(),
    });
    Rig { http, store: mem, clock, runtime, session }
}

fn rig(answers: Vec<Answer>) -> Rig {
    let mem = Arc::new(MemoryStore::with(fresh_set()));
    rig_with(mem.clone(), mem, answers)
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn stored(r: &Rig) -> Versioned {
    r.store.snapshot().unwrap()
}

#[test]
fn valid_token_is_reused_without_calls() {
    let r = rig(vec![]);
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at0");
    r.clock.advance(Duration::from_secs(3000));
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at0");
    assert_eq!(r.http.calls(), 0);
}

#[test]
fn due_token_is_refreshed_with_preserve_and_saved() {
    let r = rig(vec![Answer::Json(200, REFRESHED)]);
    r.clock.advance(Duration::from_secs(3600 - 200));
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at1");
    assert_eq!(r.http.calls(), 1);
    let form = r.http.form(0);
    assert!(form.contains(&("preserve_refresh_token".into(), "true".into())));
    assert!(form.contains(&("refresh_token".into(), "rt0".into())));
    let s = stored(&r);
    assert_eq!(s.generation, 2);
    assert_eq!(s.tokens.access_token.unwrap().secret(), "at1");
    assert_eq!(s.tokens.last_refreshed_at, Some(T0 + Duration::from_secs(3400)));
    // Now cached: no second call.
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at1");
    assert_eq!(r.session.token_calls(), 1);
}

#[test]
fn concurrent_callers_share_one_refresh() {
    // Enough answers that a broken single-flight shows as extra calls instead of hanging.
    let r = rig((0..8).map(|_| Answer::Json(200, REFRESHED)).collect());
    let gate = r.http.hold();
    r.clock.advance(Duration::from_secs(4000));
    // All eight callers are in flight before the refresh may finish: each is polled once while
    // the first one's token call is held at the transport.
    let mut callers: Vec<_> = (0..8).map(|_| r.session.access_token().boxed()).collect();
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    for caller in &mut callers {
        assert!(caller.as_mut().poll(&mut cx).is_pending(), "the refresh is held, so nobody has a token yet");
    }
    gate.wait_for_arrivals(1);
    gate.open();
    for caller in callers {
        assert_eq!(block(caller).unwrap().secret(), "at1");
    }
    assert_eq!(r.http.calls(), 1, "exactly one token call");
}

#[test]
fn inside_renewal_window_rotates_and_persists_new_refresh_token() {
    let r = rig(vec![Answer::Json(200, ROTATED)]);
    r.clock.advance(310 * DAY);
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at2");
    assert!(!r.http.form(0).iter().any(|(k, _)| k == "preserve_refresh_token"));
    let s = stored(&r).tokens;
    assert_eq!(s.refresh_token.secret(), "rt1");
    assert_eq!(s.refresh_expires_at, T0 + 310 * DAY + 365 * DAY);
    assert_eq!(s.last_rotated_at, Some(T0 + 310 * DAY));
}

#[test]
fn explicit_rotation() {
    let r = rig(vec![Answer::Json(200, ROTATED)]);
    let t = block(r.session.rotate()).unwrap();
    assert_eq!(t.refresh_token.secret(), "rt1");
    assert_eq!(stored(&r).tokens.refresh_token.secret(), "rt1");
}

#[test]
fn invalid_grant_means_consent_and_is_remembered() {
    let r = rig(vec![Answer::Json(400, r#"{"error":"invalid_grant","error_description":"revoked"}"#)]);
    r.clock.advance(Duration::from_secs(4000));
    let e = block(r.session.access_token()).unwrap_err();
    assert!(e.needs_consent(), "{e:?}");
    assert!(matches!(e, SessionError::Token(TokenError::ConsentRequired { .. })));
    assert_eq!(r.http.calls(), 1, "invalid_grant is never retried");
    // The refusal is recorded; the tokens themselves are kept as they were.
    let s = stored(&r);
    assert_eq!(s.generation, 2);
    assert_eq!(s.tokens.grant_refused_at, Some(T0 + Duration::from_secs(4000)));
    assert_eq!(s.tokens.refresh_token.secret(), "rt0");
    // A dead grant is not called again, and its access token is not handed out.
    let e = block(r.session.access_token()).unwrap_err();
    assert!(matches!(e, SessionError::GrantRefused { .. }) && e.needs_consent(), "{e:?}");
    assert_eq!(r.http.calls(), 1);
}

#[test]
fn expired_refresh_token_needs_consent_without_calls() {
    let r = rig(vec![]);
    r.clock.advance(366 * DAY);
    let e = block(r.session.access_token()).unwrap_err();
    assert!(matches!(e, SessionError::RefreshTokenExpired { .. }) && e.needs_consent());
    assert_eq!(r.http.calls(), 0);
}

#[test]
fn empty_store_and_wrong_client() {
    let mem = Arc::new(MemoryStore::new());
    let r = rig_with(mem.clone(), mem, vec![]);
    assert!(matches!(block(r.session.access_token()), Err(SessionError::NotLoggedIn)));
    let mut other = fresh_set();
    other.client_id = "someone-else".into();
    let mem = Arc::new(MemoryStore::with(other));
    let r = rig_with(mem.clone(), mem, vec![]);
    let e = block(r.session.access_token()).unwrap_err();
    assert!(matches!(e, SessionError::WrongClient { .. }) && e.needs_consent());
}

#[test]
fn rejected_token_refreshes_once_but_not_a_stale_rejection() {
    let r = rig(vec![Answer::Json(200, REFRESHED)]);
    let t = block(r.session.rejected(&AccessToken::new("at0"))).unwrap();
    assert_eq!(t.secret(), "at1");
    assert_eq!(r.http.calls(), 1);
    // Another caller still holding the old token: the store already has a newer one.
    let t = block(r.session.rejected(&AccessToken::new("at0"))).unwrap();
    assert_eq!(t.secret(), "at1");
    assert_eq!(r.http.calls(), 1);
}

#[test]
fn preserving_refresh_retries_transient_failures() {
    let net = TransportError::Network { host: "h".into(), message: "reset".into() };
    let r = rig(vec![Answer::Fail(net), Answer::Json(503, "{}"), Answer::Json(200, REFRESHED)]);
    r.clock.advance(Duration::from_secs(4000));
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at1");
    assert_eq!(r.http.calls(), 3);
    assert_eq!(r.runtime.slept.lock().unwrap().len(), 2);
    // Every attempt, retries included, was a preserving refresh with the same refresh token:
    // only those are safe to repeat (a rotation is not retried, see below).
    for i in 0..3 {
        let form = r.http.form(i);
        assert!(form.contains(&("preserve_refresh_token".into(), "true".into())), "attempt {i}: {form:?}");
        assert!(form.contains(&("refresh_token".into(), "rt0".into())), "attempt {i}: {form:?}");
    }
}

#[test]
fn failed_rotation_is_not_retried_with_the_old_token() {
    let net = TransportError::Network { host: "h".into(), message: "connection closed".into() };
    let r = rig(vec![Answer::Fail(net)]);
    let e = block(r.session.rotate()).unwrap_err();
    assert!(matches!(e, SessionError::Transport(_)));
    assert_eq!(r.http.calls(), 1);
    assert_eq!(stored(&r).tokens.refresh_token.secret(), "rt0");
}

#[test]
fn refresh_finishes_saving_when_the_caller_gives_up() {
    let (saves, saved) = std::sync::mpsc::channel();
    let mem = Arc::new(MemoryStore::with(fresh_set()));
    let store = Arc::new(SignallingStore { inner: mem.clone(), saves: Mutex::new(saves) });
    let r = rig_with(store, mem, vec![Answer::Json(200, ROTATED)]);
    let gate = r.http.hold();
    {
        let mut fut = r.session.rotate().boxed();
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        gate.wait_for_arrivals(1);
    } // dropped while its token call is held at the transport
    gate.open();
    // The rotation's intent is saved before the call is sent, the rotated token after it: wait
    // for the save that carries it.
    for _ in 0..3 {
        saved.recv_timeout(Duration::from_secs(30)).expect("the rotated token is saved after the caller left");
        if stored(&r).tokens.refresh_token.secret() == "rt1" {
            break;
        }
    }
    assert_eq!(stored(&r).tokens.refresh_token.secret(), "rt1", "the rotated token was saved");
}

/// A memory store that says when it saved.
struct SignallingStore {
    inner: Arc<MemoryStore>,
    saves: Mutex<std::sync::mpsc::Sender<u64>>,
}

#[async_trait::async_trait]
impl TokenStore for SignallingStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        self.inner.load().await
    }
    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        let generation = self.inner.save(tokens, expected).await?;
        let _ = self.saves.lock().unwrap().send(generation);
        Ok(generation)
    }
    async fn lock(&self) -> Result<StoreLock, StoreError> {
        self.inner.lock().await
    }
}

/// A store whose saves always fail.
struct BrokenStore(MemoryStore);

#[async_trait::async_trait]
impl TokenStore for BrokenStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        self.0.load().await
    }
    async fn save(&self, _: &TokenSet, _: Option<u64>) -> Result<u64, StoreError> {
        Err(StoreError::Io("No space left on device".into()))
    }
    async fn lock(&self) -> Result<StoreLock, StoreError> {
        Ok(StoreLock::none())
    }
}

#[test]
fn save_failure_is_reported_and_tokens_stay_usable() {
    let mem = Arc::new(MemoryStore::new());
    let broken = Arc::new(BrokenStore(MemoryStore::with(fresh_set())));
    let r = rig_with(broken, mem, vec![Answer::Json(200, REFRESHED)]);
    r.clock.advance(Duration::from_secs(4000));
    let e = block(r.session.access_token()).unwrap_err();
    assert!(matches!(e, SessionError::SaveFailed(_)));
    assert!(e.to_string().contains("No space left"));
}

#[test]
fn a_lost_rotation_is_recorded_and_explained_later() {
    let net = TransportError::Network { host: "h".into(), message: "connection closed".into() };
    let r = rig(vec![
        Answer::Fail(net),
        Answer::Json(400, r#"{"error":"invalid_grant","error_description":"invalid refresh token"}"#),
    ]);
    r.clock.advance(Duration::from_secs(60));
    assert!(matches!(block(r.session.rotate()), Err(SessionError::Transport(_))));
    // The attempt got no answer: the store records that its outcome is unknown.
    let marked = stored(&r).tokens;
    assert_eq!(marked.rotation_started_at, Some(T0 + Duration::from_secs(60)));
    assert_eq!(marked.refresh_token.secret(), "rt0");
    // Blackbaud had rotated: the old token is refused, and the error says why.
    let e = block(r.session.rotate()).unwrap_err();
    assert!(
        matches!(e, SessionError::RotationLost { ref started_at } if started_at == "2026-01-15T12:01:00Z"),
        "{e:?}"
    );
    assert!(e.needs_consent() && e.to_string().contains("response never arrived"), "{e}");
}

#[test]
fn a_successful_refresh_clears_an_unknown_rotation() {
    let net = TransportError::Network { host: "h".into(), message: "connection refused".into() };
    let r = rig(vec![Answer::Fail(net), Answer::Json(200, REFRESHED)]);
    assert!(block(r.session.rotate()).is_err());
    assert!(stored(&r).tokens.rotation_started_at.is_some());
    // The request never reached Blackbaud: a preserving refresh with the old token still works.
    r.clock.advance(Duration::from_secs(4000));
    block(r.session.access_token()).unwrap();
    assert!(stored(&r).tokens.rotation_started_at.is_none());
}

#[test]
fn a_caller_giving_up_does_not_let_another_refresh_alongside() {
    // A second, parallel refresh would get the second answer ("at9") and make a second call.
    const OTHER: &str = r#"{"access_token":"at9","token_type":"bearer","expires_in":3600,"refresh_token":"rt0","refresh_token_expires_in":30240000}"#;
    let r = rig(vec![Answer::Json(200, REFRESHED), Answer::Json(200, OTHER)]);
    let gate = r.http.hold();
    r.clock.advance(Duration::from_secs(4000));
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    {
        let mut fut = r.session.access_token().boxed();
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        gate.wait_for_arrivals(1);
    } // dropped while its refresh is held at the transport
    let mut second = r.session.access_token().boxed();
    assert!(second.as_mut().poll(&mut cx).is_pending(), "the refresh is still held");
    gate.open();
    assert_eq!(block(second).unwrap().secret(), "at1");
    assert_eq!(r.http.calls(), 1, "the second caller waited for the running refresh");
}

#[test]
fn a_refresh_token_lifetime_inside_the_window_does_not_rotate_on_every_call() {
    // Blackbaud once documented 60-day refresh tokens: as long as the 60-day renewal window.
    const SHORT: &str = r#"{"access_token":"at2","token_type":"bearer","expires_in":3600,"refresh_token":"rt1","refresh_token_expires_in":5184000}"#;
    let r = rig(vec![Answer::Json(200, SHORT)]);
    r.clock.advance(310 * DAY);
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at2");
    r.clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(block(r.session.access_token()).unwrap().secret(), "at2");
    }
    assert_eq!(r.http.calls(), 1, "the fresh refresh token is not rotated again while its access token is good");
}

#[test]
fn an_absurd_lifetime_in_a_rotation_response_still_saves_the_new_token() {
    const HUGE: &str = r#"{"access_token":"at2","token_type":"bearer","expires_in":18446744073709551615,"refresh_token":"rt1","refresh_token_expires_in":1e300}"#;
    let r = rig(vec![Answer::Json(200, HUGE)]);
    let _ = block(r.session.rotate());
    assert_eq!(stored(&r).tokens.refresh_token.secret(), "rt1", "the rotated refresh token was saved");
}

#[test]
fn five_minute_access_tokens_are_not_refreshed_on_every_call() {
    // The default skew is as long as the token's whole life: it must shrink to fit.
    const SHORT: &str = r#"{"access_token":"at1","token_type":"bearer","expires_in":300,"refresh_token":"rt0","refresh_token_expires_in":30240000}"#;
    let r = rig(vec![Answer::Json(200, SHORT)]);
    r.clock.advance(Duration::from_secs(4000));
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at1");
    r.clock.advance(Duration::from_secs(60));
    assert_eq!(block(r.session.access_token()).unwrap().secret(), "at1");
    assert_eq!(r.http.calls(), 1);
}
