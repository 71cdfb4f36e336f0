//! The SKY side of a test, in one place: a simulator with a deterministic quota day, tokens as a
//! consent would leave them, the OAuth configuration pointing at the simulator, the consent step
//! through its authorize endpoint, and a `Session` / `ApiClient` assembled the way the CLI does.

use std::sync::Arc;
use std::time::Duration;

use skysync_cli::runtime::TokioRuntime;
use skysync_cli::sim::{SimConfig, SimHandle, Simulator};
use skysync_core::api::{ApiClient, RetryPolicy};
use skysync_core::config::ApiConfig;
use skysync_core::host::{Clock, OsEntropy, SystemClock};
use skysync_core::http::{HttpClient, HttpResponse, ReqwestClient};
use skysync_core::secret::{ClientSecret, SubscriptionKey};
use skysync_core::token::{authorization_code_request, parse_token_response};
use skysync_core::{
    Endpoints, MemoryStore, OAuthConfig, RenewalPolicy, Session, SessionParts, TokenSet, parse_callback,
    start_authorization,
};
use url::Url;

/// The redirect URI the in-process fixtures register (nobody listens there: the consent step
/// reads the code from the simulator's redirect).
pub const REDIRECT_URI: &str = "http://127.0.0.1:8321/callback";

/// How long after start the simulator's first quota day ends: far beyond any test, so only
/// `advance_clock` reaches it and a real midnight UTC during a run changes nothing.
pub const QUOTA_DAY: Duration = Duration::from_secs(12 * 3600);

/// Simulator settings for a test: `records` constituents and a quota day that ends
/// [`QUOTA_DAY`] after start.
pub fn sim_config(records: u64) -> SimConfig {
    SimConfig { records, quota_day_ends_after: Some(QUOTA_DAY), ..SimConfig::default() }
}

/// A simulator on a free loopback port (port 0: it binds and reports its own) with `cfg`, made
/// deterministic: a quota day of [`QUOTA_DAY`] unless `cfg` sets one.
pub async fn start_sim(cfg: SimConfig) -> SimHandle {
    let quota_day_ends_after = cfg.quota_day_ends_after.or(Some(QUOTA_DAY));
    Simulator::start(SimConfig { port: 0, quota_day_ends_after, ..cfg }).await.expect("simulator starts")
}

/// A fresh token set as if a user had just consented (the simulator mints it; no `/token` call
/// is counted), timed by the simulator's clock.
pub fn minted_tokens(sim: &SimHandle) -> TokenSet {
    let response = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&sim.issue_tokens()).expect("token JSON"),
    };
    let parsed = parse_token_response(&sim.token_url(), &response).expect("minted tokens parse");
    TokenSet::from_exchange(&sim.config().client_id, parsed, sim.now()).expect("minted tokens have a refresh token")
}

/// The OAuth configuration of the simulator's confidential client (HTTP Basic), redirecting to
/// [`REDIRECT_URI`].
pub fn oauth_config(sim: &SimHandle) -> OAuthConfig {
    let cfg = sim.config();
    OAuthConfig::new(
        cfg.client_id.clone(),
        Some(ClientSecret::new(cfg.client_secret.clone())),
        Url::parse(REDIRECT_URI).expect("redirect URI"),
    )
    .with_endpoints(Endpoints { authorize: sim.authorize_url(), token: sim.token_url(), api: sim.api_url() })
}

/// Consents through the simulator's authorize endpoint (PKCE and state checked) and exchanges
/// the code at its token endpoint.
pub async fn consent(sim: &SimHandle) -> TokenSet {
    let config = oauth_config(sim);
    let pending = start_authorization(&config, &OsEntropy);
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let resp = browser.get(pending.url.clone()).send().await.expect("GET authorize");
    assert_eq!(resp.status().as_u16(), 302, "authorize redirects");
    let location = resp.headers()["location"].to_str().expect("ASCII Location").to_owned();
    assert!(location.starts_with(&format!("{REDIRECT_URI}?")), "{location}");
    let code = parse_callback(&location, &pending.state, false).expect("callback parses");
    let request = authorization_code_request(&config, &code, Some(&pending.verifier), &pending.redirect_uri);
    let response = ReqwestClient::new().expect("HTTP client").execute(request).await.expect("token call");
    let parsed = parse_token_response(&config.endpoints.token, &response).expect("token response parses");
    TokenSet::from_exchange(&config.client_id, parsed, SystemClock.now()).expect("a refresh token")
}

/// A session over `store` for the simulator, on tokio and the system clock.
pub fn session(sim: &SimHandle, store: Arc<MemoryStore>, policy: RenewalPolicy) -> Session {
    Session::new(SessionParts {
        oauth: oauth_config(sim),
        policy,
        http: Arc::new(ReqwestClient::new().expect("HTTP client")),
        store,
        clock: Arc::new(SystemClock),
        runtime: Arc::new(TokioRuntime),
    })
}

/// An API client for the simulator as `skysync login` would leave it (minted tokens in memory),
/// pacing at `per_second` calls per second (0 = off).
pub fn api_client(sim: &SimHandle, per_second: f64) -> ApiClient {
    let store = Arc::new(MemoryStore::with(minted_tokens(sim)));
    ApiClient::new(
        session(sim, store, RenewalPolicy::default()),
        Arc::new(ReqwestClient::new().expect("HTTP client")),
        Arc::new(TokioRuntime),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
        ApiConfig { base: sim.api_url(), subscription_key: SubscriptionKey::new(sim.config().subscription_key) },
        per_second,
    )
}

/// [`api_client`] that retries up to 10 times with short backoffs (20 to 200 ms), so tests that
/// inject faults finish quickly.
pub fn retrying_api_client(sim: &SimHandle, per_second: f64) -> ApiClient {
    api_client(sim, per_second).with_retry(RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        ..RetryPolicy::default()
    })
}
