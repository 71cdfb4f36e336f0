//! The SKY API simulator, driven over real HTTP with reqwest.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::{Client, Response, StatusCode, header, redirect::Policy};
use serde_json::{Value, json};
use skysync_cli::sim::{Fault, FaultRates, SimConfig, SimHandle, SimStats, Simulator, s256_challenge};
use skysync_tests::sky::{QUOTA_DAY, sim_config};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:8321/callback";
const CLIENT_ID: &str = "sim-client-id";
const SECRET: &str = skysync_cli::sim::DEFAULT_CLIENT_SECRET;
const KEY: &str = "sim-subscription-key";
const TOKEN_EXPIRED: &str = "The required Authorization header was missing or invalid, or the token has expired.";

async fn sim(records: u64) -> SimHandle {
    skysync_tests::sky::start_sim(sim_config(records)).await
}

fn client() -> Client {
    Client::builder().redirect(Policy::none()).timeout(Duration::from_secs(20)).build().unwrap()
}

/// The request reached the server, which closed the connection without an answer: not a
/// refused connection (the server gone), a timeout or an HTTP status.
#[track_caller]
fn assert_dropped(result: reqwest::Result<Response>) {
    let err = match result {
        Ok(resp) => panic!("expected a dropped connection, got HTTP {}", resp.status()),
        Err(e) => e,
    };
    assert!(!err.is_connect() && !err.is_timeout() && !err.is_status(), "not a dropped connection: {err:?}");
}

fn query_map(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn location(resp: &Response) -> Url {
    assert_eq!(resp.status(), StatusCode::FOUND, "expected a redirect");
    Url::parse(resp.headers()[header::LOCATION].to_str().unwrap()).unwrap()
}

async fn authorize(sim: &SimHandle, c: &Client, params: &[(&str, &str)]) -> Response {
    let mut url = sim.authorize_url();
    url.query_pairs_mut().extend_pairs(params);
    c.get(url).send().await.unwrap()
}

/// Runs the consent step and returns the code.
async fn code(sim: &SimHandle, c: &Client, challenge: Option<&str>) -> String {
    let mut params =
        vec![("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "code"), ("state", "st")];
    if let Some(ch) = challenge {
        params.extend([("code_challenge", ch), ("code_challenge_method", "S256")]);
    }
    let loc = location(&authorize(sim, c, &params).await);
    query_map(&loc)["code"].clone()
}

async fn token_call(sim: &SimHandle, c: &Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(form).send().await.unwrap();
    let status = resp.status();
    assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
    (status, resp.json().await.unwrap())
}

async fn exchange(sim: &SimHandle, c: &Client, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token_call(sim, c, &form).await
}

async fn refresh(sim: &SimHandle, c: &Client, rt: &str, preserve: bool) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    if preserve {
        form.push(("preserve_refresh_token", "true"));
    }
    token_call(sim, c, &form).await
}

/// Consent + code exchange; returns the token response.
async fn tokens(sim: &SimHandle, c: &Client) -> Value {
    let code = code(sim, c, None).await;
    let (status, body) = exchange(sim, c, &code, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

async fn api_get(sim: &SimHandle, c: &Client, token: &str, path_and_query: &str) -> Response {
    let url = sim.api_url().join(path_and_query.trim_start_matches('/')).unwrap();
    api_url(c, token, url.as_str()).await
}

async fn api_url(c: &Client, token: &str, url: &str) -> Response {
    c.get(url).header("Bb-Api-Subscription-Key", KEY).bearer_auth(token).send().await.unwrap()
}

async fn api_json(sim: &SimHandle, c: &Client, token: &str, path_and_query: &str) -> Value {
    let resp = api_get(sim, c, token, path_and_query).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["value"].as_array().unwrap().iter().map(|r| s(r, "id").to_owned()).collect()
}

async fn access(sim: &SimHandle) -> String {
    s(&sim.issue_tokens(), "access_token").to_owned()
}

#[tokio::test]
async fn authorize_redirects_with_code_and_state_keeping_the_redirect_query() {
    let sim = sim(10).await;
    sim.register_redirect_uri("http://127.0.0.1:45678/cb?keep=1");
    let c = client();
    let resp = authorize(
        &sim,
        &c,
        &[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:45678/cb?keep=1"),
            ("response_type", "code"),
            ("state", "xyz"),
            ("environment_id", "p-env"),
        ],
    )
    .await;
    let loc = location(&resp);
    assert_eq!(loc.host_str(), Some("127.0.0.1"));
    assert_eq!(loc.port(), Some(45678));
    assert_eq!(loc.path(), "/cb");
    let q = query_map(&loc);
    assert_eq!(q["keep"], "1");
    assert_eq!(q["state"], "xyz");
    assert!(q["code"].len() >= 16);

    let no_type = authorize(&sim, &c, &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("state", "a")]).await;
    let q = query_map(&location(&no_type));
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request", "a"));
    let implicit =
        authorize(&sim, &c, &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "token")]).await;
    assert_eq!(query_map(&location(&implicit))["error"], "unsupported_response_type");
}

#[tokio::test]
async fn authorize_denied_consent_redirects_with_access_denied() {
    let sim = sim(10).await;
    sim.set_deny_consent(true);
    let c = client();
    let resp = authorize(
        &sim,
        &c,
        &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "code"), ("state", "s1")],
    )
    .await;
    let q = query_map(&location(&resp));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_message"], "The user chose not to give your app access to their Blackbaud data.");
    assert_eq!(q["state"], "s1");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unregistered_uri_or_for_an_unknown_client() {
    let sim = sim(10).await;
    let c = client();
    for params in [
        vec![("client_id", CLIENT_ID), ("redirect_uri", "https://evil.example/cb"), ("response_type", "code")],
        vec![("client_id", CLIENT_ID), ("redirect_uri", "http://127.0.0.1.evil.example/cb"), ("response_type", "code")],
        vec![("client_id", "someone-else"), ("redirect_uri", REDIRECT), ("response_type", "code")],
        vec![("redirect_uri", REDIRECT), ("response_type", "code")],
    ] {
        let resp = authorize(&sim, &c, &params).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(resp.headers().get(header::LOCATION).is_none());
        assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    }
    // With loopback wildcards off, only the registered URIs work.
    let strict =
        Simulator::start(SimConfig { allow_any_loopback_redirect: false, ..SimConfig::default() }).await.unwrap();
    let other_port = [("client_id", CLIENT_ID), ("redirect_uri", "http://127.0.0.1:9/cb"), ("response_type", "code")];
    assert_eq!(authorize(&strict, &c, &other_port).await.status(), StatusCode::BAD_REQUEST);
    let registered = [("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "code")];
    assert_eq!(authorize(&strict, &c, &registered).await.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn code_exchange_with_basic_auth_returns_the_blackbaud_token_fields() {
    let sim = sim(10).await;
    let c = client();
    let body = tokens(&sim, &c).await;
    for k in [
        "access_token",
        "refresh_token",
        "environment_id",
        "environment_name",
        "legal_entity_id",
        "legal_entity_name",
        "user_id",
        "email",
        "family_name",
        "given_name",
        "scope",
    ] {
        assert!(!s(&body, k).is_empty(), "{k}");
    }
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["mode"], "Full");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token_expires_in"], 365 * 86_400);
    let again = tokens(&sim, &c).await;
    assert_ne!(s(&again, "access_token"), s(&body, "access_token"));
    let stats = sim.stats();
    assert_eq!((stats.token_calls, stats.token_authorization_code, stats.token_errors), (2, 2, 0));
}

#[tokio::test]
async fn code_exchange_with_body_credentials_and_client_errors() {
    let sim = sim(10).await;
    let c = client();
    let code1 = code(&sim, &c, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code1.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
    ];
    let resp = c.post(sim.token_url()).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let code2 = code(&sim, &c, None).await;
    let form = [("grant_type", "authorization_code"), ("code", code2.as_str()), ("redirect_uri", REDIRECT)];
    let wrong = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some("nope")).form(&form).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "The specified credentials were not valid."})
    );
    let missing = c.post(sim.token_url()).form(&form).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "invalid_client");

    let as_json = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).json(&json!({"grant_type": "x"}));
    let resp = as_json.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");

    let (status, body) = token_call(&sim, &c, &[("grant_type", "password")]).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "unsupported_grant_type"));
    // The code was not burnt by the failed client authentication.
    let (status, _) = exchange(&sim, &c, &code2, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn pkce_verifier_is_checked() {
    let sim = sim(10).await;
    let c = client();
    let verifier = "a".repeat(43) + "-._~verifier";
    let challenge = s256_challenge(&verifier);
    let code1 = code(&sim, &c, Some(&challenge)).await;
    let (status, body) = exchange(&sim, &c, &code1, Some("wrong-verifier")).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let code2 = code(&sim, &c, Some(&challenge)).await;
    let (status, body) = exchange(&sim, &c, &code2, None).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let code3 = code(&sim, &c, Some(&challenge)).await;
    let (status, _) = exchange(&sim, &c, &code3, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn public_client_may_exchange_with_only_a_verifier() {
    let sim = Simulator::start(SimConfig { public_client: true, ..SimConfig::default() }).await.unwrap();
    let c = client();
    let verifier = "v".repeat(64);
    let challenge = s256_challenge(&verifier);
    let code = code(&sim, &c, Some(&challenge)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT_ID),
        ("code_verifier", verifier.as_str()),
    ];
    let resp = c.post(sim.token_url()).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn codes_are_single_use_bound_to_the_redirect_uri_and_expire_after_five_minutes() {
    let sim = sim(10).await;
    let c = client();
    let code1 = code(&sim, &c, None).await;
    assert_eq!(exchange(&sim, &c, &code1, None).await.0, StatusCode::OK);
    let (status, body) = exchange(&sim, &c, &code1, None).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));

    let code2 = code(&sim, &c, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code2.as_str()),
        ("redirect_uri", "http://127.0.0.1:8321/other"),
    ];
    let (status, body) = token_call(&sim, &c, &form).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));

    let code3 = code(&sim, &c, None).await;
    sim.advance_clock(Duration::from_secs(4 * 60));
    assert_eq!(exchange(&sim, &c, &code3, None).await.0, StatusCode::OK);
    let code4 = code(&sim, &c, None).await;
    sim.advance_clock(Duration::from_secs(5 * 60 + 1));
    let (status, body) = exchange(&sim, &c, &code4, None).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn preserving_refresh_keeps_the_token_and_its_fixed_expiry() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let rt = s(&first, "refresh_token");
    sim.advance_clock(Duration::from_secs(10 * 86_400));
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s(&body, "refresh_token"), rt);
    assert_ne!(s(&body, "access_token"), s(&first, "access_token"));
    let left = body["refresh_token_expires_in"].as_i64().unwrap();
    let expected = 355 * 86_400;
    assert!((expected - 5..=expected).contains(&left), "{left}");
    // Still the same token, still usable.
    let (status, again) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&again, "refresh_token")), (StatusCode::OK, rt));
    // It does not slide: past the original 365 days it is dead.
    sim.advance_clock(Duration::from_secs(356 * 86_400));
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_eq!(sim.stats().token_refresh_preserve, 2);
}

#[tokio::test]
async fn rotation_issues_a_new_token_and_kills_the_old_one() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let old = s(&first, "refresh_token");
    sim.advance_clock(Duration::from_secs(30 * 86_400));
    let (status, body) = refresh(&sim, &c, old, false).await;
    assert_eq!(status, StatusCode::OK);
    let new = s(&body, "refresh_token");
    assert_ne!(new, old);
    assert_eq!(body["refresh_token_expires_in"], 365 * 86_400);
    let (status, err) = refresh(&sim, &c, old, false).await;
    assert_eq!((status, s(&err, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(s(&err, "error_description").contains("invalid refresh token"));
    assert_eq!(refresh(&sim, &c, new, false).await.0, StatusCode::OK);
    assert_eq!(sim.stats().token_refresh_rotate, 2);
    assert_eq!(sim.live_refresh_tokens(), 1);
}

#[tokio::test]
async fn dropped_response_after_rotation_loses_the_new_token_and_the_old_one_is_dead() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let old = s(&first, "refresh_token");
    sim.drop_response_after_rotation(1);
    let form = [("grant_type", "refresh_token"), ("refresh_token", old)];
    let err = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await;
    let err = err.expect_err("the connection must drop without a response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let (status, body) = refresh(&sim, &c, old, false).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let stats = sim.stats();
    assert_eq!((stats.dropped, stats.token_refresh_rotate), (1, 1));
    assert_eq!(sim.live_refresh_tokens(), 1, "the rotated token exists, but nobody has it");
}

#[tokio::test]
async fn token_faults_and_revocation() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let rt = s(&first, "refresh_token");
    sim.fail_next_token(1, Fault::Status(503));
    sim.fail_next_token(1, Fault::Html(502));
    sim.fail_next_token(1, Fault::Drop);
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::SERVICE_UNAVAILABLE, "server_error"));
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let html = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::BAD_GATEWAY);
    assert!(html.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert_dropped(c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await);
    assert_eq!(refresh(&sim, &c, rt, true).await.0, StatusCode::OK, "faults are consumed");
    sim.revoke_refresh_tokens();
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let stats = sim.stats();
    assert_eq!((stats.token_errors, stats.dropped, stats.server_errors), (4, 1, 2));
}

#[tokio::test]
async fn api_requires_the_subscription_key_and_a_live_bearer_token() {
    let sim = sim(10).await;
    let c = client();
    let token = s(&tokens(&sim, &c).await, "access_token").to_owned();
    let url = sim.api_url().join("constituent/v1/constituents").unwrap();
    let no_key = c.get(url.clone()).bearer_auth(&token).send().await.unwrap();
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_key.json::<Value>().await.unwrap(),
        json!({"statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."})
    );
    let wrong_key = c.get(url.clone()).header("Bb-Api-Subscription-Key", "x").bearer_auth(&token).send().await.unwrap();
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);
    let no_token = c.get(url.clone()).header("Bb-Api-Subscription-Key", KEY).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.json::<Value>().await.unwrap()["message"], TOKEN_EXPIRED);
    assert_eq!(api_url(&c, "made-up", url.as_str()).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::OK);
    sim.advance_clock(Duration::from_secs(3601));
    let expired = api_url(&c, &token, url.as_str()).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(expired.json::<Value>().await.unwrap()["message"], TOKEN_EXPIRED);
    let stats = sim.stats();
    assert_eq!((stats.api_calls, stats.api_ok, stats.unauthorized), (6, 1, 5));
    assert_eq!(stats.per_entity_calls["constituents"], 6);
}

#[tokio::test]
async fn queued_429s_rate_limit_and_quota() {
    let sim = sim(10).await;
    let c = client();
    let token = access(&sim).await;
    let path = "/gift/v1/gifts?limit=1";
    sim.fail_next_api(2, Fault::TooManyRequests { retry_after_secs: 2 });
    for _ in 0..2 {
        let resp = api_get(&sim, &c, &token, path).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    }
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);

    sim.set_rate_limit(Some(3));
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let resp = api_get(&sim, &c, &token, path).await;
        statuses.push(resp.status());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
            limited = Some(resp.json::<Value>().await.unwrap());
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 1, "{statuses:?}");
    assert_eq!(
        limited.unwrap(),
        json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 second."})
    );
    sim.set_rate_limit(None);

    sim.set_quota(Some(2));
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    let over = api_get(&sim, &c, &token, path).await;
    assert_eq!(over.status(), StatusCode::FORBIDDEN);
    let retry: u64 = over.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    // The quota day ends QUOTA_DAY after the simulator started (not at a real midnight).
    assert!((QUOTA_DAY.as_secs() - 300..=QUOTA_DAY.as_secs()).contains(&retry), "{retry}");
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["statusCode"], 403);
    let msg = s(&body, "message");
    let hms = msg.strip_prefix("Out of call volume quota. Quota will be replenished in ").unwrap();
    assert_eq!(hms.len(), "HH:MM:SS.".len(), "{msg}");
    // The quota refills when the simulator's quota day ends.
    sim.advance_clock(Duration::from_secs(retry + 1));
    let token = access(&sim).await;
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    let stats = sim.stats();
    assert_eq!((stats.rate_limited, stats.quota_rejections), (3, 1));
}

#[tokio::test]
async fn api_faults_drop_and_random_rates() {
    let sim = sim(10).await;
    let c = client();
    let token = access(&sim).await;
    let path = "/fundraising/v1/funds";
    sim.fail_next_api(1, Fault::Drop);
    let url = sim.api_url().join(path.trim_start_matches('/')).unwrap();
    let err = c.get(url).header("Bb-Api-Subscription-Key", KEY).bearer_auth(&token).send().await.unwrap_err();
    assert!(!err.is_status(), "{err:?}");
    sim.fail_next_api(1, Fault::WrongContentType);
    let resp = api_get(&sim, &c, &token, path).await;
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/plain");
    sim.fail_next_api(1, Fault::Oversized);
    let big = api_get(&sim, &c, &token, path).await.bytes().await.unwrap();
    assert!(big.len() > 8 * 1024 * 1024);
    sim.fail_next_api(1, Fault::Slow(Duration::from_millis(200)));
    let start = tokio::time::Instant::now();
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(200));

    sim.set_fault_rates(FaultRates { api_500: 0.5, ..FaultRates::default() });
    let mut errors = 0u64;
    for _ in 0..40 {
        if api_get(&sim, &c, &token, path).await.status() == StatusCode::INTERNAL_SERVER_ERROR {
            errors += 1;
        }
    }
    assert!((5..=35).contains(&errors), "{errors}");
    assert_eq!(sim.stats().server_errors, errors);
}

#[tokio::test]
async fn offset_paging_covers_every_live_id_exactly_once() {
    let sim = sim(60).await;
    // This test follows next_link verbatim; by default it drops the filters, as Blackbaud's may.
    sim.set_next_link_keeps_filters(true);
    let c = client();
    let token = access(&sim).await;
    sim.delete("constituents", 3);
    sim.add("constituents", 2);
    let mut seen = Vec::new();
    let mut link = sim
        .api_url()
        .join("constituent/v1/constituents?limit=7&include_inactive=true&include_deceased=true")
        .unwrap()
        .to_string();
    let mut pages = 0;
    loop {
        let resp = api_url(&c, &token, &link).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["count"], 59);
        seen.extend(ids(&page));
        pages += 1;
        match page["next_link"].as_str() {
            Some(next) => {
                assert!(next.starts_with(sim.api_url().as_str()));
                assert!(next.contains("include_inactive=true"));
                link = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 9);
    let mut live = sim.live_ids("constituents");
    assert_eq!(seen.len(), live.len());
    let numeric = |v: &mut Vec<String>| v.sort_by_key(|id| id.parse::<u64>().unwrap());
    numeric(&mut live);
    assert_eq!(seen, live, "id order, every id once");

    // Without the include flags, hidden rows are neither listed nor counted.
    let visible = api_json(&sim, &c, &token, "/constituent/v1/constituents?limit=5000").await;
    let n = visible["value"].as_array().unwrap().len();
    assert_eq!(visible["count"], n);
    assert!(n < 59);
    assert!(visible["value"].as_array().unwrap().iter().all(|r| r["inactive"] == false && r["deceased"] == false));
}

#[tokio::test]
async fn include_inactive_and_fields_id() {
    let sim = sim(5000).await;
    let c = client();
    let token = access(&sim).await;
    let all = api_json(&sim, &c, &token, "/fundraising/v1/packages?include_inactive=true").await;
    let active = api_json(&sim, &c, &token, "/fundraising/v1/packages").await;
    let inactive = all["value"].as_array().unwrap().iter().filter(|r| r["inactive"] == true).count();
    assert!(inactive > 0, "about 5% of 200 packages are inactive");
    assert_eq!(all["count"].as_u64().unwrap(), active["count"].as_u64().unwrap() + inactive as u64);

    let slim = api_json(&sim, &c, &token, "/constituent/v1/constituents?fields=id&limit=50").await;
    for r in slim["value"].as_array().unwrap() {
        assert_eq!(r.as_object().unwrap().len(), 1, "{r}");
        assert!(r["id"].is_string());
    }
    let some = api_json(&sim, &c, &token, "/event/v1/eventlist?fields=id,name").await;
    let keys: BTreeSet<_> = some["value"][0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, BTreeSet::from(["id".to_owned(), "name".to_owned()]));
}

#[tokio::test]
async fn last_modified_chain_resumes_from_the_stored_next_link() {
    let sim = sim(40).await;
    let c = client();
    let token = access(&sim).await;
    let mut link =
        sim.api_url().join("gift/v1/gifts?limit=9&last_modified=1600-01-01T00%3A00%3A00-04%3A00").unwrap().to_string();
    let mut seen = Vec::new();
    let mut last_modified = String::new();
    let stored = loop {
        let page: Value = api_url(&c, &token, &link).await.json().await.unwrap();
        assert_eq!(page["count"], 80);
        let next = s(&page, "next_link").to_owned();
        assert!(next.contains("sort_token="), "{next}");
        assert!(!next.contains("offset="));
        assert!(next.contains("last_modified=1600-01-01T00%3a00%3a00-04%3a00"), "lowercase escapes: {next}");
        for r in page["value"].as_array().unwrap() {
            let dm = s(r, "date_modified").to_owned();
            assert!(dm >= last_modified, "ascending date_modified");
            assert_eq!(dm.len(), "2016-06-21T02:47:20.2371396+00:00".len());
            last_modified = dm;
        }
        let got = ids(&page);
        if got.is_empty() {
            break next;
        }
        seen.extend(got);
        link = next;
    };
    let mut live = sim.live_ids("gifts");
    live.sort();
    seen.sort();
    assert_eq!(seen, live);

    let before: HashMap<String, Value> =
        sim.live_ids("gifts").into_iter().map(|id| (id.clone(), sim.record("gifts", &id).unwrap())).collect();
    let mut changed = sim.modify("gifts", 5);
    changed.sort();
    changed.dedup();
    assert_eq!(changed.len(), 5);
    let page: Value = api_url(&c, &token, &stored).await.json().await.unwrap();
    let mut got = ids(&page);
    got.sort();
    assert_eq!(got, changed, "exactly the modified records come back");
    for r in page["value"].as_array().unwrap() {
        assert_eq!(Some(r), sim.record("gifts", s(r, "id")).as_ref());
    }
    for id in &changed {
        let now = sim.record("gifts", id).unwrap();
        assert_ne!(now["amount"], before[id]["amount"], "gift {id} changed visibly");
        assert!(s(&now, "date_modified") > s(&before[id], "date_modified"), "gift {id} is newer");
    }
    // The new next_link is again a resumable, empty tail.
    let tail: Value = api_url(&c, &token, s(&page, "next_link")).await.json().await.unwrap();
    assert!(ids(&tail).is_empty());
    let added = sim.add("gifts", 2);
    let fresh: Value = api_url(&c, &token, s(&tail, "next_link")).await.json().await.unwrap();
    assert_eq!(ids(&fresh), added);
    // A last_modified after everything: empty, but still a next_link to resume from.
    let future = "2999-01-01T00:00:00Z";
    let empty = api_json(&sim, &c, &token, &format!("/gift/v1/gifts?last_modified={future}")).await;
    assert_eq!((empty["count"].as_u64(), ids(&empty).len()), (Some(0), 0));
    assert!(empty["next_link"].as_str().unwrap().contains("sort_token="));
}

#[tokio::test]
async fn modified_records_change_visibly() {
    let sim = sim(20).await;
    let id = sim.modify("constituents", 1).pop().unwrap();
    let before_add = sim.record("constituents", &id).unwrap();
    let again = sim.modify("constituents", 20);
    assert!(again.contains(&id));
    let after = sim.record("constituents", &id).unwrap();
    assert_ne!(before_add["email"]["address"], after["email"]["address"]);
    assert!(s(&after, "date_modified") >= s(&before_add, "date_modified"));
    let deleted = sim.delete("constituents", 1).pop().unwrap();
    assert!(sim.record("constituents", &deleted).is_none());
    assert!(!sim.live_ids("constituents").contains(&deleted));
}

#[tokio::test]
async fn events_page_by_offset_without_next_link() {
    let sim = sim(2000).await;
    let c = client();
    let token = access(&sim).await;
    let page = api_json(
        &sim,
        &c,
        &token,
        "/event/v1/eventlist?limit=3&include_inactive=true&last_modified=2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(page["count"], 20);
    assert_eq!(ids(&page).len(), 3);
    assert!(page.get("next_link").is_none(), "{page}");
    let plain = api_json(&sim, &c, &token, "/event/v1/eventlist?limit=3&offset=18&include_inactive=true").await;
    assert!(plain.get("next_link").is_none());
    assert_eq!(ids(&plain), vec!["19", "20"]);
}

#[tokio::test]
async fn invalid_list_parameters_get_400() {
    let sim = sim(10).await;
    let c = client();
    let token = access(&sim).await;
    for q in [
        "/gift/v1/gifts?limit=5001",
        "/gift/v1/gifts?limit=0",
        "/gift/v1/gifts?offset=-1",
        "/gift/v1/gifts?last_modified=yesterday",
        "/gift/v1/gifts?sort_token=AAAAAAAC%2bI4%3d&sort=date_modified",
        "/gift/v1/gifts?sort_token=garbage",
    ] {
        let resp = api_get(&sim, &c, &token, q).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(resp.json::<Value>().await.unwrap()["statusCode"], 400);
    }
    assert_eq!(api_get(&sim, &c, &token, "/event/v1/eventlist?limit=10000").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_and_token_cors_knob() {
    let sim = sim(10).await;
    let c = client();
    for path in ["token", "constituent/v1/constituents"] {
        let resp = c
            .request(reqwest::Method::OPTIONS, sim.base_url().join(path).unwrap())
            .header("Origin", "http://localhost:5173")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,bb-api-subscription-key")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("bb-api-subscription-key") && allowed.contains("authorization"));
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    }
    token_call(&sim, &c, &[("grant_type", "x")]).await;
    sim.set_token_cors(false);
    let form = [("grant_type", "x")];
    let resp = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let api = c.get(sim.api_url().join("gift/v1/gifts").unwrap()).send().await.unwrap();
    assert_eq!(api.headers()["access-control-allow-origin"], "*", "the API keeps CORS");
}

#[tokio::test]
async fn control_api_over_http() {
    let sim = sim(30).await;
    let c = client();
    let control = sim.base_url().join("_sim/control").unwrap();
    let post = |body: Value| c.post(control.clone()).json(&body).send();

    let resp = post(json!({"op": "modify", "entity": "gifts", "count": 3})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["ids"].as_array().unwrap().len(), 3);

    let tokens: Value = post(json!({"op": "issue_tokens"})).await.unwrap().json().await.unwrap();
    let token = s(&tokens["tokens"], "access_token").to_owned();
    post(json!({"op": "fail_next_api", "n": 1, "fault": {"kind": "drop"}})).await.unwrap();
    let url = sim.api_url().join("gift/v1/gifts").unwrap();
    assert_dropped(c.get(url.clone()).header("Bb-Api-Subscription-Key", KEY).bearer_auth(&token).send().await);
    post(json!({"op": "fail_next_api", "n": 1, "fault": {"kind": "status", "code": 503}})).await.unwrap();
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    post(json!({"op": "set_quota", "remaining": 0})).await.unwrap();
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::FORBIDDEN);
    post(json!({"op": "set_quota", "remaining": null})).await.unwrap();
    post(json!({"op": "advance_clock", "secs": 7200})).await.unwrap();
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::UNAUTHORIZED);

    let stats: SimStats = c.get(sim.base_url().join("_sim/stats").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats, sim.stats());
    assert_eq!((stats.dropped, stats.server_errors, stats.quota_rejections, stats.unauthorized), (1, 1, 1, 1));

    let record: Value =
        post(json!({"op": "record", "entity": "gifts", "id": "1"})).await.unwrap().json().await.unwrap();
    assert_eq!(record["record"]["id"], "1");
    let bad = post(json!({"op": "modify", "entity": "nope", "count": 1})).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<Value>().await.unwrap()["ok"], false);
    let unknown = post(json!({"op": "explode"})).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn large_tables_page_deep_offsets_and_last_modified() {
    let sim = sim(200_000).await;
    let c = client();
    let token = access(&sim).await;
    let page = api_json(&sim, &c, &token, "/gift/v1/gifts?limit=5000&offset=395000").await;
    assert_eq!((page["count"].as_u64(), ids(&page).len()), (Some(400_000), 5000));
    let middle = s(&page["value"][0], "date_modified").to_owned();
    let since =
        api_json(&sim, &c, &token, &format!("/gift/v1/gifts?limit=5000&last_modified={}", middle.replace('+', "%2B")))
            .await;
    assert_eq!(since["count"].as_u64(), Some(5000));
    assert_eq!(ids(&since)[0], "395001");
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = sim(10).await;
    let url = sim.base_url();
    assert!(client().get(url.clone()).send().await.is_ok());
    sim.shutdown().await;
    let err = Client::new().get(url).send().await.expect_err("nothing answers after shutdown");
    assert!(err.is_connect(), "the connection is refused after shutdown: {err:?}");
}
