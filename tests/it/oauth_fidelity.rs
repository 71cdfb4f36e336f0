//! Where skysync's OAuth assumptions meet Blackbaud's documented (or undocumented) behaviour, each
//! tested against the simulator set both ways: how HTTP Basic carries the secret, what a preserving
//! refresh does to the refresh token's expiry, short access-token lifetimes, and exact
//! redirect-URI matching.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use skysync_cli::runtime::TokioRuntime;
use skysync_cli::sim::{BasicDecoding, PreservedRefreshExpiry, SimConfig, SimHandle, Simulator};
use skysync_core::host::Clock;
use skysync_core::http::{HttpResponse, ReqwestClient};
use skysync_core::secret::ClientSecret;
use skysync_core::token::parse_token_response;
use skysync_core::{Endpoints, MemoryStore, OAuthConfig, RenewalPolicy, Session, SessionParts, TokenSet};
use skysync_tests::cli::Skysync;
use time::OffsetDateTime;
use url::Url;

const DAY: Duration = Duration::from_secs(86_400);

// ---------------------------------------------------------------------------------------------
// HTTP Basic: Blackbaud takes the secret as is.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_default_client_auth_sends_a_blackbaud_shaped_secret_as_is() {
    let s = Skysync::start().await;
    let secret = s.sim.config().client_secret;
    assert!(["+", "/", "="].iter().all(|c| secret.contains(c)), "the simulator's secret looks like Blackbaud's");
    assert_eq!(s.sim.config().basic_decoding, BasicDecoding::Raw, "and is read the way Blackbaud reads it");
    let run = s.login_through_listener().await;
    run.expect_code(0);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_rfc_form_encoded_basic_is_refused_by_blackbaud() {
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_CLIENT_AUTH", Some("basic-form-encoded"));
    let run = s.login_through_listener().await;
    run.expect_code(3);
    assert!(run.stderr.contains("invalid_client") && run.stderr.contains("client_auth"), "{}", run.stderr);
    assert!(!s.token_file().exists());
    assert!(!run.stderr.contains(&s.sim.config().client_secret), "{}", run.stderr);
}

/// What `skysync token` does with an expired access token (a refresh, so client authentication)
/// under `client_auth` against a server that decodes Basic as `decoding`.
async fn refresh_with(client_auth: &str, decoding: BasicDecoding, public_client: bool) -> (i32, String) {
    let s = Skysync::with_sim(SimConfig { records: 10, basic_decoding: decoding, public_client, ..Default::default() })
        .await;
    s.seed_expired_access().await;
    s.set_env("SKYSYNC_CLIENT_AUTH", Some(client_auth));
    let run = s.run(&["token"]).await;
    if run.code == 0 {
        assert_eq!(run.stdout.trim(), s.stored_access_token());
        assert_eq!(s.sim.stats().token_refresh_preserve, 1);
    } else {
        assert_eq!(s.sim.stats().token_errors, 1, "one refused call, not retried: {}", run.stderr);
    }
    (run.code, run.stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_auth_works_against_its_server_and_fails_against_the_other() {
    use BasicDecoding::{FormDecoded, Raw};
    for (auth, decoding, works) in [
        ("basic", Raw, true),
        ("basic", FormDecoded, false),
        ("basic-form-encoded", FormDecoded, true),
        ("basic-form-encoded", Raw, false),
        // Form fields are form-decoded by every server.
        ("body", Raw, true),
        ("body", FormDecoded, true),
        // A confidential application's refresh needs its secret.
        ("none", Raw, false),
    ] {
        let (code, stderr) = refresh_with(auth, decoding, false).await;
        if works {
            assert_eq!(code, 0, "{auth} against {decoding:?}: {stderr}");
        } else {
            assert_eq!(code, 3, "{auth} against {decoding:?}: {stderr}");
            assert!(stderr.contains("invalid_client"), "{auth} against {decoding:?}: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_comes_from_the_config_file_or_the_environment_and_is_validated() {
    let s =
        Skysync::with_sim(SimConfig { records: 10, basic_decoding: BasicDecoding::FormDecoded, ..Default::default() })
            .await;
    let config_dir = s.home().join("config").join("skysync");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.toml"), "[profiles.default]\nclient_auth = \"basic-form-encoded\"\n")
        .unwrap();
    let show = s.run(&["config", "show", "--json"]).await;
    show.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["settings"]["client_auth"]["value"], "basic-form-encoded");
    assert_eq!(v["settings"]["client_auth"]["source"], "config file");
    // The file's choice is what the refresh uses: an RFC-style server accepts it.
    s.seed_expired_access().await;
    s.run(&["token"]).await.expect_code(0);
    // The environment wins, and a value that is not one of the four is a configuration error.
    s.set_env("SKYSYNC_CLIENT_AUTH", Some("basic_form_encoded"));
    let run = s.run(&["token"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("SKYSYNC_CLIENT_AUTH"), "{}", run.stderr);
    assert!(run.stderr.contains("basic, basic-form-encoded, body, none"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_exchanges_its_code_without_a_secret() {
    let s = Skysync::with_sim(SimConfig { records: 10, public_client: true, ..Default::default() }).await;
    s.set_env("SKYSYNC_CLIENT_AUTH", Some("none"));
    s.set_env("SKYSYNC_CLIENT_SECRET", None);
    let run = s.login_through_listener().await;
    run.expect_code(0);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
    // The same application set to confidential refuses a secretless exchange.
    let s = Skysync::with_sim(SimConfig { records: 10, ..Default::default() }).await;
    s.set_env("SKYSYNC_CLIENT_AUTH", Some("none"));
    let run = s.login_through_listener().await;
    run.expect_code(3);
    assert!(run.stderr.contains("invalid_client"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// A preserved refresh token's expiry stays fixed; the renewal window must open on schedule.

/// The simulator's clock, so a session can live through a year of simulated time.
struct SimClock(SimHandle);

impl Clock for SimClock {
    fn now(&self) -> OffsetDateTime {
        self.0.now()
    }
}

fn oauth(sim: &SimHandle) -> OAuthConfig {
    let cfg = sim.config();
    OAuthConfig::new(
        cfg.client_id.clone(),
        Some(ClientSecret::new(cfg.client_secret.clone())),
        Url::parse("http://127.0.0.1:8321/callback").unwrap(),
    )
    .with_endpoints(Endpoints { authorize: sim.authorize_url(), token: sim.token_url(), api: sim.api_url() })
}

/// A consent as the simulator mints it at its current time.
fn consented(sim: &SimHandle) -> TokenSet {
    let body = sim.issue_tokens().to_string().into_bytes();
    let response =
        HttpResponse { status: 200, headers: vec![("content-type".into(), "application/json".into())], body };
    let parsed = parse_token_response(&sim.token_url(), &response).unwrap();
    TokenSet::from_exchange(&sim.config().client_id, parsed, sim.now()).unwrap()
}

/// Runs a session through `days` nightly refreshes and returns the day of the first rotation.
async fn nightly_refreshes(mode: PreservedRefreshExpiry, days: u32) -> u32 {
    let sim =
        Simulator::start(SimConfig { records: 0, preserved_refresh_expiry: mode, ..Default::default() }).await.unwrap();
    let store = Arc::new(MemoryStore::with(consented(&sim)));
    let policy = RenewalPolicy::default();
    let session = Session::new(SessionParts {
        oauth: oauth(&sim),
        policy,
        http: Arc::new(ReqwestClient::new().unwrap()),
        store: store.clone(),
        clock: Arc::new(SimClock(sim.clone())),
        runtime: Arc::new(TokioRuntime),
    });
    let mut first_rotation = None;
    for day in 1..=days {
        sim.advance_clock(DAY);
        let result = session.access_token().await;
        let stored = store.snapshot().unwrap().tokens;
        assert!(
            result.is_ok(),
            "{mode:?}, day {day}: access lost ({:?}); stored expiry {}",
            result,
            stored.refresh_expires_at
        );
        // The client counts a lifetime from when the answer arrived, a moment after the server
        // counted it: a minute of slack, where the bug this guards against drifts by months.
        let server = sim.refresh_token_expiry(stored.refresh_token.secret()).expect("a live token");
        assert!(
            stored.refresh_expires_at <= server + time::Duration::MINUTE,
            "{mode:?}, day {day}: the stored expiry {} is later than the server's {server}",
            stored.refresh_expires_at
        );
        if first_rotation.is_none() && sim.stats().token_refresh_rotate > 0 {
            first_rotation = Some(day);
        }
    }
    assert_eq!(sim.stats().token_errors, 0);
    first_rotation.unwrap_or_else(|| panic!("{mode:?}: no rotation in {days} days"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_nightly_refreshes_rotates_inside_the_window_whatever_a_preserving_refresh_reports() {
    // 365-day refresh tokens and a 60-day window: the renewal window opens on night 305 (night
    // 306 if no real time passed between the nights, as in the core's fixed-clock test). Past day
    // 365 the original token is dead; access must never be lost.
    for mode in [
        PreservedRefreshExpiry::FixedReportsRemaining,
        PreservedRefreshExpiry::FixedReportsFullLifetime,
        PreservedRefreshExpiry::Sliding,
    ] {
        let rotated_on = nightly_refreshes(mode, 400).await;
        assert!((305..=306).contains(&rotated_on), "{mode:?}: first rotation on night {rotated_on}");
    }
}

// ---------------------------------------------------------------------------------------------
// Short access-token lifetimes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_five_minute_access_tokens_consecutive_token_calls_refresh_once() {
    let s =
        Skysync::with_sim(SimConfig { records: 10, access_token_ttl: Duration::from_secs(300), ..Default::default() })
            .await;
    s.seed_expired_access().await;
    // The default skew is five minutes too: a fresh token must still count as fresh.
    let mut printed = Vec::new();
    for _ in 0..3 {
        let run = s.run(&["token"]).await;
        run.expect_code(0);
        printed.push(run.stdout);
    }
    assert_eq!(s.sim.stats().token_calls, 1, "one refresh, then the fresh token is reused");
    assert!(printed.iter().all(|p| p == &printed[0]));
}

// ---------------------------------------------------------------------------------------------
// Redirect URIs match exactly.

async fn authorize_status(sim: &SimHandle, redirect_uri: &str) -> StatusCode {
    let mut url = sim.authorize_url();
    url.query_pairs_mut()
        .append_pair("client_id", &sim.config().client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client.get(url).send().await.unwrap().status()
}

#[tokio::test]
async fn redirect_uris_match_exactly_unless_loopback_leniency_is_on() {
    let strict = Simulator::start(SimConfig { records: 0, ..Default::default() }).await.unwrap();
    assert_eq!(authorize_status(&strict, "http://localhost:8321/callback").await, StatusCode::FOUND);
    let near_misses = [
        "http://localhost:8321/callback/",
        "http://localhost:8321/Callback",
        "http://LOCALHOST:8321/callback",
        "http://localhost:8322/callback",
        "http://localhost/callback",
        "https://localhost:8321/callback",
        "http://localhost:8321/callback?x=1",
    ];
    for uri in near_misses {
        assert_eq!(authorize_status(&strict, uri).await, StatusCode::BAD_REQUEST, "{uri}");
    }
    strict.register_redirect_uri("http://localhost:8321/callback/");
    assert_eq!(authorize_status(&strict, "http://localhost:8321/callback/").await, StatusCode::FOUND);

    let lenient = Simulator::start(SimConfig { records: 0, allow_any_loopback_redirect: true, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(authorize_status(&lenient, "http://localhost:8322/callback").await, StatusCode::FOUND);
    assert_eq!(authorize_status(&lenient, "http://127.0.0.1:9/other").await, StatusCode::FOUND);
    assert_eq!(authorize_status(&lenient, "https://app.example.org/cb").await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_oauth_knobs_are_reachable_through_the_control_api() {
    let sim = Simulator::start(SimConfig { records: 0, ..Default::default() }).await.unwrap();
    let control = sim.base_url().join("_sim/control").unwrap();
    let client = reqwest::Client::new();
    for op in [
        serde_json::json!({"op": "set_basic_decoding", "decoding": "form_decoded"}),
        serde_json::json!({"op": "set_preserved_refresh_expiry", "mode": "fixed_reports_full_lifetime"}),
        serde_json::json!({"op": "set_access_token_ttl", "secs": 300}),
        serde_json::json!({"op": "register_redirect_uri", "uri": "http://127.0.0.1:9000/cb"}),
    ] {
        let resp = client.post(control.clone()).json(&op).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{op}");
    }
    let cfg = sim.config();
    assert_eq!(cfg.basic_decoding, BasicDecoding::FormDecoded);
    assert_eq!(cfg.preserved_refresh_expiry, PreservedRefreshExpiry::FixedReportsFullLifetime);
    assert_eq!(cfg.access_token_ttl, Duration::from_secs(300));
    assert_eq!(sim.issue_tokens()["expires_in"], 300);
    assert_eq!(authorize_status(&sim, "http://127.0.0.1:9000/cb").await, StatusCode::FOUND);
    let bad = serde_json::json!({"op": "set_basic_decoding", "decoding": "loose"});
    assert_eq!(client.post(control).json(&bad).send().await.unwrap().status(), StatusCode::BAD_REQUEST);
}
