//! The simulator's protocol, driven over real HTTP with reqwest: the test double's own tests,
//! next to it so the fast tier (`cargo test -p skysync-cli`) runs them.
//!
//! - [`oauth`]: `/oauth/authorize` and `/token` (codes, PKCE, refresh, rotation, token faults).
//! - [`lists`]: the list APIs (keys, bearer, rate limit, quota, faults, paging, filters).
//! - [`control`]: CORS, the HTTP control API, large tables and shutdown.

mod control;
mod lists;
mod oauth;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::{ActionsPaging, Fault, FaultRates, SimConfig, SimHandle, SimStats, Simulator, s256_challenge};
use reqwest::{Client, Response, StatusCode, header, redirect::Policy};
use serde_json::{Value, json};
use url::Url;

const REDIRECT: &str = "http://127.0.0.1:8321/callback";
const CLIENT_ID: &str = "sim-client-id";
const SECRET: &str = super::DEFAULT_CLIENT_SECRET;
const KEY: &str = "sim-subscription-key";
const TOKEN_EXPIRED: &str = "The required Authorization header was missing or invalid, or the token has expired.";

/// How long after start the first quota day ends: far beyond any test, so only `advance_clock`
/// reaches it and a real midnight UTC during a run changes nothing.
const QUOTA_DAY: Duration = Duration::from_secs(12 * 3600);

/// A simulator with `records` constituents on a free port and a deterministic quota day.
async fn sim(records: u64) -> SimHandle {
    let cfg = SimConfig { records, quota_day_ends_after: Some(QUOTA_DAY), ..SimConfig::default() };
    Simulator::start(cfg).await.expect("simulator starts")
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
