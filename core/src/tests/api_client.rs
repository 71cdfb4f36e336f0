use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::T0;
use super::fake::{Answer, FakeHttp, ThreadRuntime, json};
use super::oauth::config;
use super::token_set::fresh_set;
use crate::api::{ApiClient, ApiError, CallStats};
use crate::config::{ApiConfig, ClientAuth};
use crate::host::testing::{FixedClock, SeededEntropy};
use crate::http::{HttpResponse, Method};
use crate::secret::SubscriptionKey;
use crate::session::{Session, SessionParts};
use crate::store::MemoryStore;
use crate::token_set::RenewalPolicy;

const REFRESHED: &str = r#"{"access_token":"at1","expires_in":3600,"refresh_token":"rt0"}"#;

fn client(answers: Vec<Answer>) -> (ApiClient, Arc<FakeHttp>, Arc<ThreadRuntime>) {
    let http = FakeHttp::new(answers);
    let runtime = Arc::new(ThreadRuntime::default());
    let clock = Arc::new(FixedClock::new(T0));
    let session = Session::new(SessionParts {
        oauth: config(ClientAuth::Basic),
        policy: RenewalPolicy::default(),
        http: http.clone(),
        store: Arc::new(MemoryStore::with(fresh_set())),
        clock: clock.clone(),
        runtime: runtime.clone(),
    });
    let api = ApiClient::new(
        session,
        http.clone(),
        runtime.clone(),
        clock,
        Arc::new(SeededEntropy::new(9)),
        ApiConfig {
            base: Url::parse("https://api.sky.blackbaud.com/").unwrap(),
            subscription_key: SubscriptionKey::new("sub-key"),
        },
        0.0,
    );
    (api, http, runtime)
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn with_header(mut r: HttpResponse, k: &str, v: &str) -> HttpResponse {
    r.headers.push((k.into(), v.into()));
    r
}

#[test]
fn sends_subscription_key_and_bearer() {
    let (api, http, _) = client(vec![Answer::Json(200, r#"{"id":"1"}"#)]);
    let v = block(api.get_json("/constituent/v1/constituents/1")).unwrap();
    assert_eq!(v["id"], "1");
    let reqs = http.requests.lock().unwrap();
    assert_eq!(reqs[0].url.as_str(), "https://api.sky.blackbaud.com/constituent/v1/constituents/1");
    assert_eq!(reqs[0].header_value("bb-api-subscription-key"), Some("sub-key"));
    assert_eq!(reqs[0].header_value("authorization"), Some("Bearer at0"));
}

#[test]
fn unauthorized_refreshes_once_and_retries() {
    let (api, http, _) = client(vec![
        Answer::Json(
            401,
            r#"{"message":"The required Authorization header was missing or invalid, or the token has expired."}"#,
        ),
        Answer::Json(200, REFRESHED),
        Answer::Json(200, "{}"),
    ]);
    block(api.send(Method::Get, "/x", None)).unwrap();
    let reqs = http.requests.lock().unwrap();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].header_value("authorization"), Some("Bearer at1"));
    drop(reqs);
    let (api, _, _) = client(vec![
        Answer::Json(401, r#"{"message":"expired"}"#),
        Answer::Json(200, REFRESHED),
        Answer::Json(401, r#"{"message":"expired"}"#),
    ]);
    assert!(matches!(block(api.send(Method::Get, "/x", None)), Err(ApiError::Unauthorized { .. })));
    let (api, _, _) =
        client(vec![Answer::Json(401, r#"{"message":"Access denied due to invalid subscription key."}"#)]);
    let e = block(api.send(Method::Get, "/x", None)).unwrap_err();
    assert!(matches!(e, ApiError::SubscriptionKey { .. }));
    assert!(!e.to_string().contains("sub-key"));
}

#[test]
fn rate_limits_wait_retry_after_and_quota_stops() {
    let limited =
        with_header(json(429, r#"{"statusCode":429,"message":"Rate limit is exceeded."}"#), "retry-after", "3");
    let (api, http, runtime) = client(vec![Answer::Raw(limited), Answer::Json(200, "{}")]);
    block(api.send(Method::Get, "/x", None)).unwrap();
    assert_eq!(http.calls(), 2);
    assert!(runtime.slept.lock().unwrap().iter().any(|d| *d >= Duration::from_secs(3)));
    assert_eq!(api.counters().rate_limited, 1);

    let quota = with_header(
        json(403, r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 02:00:00."}"#),
        "retry-after",
        "7200",
    );
    let (api, http, _) = client(vec![Answer::Raw(quota)]);
    let e = block(api.send(Method::Get, "/x", None)).unwrap_err();
    assert!(matches!(e, ApiError::QuotaExhausted { retry_after: Some(d), .. } if d == Duration::from_secs(7200)));
    assert_eq!(e.to_string().matches("replenish").count(), 1, "said once: {e}");
    let bare = ApiError::QuotaExhausted {
        retry_after: Some(Duration::from_secs(7200)),
        message: "Out of call volume quota.".into(),
    };
    assert!(bare.to_string().contains("replenishes in 2h 00m 00s"), "{bare}");
    assert_eq!(http.calls(), 1);
}

#[test]
fn server_errors_back_off_with_jitter_then_give_up() {
    let (api, http, runtime) = client(vec![Answer::Json(500, "{}"), Answer::Json(502, "{}"), Answer::Json(200, "{}")]);
    block(api.send(Method::Get, "/x", None)).unwrap();
    assert_eq!(http.calls(), 3);
    assert_eq!(runtime.slept.lock().unwrap().len(), 2);
    let (api, _, _) = client((0..6).map(|_| Answer::Json(500, "{}")).collect());
    assert!(matches!(block(api.send(Method::Get, "/x", None)), Err(ApiError::Unavailable { attempts: 6, .. })));
    let (api, _, _) = client(vec![Answer::Json(400, r#"{"message":"bad filter"}"#)]);
    let e = block(api.send(Method::Get, "/x?code=1", None)).unwrap_err();
    assert!(e.to_string().contains("bad filter") && !e.to_string().contains("code=1"));
}

#[test]
fn never_sends_credentials_to_foreign_hosts_and_honours_budget() {
    let (api, http, _) = client(vec![]);
    let e = block(api.send(Method::Get, "https://evil.example/steal", None)).unwrap_err();
    assert!(matches!(e, ApiError::ForeignUrl(_)));
    assert_eq!(http.calls(), 0);
    let (api, _, _) = client(vec![Answer::Json(200, "{}")]);
    let api = api.with_budget(Some(1));
    block(api.send(Method::Get, "/x", None)).unwrap();
    assert!(matches!(block(api.send(Method::Get, "/x", None)), Err(ApiError::BudgetSpent { budget: 1 })));
}

#[test]
fn the_daily_quota_stops_before_the_call_that_would_go_over_it() {
    // 997 of 1000 used today: three calls left, fewer than the budget of 5.
    let (api, http, _) = client((0..5).map(|_| Answer::Json(200, "{}")).collect());
    let api = api.with_budget(Some(5)).with_daily_quota(3, 1000);
    for _ in 0..3 {
        block(api.send(Method::Get, "/x", None)).unwrap();
    }
    let e = block(api.send(Method::Get, "/x", None)).unwrap_err();
    assert!(matches!(e, ApiError::DailyQuotaReached { quota: 1000, used: 1000 }), "{e:?}");
    assert!(e.is_planned_stop());
    assert_eq!(http.calls(), 3);
    // The budget is the tighter limit: the budget's error.
    let (api, _, _) = client((0..5).map(|_| Answer::Json(200, "{}")).collect());
    let api = api.with_budget(Some(1)).with_daily_quota(3, 1000);
    block(api.send(Method::Get, "/x", None)).unwrap();
    assert!(matches!(block(api.send(Method::Get, "/x", None)), Err(ApiError::BudgetSpent { budget: 1 })));
}

#[test]
fn html_success_pages_are_clear_errors() {
    let html = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: b"<html>Maintenance</html>".to_vec(),
    };
    let (api, _, _) = client(vec![Answer::Raw(html)]);
    let e = block(api.get_json("/x")).unwrap_err();
    assert!(e.to_string().contains("Maintenance"));
}

#[test]
fn send_with_counts_every_attempt_for_its_caller() {
    let limited = with_header(json(429, r#"{"message":"Rate limit is exceeded."}"#), "retry-after", "1");
    let (api, http, _) = client(vec![
        // Caller A: a 500, a 429, a 401 (the refresh is a token call, not an API call), then 200.
        Answer::Json(500, "{}"),
        Answer::Raw(limited),
        Answer::Json(401, r#"{"message":"expired"}"#),
        Answer::Json(200, REFRESHED),
        Answer::Json(200, "{}"),
        // Caller B: one clean call.
        Answer::Json(200, "{}"),
    ]);
    let (a, b) = (CallStats::new(), CallStats::new());
    block(api.send_with(Method::Get, "/a", None, &a)).unwrap();
    block(api.send_with(Method::Get, "/b", None, &b)).unwrap();
    let (a, b, all) = (a.snapshot(), b.snapshot(), api.counters());
    assert_eq!((a.calls, a.retries, a.rate_limited, a.unauthorized), (4, 1, 1, 1));
    assert_eq!((b.calls, b.retries, b.rate_limited, b.unauthorized), (1, 0, 0, 0));
    assert_eq!(a.calls + b.calls, all.calls, "per-caller stats add up to the client's counters");
    assert_eq!(all.calls + 1, http.calls() as u64, "every API attempt, plus the one token call");
    assert_eq!((all.retries, all.rate_limited, all.unauthorized), (1, 1, 1));

    // A call the budget refuses is never made, so it counts nowhere; `send` still counts globally.
    let (api, _, _) = client(vec![Answer::Json(200, "{}")]);
    let api = api.with_budget(Some(1));
    block(api.send(Method::Get, "/x", None)).unwrap();
    let c = CallStats::new();
    assert!(matches!(block(api.send_with(Method::Get, "/x", None, &c)), Err(ApiError::BudgetSpent { .. })));
    assert_eq!(c.snapshot().calls, 0);
    assert_eq!(api.counters().calls, 1);
}

#[test]
fn backslash_paths_cannot_reach_another_host() {
    // WHATWG URL parsing reads `\` as `/` in http(s) URLs, so `\\host` is scheme-relative.
    for path in ["\\\\evil.example/steal", "/\\/evil.example/steal", "\\/evil.example"] {
        let (api, http, _) = client(vec![]);
        let e = block(api.send(Method::Get, path, None)).unwrap_err();
        assert!(matches!(e, ApiError::ForeignUrl(_)), "{path}: {e:?}");
        assert_eq!(http.calls(), 0, "{path}");
    }
}

#[test]
fn rate_limits_do_not_use_up_the_server_error_attempts() {
    let limited =
        || Answer::Raw(with_header(json(429, r#"{"message":"Rate limit is exceeded."}"#), "retry-after", "1"));
    let mut answers: Vec<Answer> = (0..6).map(|_| limited()).collect();
    answers.push(Answer::Json(503, "{}"));
    answers.push(Answer::Json(200, "{}"));
    let (api, http, _) = client(answers);
    block(api.send(Method::Get, "/x", None)).unwrap();
    assert_eq!(http.calls(), 8);
}
