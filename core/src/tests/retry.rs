//! The API call's retry machine, with plain values: no transport, clock or runtime.

use std::time::Duration;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::api::retry::{Action, CallRetry, Outcome, RetryPolicy, jittered};
use crate::api::{ApiError, Verdict};
use crate::http::{Method, TransportError};

fn machine() -> CallRetry {
    CallRetry::new(RetryPolicy::default(), Method::Get, "https://api.sky.blackbaud.com/x".into())
}

fn answer(v: Verdict) -> Outcome {
    Outcome::Answer(v)
}

fn unauthorized() -> Outcome {
    answer(Verdict::Unauthorized { subscription_key: false, message: "expired".into() })
}

fn network() -> Outcome {
    Outcome::Transport(TransportError::Network { host: "h".into(), message: "reset".into() })
}

#[test]
fn success_is_done() {
    assert!(matches!(machine().next(answer(Verdict::Success)), Action::Done));
}

#[test]
fn a_401_refreshes_once_then_stops() {
    let mut m = machine();
    assert!(matches!(m.next(unauthorized()), Action::Refresh));
    assert!(matches!(m.next(answer(Verdict::Success)), Action::Done));
    let mut m = machine();
    assert!(matches!(m.next(unauthorized()), Action::Refresh));
    assert!(matches!(m.next(unauthorized()), Action::Stop(ApiError::Unauthorized { .. })));
}

#[test]
fn a_refused_subscription_key_is_not_refreshed() {
    let key = answer(Verdict::Unauthorized { subscription_key: true, message: "bad key".into() });
    assert!(matches!(machine().next(key), Action::Stop(ApiError::SubscriptionKey { .. })));
}

#[test]
fn a_429_waits_retry_after_until_the_budget_of_429s_is_spent() {
    let policy = RetryPolicy { max_rate_limited: 2, ..RetryPolicy::default() };
    let mut m = CallRetry::new(policy, Method::Get, "u".into());
    let limited = || answer(Verdict::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    assert!(matches!(m.next(limited()), Action::Throttle(d) if d == Duration::from_secs(7)));
    let no_header = answer(Verdict::RateLimited { retry_after: None });
    assert!(matches!(m.next(no_header), Action::Throttle(d) if d == Duration::from_secs(1)), "1 s without Retry-After");
    assert!(matches!(m.next(limited()), Action::Stop(ApiError::RateLimited { attempts: 3 })));
}

#[test]
fn a_retry_after_longer_than_allowed_stops_at_once() {
    let long = answer(Verdict::RateLimited { retry_after: Some(Duration::from_secs(301)) });
    assert!(matches!(machine().next(long), Action::Stop(ApiError::RateLimited { attempts: 1 })));
}

#[test]
fn the_quota_stops_with_its_replenish_time() {
    let quota = answer(Verdict::QuotaExhausted { retry_after: Some(Duration::from_secs(60)), message: "out".into() });
    match machine().next(quota) {
        Action::Stop(ApiError::QuotaExhausted { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(60)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_errors_and_dropped_connections_back_off_doubling_then_give_up() {
    let mut m = machine();
    let caps: Vec<Duration> = (0..5)
        .map(|i| {
            let outcome =
                if i % 2 == 0 { answer(Verdict::Transient { status: 503, message: "busy".into() }) } else { network() };
            match m.next(outcome) {
                Action::RetryAfter(cap) => cap,
                other => panic!("attempt {i}: {other:?}"),
            }
        })
        .collect();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(caps, [ms(1000), ms(2000), ms(4000), ms(8000), ms(16000)]);
    match m.next(answer(Verdict::Transient { status: 502, message: "bad gateway".into() })) {
        Action::Stop(ApiError::Unavailable { attempts, last, .. }) => {
            assert_eq!(attempts, 6);
            assert_eq!(last, "HTTP 502: bad gateway");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversized_body_and_other_failures_stop_without_retrying() {
    let big = Outcome::Transport(TransportError::TooLarge { host: "h".into(), limit: 1 });
    assert!(matches!(machine().next(big), Action::Stop(ApiError::Transport(TransportError::TooLarge { .. }))));
    let missing = answer(Verdict::Failed { status: 404, message: "not found".into() });
    match machine().next(missing) {
        Action::Stop(ApiError::Http { method, status, .. }) => assert_eq!((method, status), ("GET", 404)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn backoff_caps_and_jitter() {
    let p = RetryPolicy::default();
    assert_eq!(p.backoff_cap(20), p.max_delay);
    let cap = Duration::from_secs(8);
    assert_eq!(jittered(cap, 0), Duration::from_secs(4));
    assert_eq!(jittered(cap, u32::MAX), cap);
}

fn refused() -> Outcome {
    Outcome::Transport(TransportError::Connect { host: "api.example:443".into(), message: "connection refused".into() })
}

#[test]
fn a_host_that_refuses_connections_is_given_up_within_the_connect_window() {
    // Caps 1 s, 2 s, 4 s fit the 10 s window; the next (8 s) would not.
    let mut m = machine();
    let mut waited = Duration::ZERO;
    for _ in 0..3 {
        match m.next(refused()) {
            Action::RetryAfter(cap) => waited += cap,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waited, Duration::from_secs(7));
    match m.next(refused()) {
        Action::Stop(e @ ApiError::Unreachable { attempts: 4, .. }) => {
            let text = e.to_string();
            assert!(text.contains("cannot connect to api.example:443") && text.contains("reachable"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // A dropped connection (the host is up) keeps the full retry budget.
    let mut m = machine();
    for _ in 0..5 {
        assert!(matches!(m.next(network()), Action::RetryAfter(_)));
    }
    assert!(matches!(m.next(network()), Action::Stop(ApiError::Unavailable { attempts: 6, .. })));
}

#[test]
fn each_retry_has_a_notice_with_its_number_and_reason() {
    let mut m = machine();
    assert!(matches!(m.next(answer(Verdict::RateLimited { retry_after: None })), Action::Throttle(_)));
    let n = m.notice(Duration::from_secs(1));
    assert_eq!((n.retry, n.reason.as_str()), (1, "HTTP 429 (rate limited)"));
    assert!(matches!(m.next(refused()), Action::RetryAfter(_)));
    let n = m.notice(Duration::from_millis(700));
    assert_eq!(n.retry, 2);
    assert!(n.reason.contains("cannot connect to api.example:443"), "{n:?}");
    assert_eq!(n.url, "https://api.sky.blackbaud.com/x");
}
