//! The bindings in headless Chromium (`wasm-bindgen-test-runner`; see web/README.md):
//! PKCE/state round trip through sessionStorage, the error names, and real `fetch` calls against
//! the SKY simulator, whose URL is baked in at build time from `SKYSYNC_SIM_URL` (started by the
//! test script with `skysync sim`). The simulator's defaults are assumed: client `sim-client-id`,
//! secret [`SIM_SECRET`], subscription key `sim-subscription-key`, and loopback redirects allowed
//! (the script starts it with `--any-loopback-redirect`, since the runner's port is not known in
//! advance).
#![cfg(target_arch = "wasm32")]

use js_sys::Reflect;
use serde_json::Value;
use skysync_web::SkyAuth;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// The simulator's default application secret (`skysync_cli::sim::DEFAULT_CLIENT_SECRET`, which a
/// wasm test cannot import): shaped like Blackbaud's, with `+`, `/` and `=`.
const SIM_SECRET: &str = "sim+Secret/0123456789abcdefABCDEF+xyz/Q==";

/// The simulator's base URL. Tests that talk to it fail (never skip) when it is not configured.
fn sim_url() -> String {
    match option_env!("SKYSYNC_SIM_URL") {
        Some(url) if url.ends_with('/') => url.to_owned(),
        Some(url) => format!("{url}/"),
        None => panic!(
            "SKYSYNC_SIM_URL is not set: start `skysync sim --port 8330` and build the tests with \
             SKYSYNC_SIM_URL=http://127.0.0.1:8330/"
        ),
    }
}

/// The simulator when configured, else an address nothing listens on (tests that never reach
/// the network).
fn sim_or_placeholder() -> String {
    option_env!("SKYSYNC_SIM_URL").map_or_else(|| "http://127.0.0.1:9/".to_owned(), |_| sim_url())
}

fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

fn session_storage() -> web_sys::Storage {
    window().session_storage().unwrap().expect("sessionStorage")
}

/// A URL on the runner page's origin that the runner serves (its JS glue, shown as text in a
/// frame), and that the simulator accepts as a loopback redirect URI. An unknown path would end
/// in a browser error page, whose location a test cannot read.
fn own_redirect_uri() -> String {
    format!("{}/wasm-bindgen-test", window().location().origin().unwrap())
}

fn config(extra: Value) -> JsValue {
    config_at(&sim_url(), extra)
}

fn offline_config(extra: Value) -> JsValue {
    config_at(&sim_or_placeholder(), extra)
}

fn config_at(sim: &str, extra: Value) -> JsValue {
    let mut c = serde_json::json!({
        "clientId": "sim-client-id",
        "clientSecret": SIM_SECRET,
        "redirectUri": own_redirect_uri(),
        "authorizeUrl": format!("{sim}oauth/authorize"),
        "tokenUrl": format!("{sim}token"),
        "apiUrl": sim,
        "subscriptionKey": "sim-subscription-key",
        "storagePrefix": "skysync-test.",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    let json = serde_json::to_string(&c).unwrap();
    js_sys::JSON::parse(&json).unwrap()
}

fn error_name(e: &JsValue) -> String {
    let e: &js_sys::Error = e.dyn_ref().unwrap_or_else(|| panic!("not an Error: {e:?}"));
    assert!(!String::from(e.message()).is_empty());
    e.name().into()
}

async fn rejected(p: js_sys::Promise) -> String {
    match JsFuture::from(p).await {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => error_name(&e),
    }
}

fn query_param(url: &str, name: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    let found = u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    found.unwrap_or_else(|| panic!("{name} missing from {url}"))
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

#[wasm_bindgen_test]
fn pkce_verifier_and_state_round_trip_through_session_storage() {
    session_storage().clear().unwrap();
    let auth = SkyAuth::new(offline_config(serde_json::json!({}))).unwrap();
    assert!(!auth.has_pending_authorization());
    let url = auth.authorize_url().unwrap();
    assert!(auth.has_pending_authorization());
    assert_eq!(query_param(&url, "code_challenge_method"), "S256");
    assert_eq!(query_param(&url, "client_id"), "sim-client-id");
    let state = query_param(&url, "state");
    let challenge = query_param(&url, "code_challenge");

    let stored = session_storage().get_item("skysync-test.pending").unwrap().expect("pending consent stored");
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["state"], state.as_str());
    let verifier = stored["verifier"].as_str().unwrap();
    assert!((43..=128).contains(&verifier.len()));
    assert!(!url.contains(verifier), "the verifier must not travel in the URL");
    assert_ne!(verifier, challenge);
    // Nothing in localStorage.
    assert_eq!(window().local_storage().unwrap().unwrap().length().unwrap(), 0);

    // A second SkyAuth (the page after the redirect) finds the same pending consent.
    let again = SkyAuth::new(offline_config(serde_json::json!({}))).unwrap();
    assert!(again.has_pending_authorization());
    assert_eq!(again.clear_storage().unwrap(), 1);
    assert!(!auth.has_pending_authorization());
}

#[wasm_bindgen_test]
async fn redirect_errors_have_stable_names_and_the_pending_consent_is_single_use() {
    session_storage().clear().unwrap();
    let auth = SkyAuth::new(offline_config(serde_json::json!({}))).unwrap();
    let cb = own_redirect_uri();

    let name = rejected(auth.handle_redirect(format!("{cb}?code=c&state=s"), None)).await;
    assert_eq!(name, "NoPendingAuthorizationError");

    auth.authorize_url().unwrap();
    let name = rejected(auth.handle_redirect(format!("{cb}?code=c&state=forged"), None)).await;
    assert_eq!(name, "StateMismatchError");
    assert!(!auth.has_pending_authorization(), "a redirect is handled once, even a bad one");

    let url = auth.authorize_url().unwrap();
    let state = query_param(&url, "state");
    let name = rejected(auth.handle_redirect(format!("{cb}?error=access_denied&state={state}"), None)).await;
    assert_eq!(name, "ConsentDeniedError");

    let url = auth.authorize_url().unwrap();
    let state = query_param(&url, "state");
    let name = rejected(auth.handle_redirect(format!("{cb}?state={state}"), None)).await;
    assert_eq!(name, "InvalidRedirectError");
}

#[wasm_bindgen_test]
async fn config_and_usage_errors_are_js_errors_with_names() {
    let e = SkyAuth::new(offline_config(serde_json::json!({"clientId": ""}))).unwrap_err();
    assert_eq!(error_name(&e), "ConfigError");
    let e = SkyAuth::new(offline_config(serde_json::json!({"redirectURI": "typo"}))).unwrap_err();
    assert_eq!(error_name(&e), "ConfigError");
    let e = SkyAuth::new(offline_config(serde_json::json!({"tokenUrl": "not a url"}))).unwrap_err();
    assert_eq!(error_name(&e), "ConfigError");

    let auth = SkyAuth::new(offline_config(serde_json::json!({}))).unwrap();
    assert_eq!(rejected(auth.access_token()).await, "NotLoggedInError");
    assert_eq!(rejected(auth.api_get("/constituent/v1/constituents".into())).await, "NotLoggedInError");
    assert_eq!(error_name(&auth.export_bundle().unwrap_err()), "NotLoggedInError");
    assert!(auth.token_info(None).unwrap().is_undefined());
    assert_eq!(error_name(&auth.restore_bundle("{}").unwrap_err()), "BundleError");

    let names: Vec<String> = SkyAuth::error_names();
    assert!(names.contains(&"TokenEndpointUnreachableError".to_owned()));
}

/// Follows the consent in a hidden iframe: the simulator consents at once and redirects to this
/// page's origin, so the final URL (with `code` and `state`) is same-origin and readable.
async fn consent_in_iframe(authorize_url: &str) -> String {
    let document = window().document().unwrap();
    let iframe: web_sys::HtmlIFrameElement = document.create_element("iframe").unwrap().dyn_into().unwrap();
    // The runner serves its page with COEP `require-corp`; a credentialless frame may still load
    // the simulator (which sends no Cross-Origin-Resource-Policy).
    iframe.set_attribute("credentialless", "").unwrap();
    iframe.set_src(authorize_url);
    document.body().unwrap().append_child(&iframe).unwrap();
    // Poll: while the frame shows the simulator (another origin) its location cannot be read.
    for _ in 0..200 {
        let href = iframe.content_window().and_then(|w| w.location().href().ok());
        if let Some(href) = href.filter(|h| h.contains("state=")) {
            iframe.remove();
            return href;
        }
        sleep_ms(50).await;
    }
    let last = iframe.content_window().map(|w| w.location().href());
    panic!("the consent did not redirect back to this origin within 10 s (frame location: {last:?})");
}

async fn sleep_ms(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms).unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

#[wasm_bindgen_test]
async fn consent_exchange_refresh_and_api_call_against_the_simulator() {
    session_storage().clear().unwrap();
    let auth = SkyAuth::new(config(serde_json::json!({}))).unwrap();
    let back = consent_in_iframe(&auth.authorize_url().unwrap()).await;
    assert!(SkyAuth::is_redirect(&back), "{back}");

    let info = JsFuture::from(auth.handle_redirect(back.clone(), None)).await.expect("exchange");
    assert_eq!(get(&info, "environmentId").as_string().unwrap(), "p-simEnvironment0000000001");
    assert!(get(&info, "user").as_string().unwrap().contains("sim.user@example.org"));
    assert!(get(&info, "refreshExpiresAt").as_string().unwrap().len() >= 20);
    assert!(get(&info, "refreshToken").is_undefined(), "no secrets unless asked");
    assert!(!auth.has_pending_authorization());

    // The same redirect again: the pending consent is gone.
    assert_eq!(rejected(auth.handle_redirect(back, None)).await, "NoPendingAuthorizationError");

    let token = JsFuture::from(auth.access_token()).await.unwrap().as_string().unwrap();
    assert!(!token.is_empty());

    let page = JsFuture::from(auth.api_get("/constituent/v1/constituents?limit=1".into())).await.expect("api call");
    assert!(get(&page, "count").as_f64().unwrap() > 0.0);
    assert_eq!(js_sys::Array::from(&get(&page, "value")).length(), 1);

    let bundle: Value = serde_json::from_str(&auth.export_bundle().unwrap()).unwrap();
    assert_eq!(bundle["format"], "skysync-token-bundle");
    assert_eq!(bundle["kind"], "refresh_token");
    assert_eq!(bundle["tokens"]["client_id"], "sim-client-id");
    assert!(auth.code_expires_at().is_none());

    // A second SkyAuth restores the bundle and calls the API with it.
    let other = SkyAuth::new(config(serde_json::json!({}))).unwrap();
    other.restore_bundle(&bundle.to_string()).unwrap();
    let page = JsFuture::from(other.api_get("/constituent/v1/constituents?limit=2".into())).await.unwrap();
    assert_eq!(js_sys::Array::from(&get(&page, "value")).length(), 2);

    // A wrong subscription key is reported as such.
    let wrong = SkyAuth::new(config(serde_json::json!({"subscriptionKey": "wrong"}))).unwrap();
    wrong.restore_bundle(&bundle.to_string()).unwrap();
    assert_eq!(rejected(wrong.api_get("/constituent/v1/constituents".into())).await, "SubscriptionKeyError");
}

#[wasm_bindgen_test]
async fn a_bad_code_is_invalid_grant_over_real_fetch() {
    session_storage().clear().unwrap();
    let auth = SkyAuth::new(config(serde_json::json!({}))).unwrap();
    let state = query_param(&auth.authorize_url().unwrap(), "state");
    let back = format!("{}?code=not-a-real-code&state={state}", own_redirect_uri());
    assert_eq!(rejected(auth.handle_redirect(back, None)).await, "ConsentRequiredError");

    let wrong_secret = SkyAuth::new(config(serde_json::json!({"clientSecret": "wrong"}))).unwrap();
    let state = query_param(&wrong_secret.authorize_url().unwrap(), "state");
    let back = format!("{}?code=x&state={state}", own_redirect_uri());
    assert_eq!(rejected(wrong_secret.handle_redirect(back, None)).await, "InvalidClientError");
}

#[wasm_bindgen_test]
async fn an_unreachable_token_endpoint_leaves_a_code_bundle() {
    session_storage().clear().unwrap();
    // Port 9 (discard) on loopback: nothing listens, fetch fails like a CORS refusal does.
    let auth = SkyAuth::new(config(serde_json::json!({"tokenUrl": "http://127.0.0.1:9/token"}))).unwrap();
    let back = consent_in_iframe(&auth.authorize_url().unwrap()).await;
    assert_eq!(rejected(auth.handle_redirect(back.clone(), None)).await, "TokenEndpointUnreachableError");

    let expires = auth.code_expires_at().expect("a code bundle is available");
    let bundle: Value = serde_json::from_str(&auth.export_bundle().unwrap()).unwrap();
    assert_eq!(bundle["kind"], "authorization_code");
    assert_eq!(bundle["code"], query_param(&back, "code").as_str());
    assert_eq!(bundle["redirect_uri"], own_redirect_uri().as_str());
    assert!(bundle.get("client_secret").is_none() && !bundle.to_string().contains(SIM_SECRET));
    assert!(expires.as_str() > bundle["obtained_at"].as_str().unwrap());

    auth.clear_storage().unwrap();
    assert!(auth.code_expires_at().is_none());
}

/// Replaces the global `fetch` (which the core's HTTP client calls) for `ms`: every request in
/// that window fails after `ms`, like a stalled connection that finally gives up.
///
/// The original comes back on a JavaScript timer `ms` after the swap, not only when this is
/// dropped: a panic on wasm32 aborts without unwinding, and the tests after it in the same page
/// must still see the real `fetch`.
struct StalledFetch {
    original: JsValue,
}

impl StalledFetch {
    fn install(ms: u32) -> Self {
        let global = js_sys::global();
        let original = Reflect::get(&global, &"fetch".into()).unwrap();
        let swap = js_sys::Function::new_with_args(
            "original",
            &format!(
                "const stalled = () => new Promise((_, reject) => \
                   setTimeout(() => reject(new TypeError('Failed to fetch')), {ms})); \
                 globalThis.fetch = stalled; \
                 setTimeout(() => {{ if (globalThis.fetch === stalled) globalThis.fetch = original; }}, {ms});"
            ),
        );
        swap.call1(&JsValue::UNDEFINED, &original).unwrap();
        Self { original }
    }
}

impl Drop for StalledFetch {
    fn drop(&mut self) {
        Reflect::set(&js_sys::global(), &"fetch".into(), &self.original).unwrap();
    }
}

#[wasm_bindgen_test]
async fn the_code_bundle_clock_starts_when_the_code_arrives_not_when_fetch_gives_up() {
    session_storage().clear().unwrap();
    let auth = SkyAuth::new(offline_config(serde_json::json!({}))).unwrap();
    let state = query_param(&auth.authorize_url().unwrap(), "state");
    let back = format!("{}?code=c&state={state}", own_redirect_uri());
    let arrived = js_sys::Date::now();
    let stalled = StalledFetch::install(2500);
    let name = rejected(auth.handle_redirect(back, None)).await;
    drop(stalled);
    assert_eq!(name, "TokenEndpointUnreachableError");

    let expires = auth.code_expires_at().expect("a code bundle is available");
    let expires = time::OffsetDateTime::parse(&expires, &time::format_description::well_known::Rfc3339).unwrap();
    let obtained_ms = (expires - skysync_web::consent::CODE_LIFETIME).unix_timestamp_nanos() as f64 / 1e6;
    // The failed exchange took 2.5 s: those count against the code's 5 minutes.
    assert!(
        obtained_ms - arrived < 1000.0,
        "the code's clock started {} ms after the redirect arrived",
        obtained_ms - arrived
    );
    let bundle: Value = serde_json::from_str(&auth.export_bundle().unwrap()).unwrap();
    let obtained = bundle["obtained_at"].as_str().unwrap();
    let obtained = time::OffsetDateTime::parse(obtained, &time::format_description::well_known::Rfc3339).unwrap();
    assert_eq!(obtained + skysync_web::consent::CODE_LIFETIME, expires);
    auth.clear_storage().unwrap();
}
