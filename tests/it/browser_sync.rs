//! The browser-sync example (web/examples/browser-sync/) in headless Chromium against the
//! simulator: the page is served on loopback with the npm package's module and wasm beside it,
//! connects (the simulator consents), syncs every constituent into IndexedDB with `SkySync`, and
//! after changes in the simulator a second sync receives only those. The same page's origin then
//! runs the `SkyTokenStore` contract (web/tests/store-contract.mjs) in Chromium.
//!
//! Needs `web/build.sh` (web/dist/npm) and Chromium with chromedriver, like browser.rs.

use std::path::Path;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::{Value, json};
use skysync_cli::consent_page;
use skysync_cli::sim::SimConfig;
use skysync_tests::cli::{Skysync, workspace_root};

use crate::browser::{BROWSER, Browser};
use crate::node_sync::{assert_store_contract, rotating_records};

const WAIT: Duration = Duration::from_secs(60);

/// The example's files, the package's module and wasm, the store-contract module and a
/// config.json for the simulator in `dir`; the page's CSP lets it reach the simulator.
fn assemble(dir: &Path, s: &Skysync) {
    let example = workspace_root().join("web/examples/browser-sync");
    let npm = workspace_root().join("web/dist/npm");
    assert!(npm.join("skysync_web_bg.wasm").exists(), "{} is missing: run web/build.sh", npm.display());
    for (from, name) in [
        (example.join("app.js"), "app.js"),
        (npm.join("skysync_web.js"), "skysync_web.js"),
        (npm.join("skysync_web_bg.wasm"), "skysync_web_bg.wasm"),
        (workspace_root().join("web/tests/store-contract.mjs"), "store-contract.mjs"),
    ] {
        std::fs::copy(&from, dir.join(name)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
    let api = s.sim.api_url();
    let origin = api.origin().ascii_serialization();
    let index = std::fs::read_to_string(example.join("index.html")).unwrap();
    assert!(index.contains("connect-src 'self' "), "the example's CSP has a connect-src");
    std::fs::write(
        dir.join("index.html"),
        index.replace("connect-src 'self' ", &format!("connect-src 'self' {origin} ")),
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), config(s).to_string()).unwrap();
}

fn config(s: &Skysync) -> Value {
    let cfg = s.sim.config();
    json!({
        "clientId": cfg.client_id,
        "clientSecret": cfg.client_secret,
        "subscriptionKey": cfg.subscription_key,
        "authorizeUrl": s.sim.authorize_url().as_str(),
        "tokenUrl": s.sim.token_url().as_str(),
        "apiUrl": s.sim.api_url().as_str(),
    })
}

/// Waits until `#result` says `synced …`, failing with the page's error when it shows one.
async fn wait_result(b: &Browser, start: &str) -> String {
    let xpath = format!(
        "//*[(@id='result' and not(@hidden) and starts-with(normalize-space(.), {start:?})) or (@id='error' and not(@hidden))]"
    );
    b.client.wait().at_most(WAIT).for_element(Locator::XPath(&xpath)).await.unwrap_or_else(|e| panic!("{e}"));
    let error = b.js("const e = document.getElementById('error'); return e.hidden ? '' : e.textContent").await;
    assert_eq!(error, json!(""), "the page failed");
    b.js("return document.getElementById('result').textContent").await.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_example_syncs_constituents_into_indexeddb_then_only_the_changes() {
    skysync_tests::skip_in_fast_tier!("Chromium and web/build.sh");
    let _one = BROWSER.lock().await;
    // Any loopback redirect: the page's port is chosen after the simulator starts.
    let s =
        Skysync::with_sim(SimConfig { records: 60, allow_any_loopback_redirect: true, ..SimConfig::default() }).await;
    let site = tempfile::tempdir().unwrap();
    assemble(site.path(), &s);
    let (_, server) = consent_page::serve(site.path(), 0).await.expect("serve the example");
    let b = Browser::start().await;
    b.client.goto(server.page_url().as_str()).await.unwrap();

    b.client.wait().at_most(WAIT).for_element(Locator::Css("#connect:not([hidden])")).await.expect("Connect");
    b.client.find(Locator::Id("connect")).await.unwrap().click().await.unwrap();
    let all = s.sim.live_ids("constituents").len();
    assert_eq!(wait_result(&b, "synced").await, format!("synced {all} constituents, {all} stored"));
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.query(), None, "the code left the address bar: {url}");
    let stored = b.js("return Object.keys(sessionStorage).length").await;
    assert_eq!(stored, json!(0), "nothing of the consent is left in sessionStorage");

    let changed = s.sim.modify("constituents", 3);
    let added = s.sim.add("constituents", 2);
    let token_calls = s.sim.stats().token_calls;
    // A reload: the tokens and the bookmark come back from IndexedDB, and the page syncs again.
    b.client.refresh().await.unwrap();
    let expected = format!("synced {} constituents, {} stored", changed.len() + added.len(), all + added.len());
    assert_eq!(wait_result(&b, &expected).await, expected);
    assert_eq!(s.sim.stats().token_calls, token_calls, "the stored access token was still good");

    // The store contract, in Chromium, on the page's origin.
    let token_calls = s.sim.stats().token_calls;
    let script = "const [config, records, done] = arguments;
        Promise.all([import('./skysync_web.js'), import('./store-contract.mjs')])
          .then(async ([pkg, contract]) => { await pkg.default(); return contract.storeContract(pkg.SkyAuth, config, records); })
          .then((ok) => done({ ok }), (e) => done({ error: `${e.name}: ${e.message}` }));";
    let mut config = config(&s);
    config["redirectUri"] = json!(server.page_url().as_str());
    let outcome = b.client.execute_async(script, vec![config, rotating_records(&s)]).await.expect("the contract runs");
    assert_eq!(outcome["error"], Value::Null, "{outcome}");
    assert_store_contract(&s, &outcome["ok"], token_calls);
    server.shutdown().await;
}
