use std::time::Duration;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::fake::json;
use crate::api::{Pacer, Verdict, classify, quota_replenish};
use crate::http::HttpResponse;

fn with_retry_after(mut r: HttpResponse, secs: &str) -> HttpResponse {
    r.headers.push(("retry-after".into(), secs.into()));
    r
}

#[test]
fn classifies_blackbaud_answers() {
    assert_eq!(classify(&json(200, "{}")), Verdict::Success);
    let r = with_retry_after(
        json(429, r#"{"statusCode":429,"message":"Rate limit is exceeded. Try again in 1 second."}"#),
        "1",
    );
    assert_eq!(classify(&r), Verdict::RateLimited { retry_after: Some(Duration::from_secs(1)) });
    let q = with_retry_after(
        json(403, r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 00:06:46."}"#),
        "406",
    );
    match classify(&q) {
        Verdict::QuotaExhausted { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(406))),
        other => panic!("{other:?}"),
    }
    let q = json(403, r#"{"message":"Out of call volume quota. Quota will be replenished in 01:00:05."}"#);
    assert!(
        matches!(classify(&q), Verdict::QuotaExhausted { retry_after: Some(d), .. } if d == Duration::from_secs(3605))
    );
    assert!(matches!(classify(&json(403, r#"{"message":"Forbidden"}"#)), Verdict::Failed { status: 403, .. }));
    let k = json(401, r#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#);
    assert!(matches!(classify(&k), Verdict::Unauthorized { subscription_key: true, .. }));
    let t = json(
        401,
        r#"{"message":"The required Authorization header was missing or invalid, or the token has expired."}"#,
    );
    assert!(matches!(classify(&t), Verdict::Unauthorized { subscription_key: false, .. }));
    assert!(matches!(classify(&json(503, "")), Verdict::Transient { status: 503, .. }));
    assert!(
        matches!(classify(&json(404, r#"[{"message":"not found"}]"#)), Verdict::Failed { status: 404, message } if message == "not found")
    );
    assert_eq!(quota_replenish("nothing here"), None);
}

#[test]
fn pacer_spaces_calls_and_backs_off_after_429() {
    let p = Pacer::new(5.0);
    assert_eq!(p.reserve(T0), Duration::ZERO);
    assert_eq!(p.reserve(T0), Duration::from_millis(200));
    assert_eq!(p.reserve(T0), Duration::from_millis(400));
    p.throttled(T0, Duration::from_secs(2));
    assert!(p.interval() > Duration::from_millis(200));
    assert!(p.reserve(T0) >= Duration::from_secs(2), "everyone waits for Retry-After");
    for _ in 0..200 {
        p.succeeded();
    }
    assert_eq!(p.interval(), Duration::from_millis(200), "recovers to the configured pace, no faster");
    let unlimited = Pacer::new(0.0);
    assert_eq!(unlimited.reserve(T0), Duration::ZERO);
    assert_eq!(unlimited.reserve(T0), Duration::ZERO);
}

#[test]
fn pacer_never_speeds_up_past_its_pace_and_takes_any_rate() {
    // 0.1 calls per second: a 429 slows down further, never below the configured 10 s spacing.
    let p = Pacer::new(0.1);
    p.throttled(T0, Duration::from_secs(1));
    assert!(p.interval() >= Duration::from_secs(10), "{:?}", p.interval());
    p.succeeded();
    assert!(p.interval() >= Duration::from_secs(10), "{:?}", p.interval());
    // A tiny (but positive, finite) rate must not panic.
    let p = Pacer::new(1e-30);
    assert!(p.reserve(T0).is_zero());
    let _ = p.reserve(T0);
    p.throttled(T0, Duration::from_secs(1));
}
