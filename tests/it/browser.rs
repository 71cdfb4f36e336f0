//! The consent page end to end, in headless Chromium driven over WebDriver (chromedriver +
//! fantoccini): web/dist is served by `skysync_cli::consent_page::serve`, the simulator runs in
//! this process with the page registered as its only redirect URI, the browser fills the form and
//! clicks Authorize, the simulator consents and redirects back, and the page exchanges the code
//! and offers the bundle. The bundle then goes to `skysync import -`, and `skysync token` and
//! `skysync api` work with what it stored. The second case takes CORS off the token endpoint, so
//! the page falls back to an authorization-code bundle, which `skysync import` exchanges.
//!
//! Needs the built page (`web/build.sh`) and Debian's `chromium` + `chromium-driver`
//! (`CHROMEDRIVER` overrides `/usr/bin/chromedriver`). Missing pieces fail the test with the
//! command that provides them; nothing is skipped silently.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use skysync_cli::consent_page;
use skysync_cli::sim::SimConfig;
use skysync_tests::cli::{Skysync, workspace_root};

const WAIT: Duration = Duration::from_secs(30);

/// One browser at a time: two cores, and each Chromium is heavy.
pub(crate) static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn page_dir() -> PathBuf {
    consent_page::page_dir(None).unwrap_or_else(|e| {
        panic!(
            "{e:#}\nBuild the page first: `web/build.sh` (needs `rustup target add wasm32-unknown-unknown`, \
             wasm-bindgen-cli at Cargo.lock's version and `(cd tools/npm && npm ci)`)"
        )
    })
}

fn chromedriver_path() -> PathBuf {
    let path = std::env::var_os("CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: install Chromium and its driver with `apt-get install chromium chromium-driver` \
         (or point CHROMEDRIVER at a chromedriver)",
        path.display()
    );
    path
}

/// chromedriver on a free port, killed when dropped, plus the browser's throwaway profile and
/// download directory.
pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    downloads: tempfile::TempDir,
    _deadline: skysync_tests::deadline::Deadline,
}

impl Browser {
    pub(crate) async fn start() -> Self {
        // Port 0: chromedriver binds a free port itself and says which; no probe-then-bind race.
        let mut driver = tokio::process::Command::from(skysync_tests::process::command(chromedriver_path()))
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut lines = BufReader::new(driver.stdout.take().expect("chromedriver stdout")).lines();
        let port = tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.expect("read chromedriver stdout") {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().expect("chromedriver's port");
                }
            }
            panic!("chromedriver exited without saying its port");
        })
        .await
        .expect("chromedriver said its port");
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let profile = tempfile::tempdir().expect("browser profile dir");
        let downloads = tempfile::tempdir().expect("download dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1000,2600",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        // Plain HTTP to chromedriver on loopback: no TLS connector, so nothing process-wide
        // (a rustls default provider) is installed for the other tests in this binary.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        Self {
            client,
            _driver: driver,
            _profile: profile,
            downloads,
            _deadline: skysync_tests::deadline::Deadline::start(),
        }
    }

    async fn wait_ready(&self) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("body[data-ready]"))
            .await
            .expect("page loads its wasm");
        let authorize = self.client.find(Locator::Id("authorize")).await.unwrap();
        assert!(authorize.is_enabled().await.unwrap(), "Authorize is enabled once the wasm is loaded");
    }

    async fn value(&self, id: &str) -> String {
        self.client.find(Locator::Id(id)).await.unwrap().prop("value").await.unwrap().unwrap_or_default()
    }

    pub(crate) async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    async fn wait_visible(&self, css: &str) {
        let visible = format!("{css}:not([hidden])");
        if let Err(e) = self.client.wait().at_most(WAIT).for_element(Locator::Css(&visible)).await {
            let error = self.js("return document.getElementById('error').textContent").await;
            let status = self.js("return document.getElementById('status').textContent").await;
            panic!("{css} did not appear ({e}); page error: {error}, status: {status}");
        }
    }

    /// Waits until the element `id` is shown with text that starts with `start`.
    pub(crate) async fn wait_text(&self, id: &str, start: &str) -> String {
        let xpath = format!("//*[@id='{id}' and not(@hidden) and starts-with(normalize-space(.), {start:?})]");
        if let Err(e) = self.client.wait().at_most(WAIT).for_element(Locator::XPath(&xpath)).await {
            let now = self.js(&format!("return document.getElementById('{id}').textContent")).await;
            panic!("#{id} did not start with {start:?} ({e}); it reads {now}");
        }
        self.text(&format!("#{id}")).await
    }

    async fn type_into(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// One state of the page: checked with axe-core against WCAG 2.1 A and AA, and
    /// photographed (see [`screenshot_dirs`]).
    async fn state(&self, name: &str) {
        self.assert_accessible(name).await;
        let png = self.client.find(Locator::Css("main")).await.unwrap().screenshot().await.expect("screenshot");
        for dir in screenshot_dirs() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        }
    }

    /// axe-core (tools/npm, pinned) injected into the page as it is now: no WCAG 2.1 A/AA
    /// violation, colour contrast included.
    async fn assert_accessible(&self, state: &str) {
        if self.js("return typeof window.axe").await != json!("object") {
            let axe = workspace_root().join("tools/npm/node_modules/axe-core/axe.min.js");
            let source = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}\nInstall the pinned npm tools: `(cd tools/npm && npm ci)` (or scripts/setup.sh)",
                    axe.display()
                )
            });
            self.client
                .execute(&format!("{source}\n;if (typeof axe !== 'undefined') window.axe = axe;"), vec![])
                .await
                .expect("axe-core loads");
        }
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
              .then((r) => done(r.violations.map((v) => `${v.id} (${v.impact}): ${v.help}; ` +
                v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`).join(' | '))))
              .catch((e) => done([`axe failed: ${e}`]));";
        let violations = self.client.execute_async(script, vec![]).await.expect("axe runs");
        assert_eq!(violations, json!([]), "accessibility violations in the state {state:?}");
    }

    /// The text a person sees now (closed disclosures and hidden parts excluded).
    async fn visible_text(&self) -> String {
        self.js("return document.querySelector('main').innerText").await.as_str().unwrap_or_default().to_owned()
    }

    /// Whether leaving the page now would ask first: the page's `beforeunload` handler cancels
    /// the browser's own event.
    async fn leaving_asks(&self) -> bool {
        let asks = self
            .js("const e = new Event('beforeunload', { cancelable: true }); dispatchEvent(e); return e.defaultPrevented")
            .await;
        asks == json!(true)
    }

    async fn press(&self, key: Key) {
        self.client.active_element().await.unwrap().send_keys(&key).await.unwrap();
    }

    /// The id (or a description) of the focused element.
    async fn focused(&self) -> String {
        let focused = self
            .js("const a = document.activeElement; return a.id || (a.tagName.toLowerCase() + ' in ' + (a.closest('[id]') || {}).id)")
            .await;
        focused.as_str().unwrap_or_default().to_owned()
    }
}

/// Where screenshots go: tests/artifacts/consent-page/ always (gitignored), and web/screenshots/
/// (committed, linked from web/README.md) with SKYSYNC_UPDATE_SCREENSHOTS=1.
fn screenshot_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![workspace_root().join("tests").join("artifacts").join("consent-page")];
    if std::env::var_os("SKYSYNC_UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
        dirs.push(workspace_root().join("web").join("screenshots"));
    }
    dirs
}

/// Words of the protocol that the admin should not meet on the main path; each is explained in a
/// disclosure or stays in a details line.
const JARGON: [&str; 5] =
    ["redirect uri", "confidential application", "token endpoint", "sessionstorage", "localstorage"];

fn assert_plain(text: &str, state: &str) {
    let lower = text.to_lowercase();
    for word in JARGON {
        assert!(!lower.contains(word), "{word:?} on the main path in the state {state:?}:\n{text}");
    }
}

/// Serves the page, starts the simulator with the page as its only redirect URI, opens the page
/// and fills the form for the simulator.
async fn consent_setup() -> (Skysync, consent_page::ConsentPageServer, Browser) {
    let (_, page) = consent_page::serve(&page_dir(), 0).await.expect("page server");
    let (s, b) = consent_setup_at(page.page_url().as_str()).await;
    (s, page, b)
}

/// Starts the simulator with `page_url` as its only redirect URI, opens the page there and fills
/// the form for the simulator.
async fn consent_setup_at(page_url: &str) -> (Skysync, Browser) {
    let page_url = page_url.to_owned();
    let s = Skysync::with_sim(SimConfig {
        records: 50,
        redirect_uris: vec![page_url.clone()],
        allow_any_loopback_redirect: false,
        ..SimConfig::default()
    })
    .await;
    let b = Browser::start().await;
    b.client.goto(&page_url).await.unwrap();
    b.wait_ready().await;

    let redirect = b.client.find(Locator::Id("redirect-uri")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(redirect.as_deref(), Some(page_url.as_str()), "the redirect URI defaults to the page itself");
    let cfg = s.sim.config();
    b.type_into("client-id", &cfg.client_id).await;
    b.type_into("client-secret", &cfg.client_secret).await;
    b.type_into("subscription-key", &cfg.subscription_key).await;
    b.client.find(Locator::Id("endpoints-toggle")).await.unwrap().click().await.unwrap();
    b.type_into("authorize-url", s.sim.authorize_url().as_str()).await;
    b.type_into("token-url", s.sim.token_url().as_str()).await;
    b.type_into("api-url", s.sim.api_url().as_str()).await;
    (s, b)
}

async fn assert_no_secret_left_in_storage(b: &Browser) {
    let session = b.js("return Object.keys(sessionStorage).filter(k => k.startsWith('skysync.'))").await;
    assert_eq!(session, json!([]), "sessionStorage after export");
    assert_eq!(b.js("return localStorage.length").await, json!(0), "nothing in localStorage without opt-in");
}

async fn import_and_use(s: &Skysync, bundle: &str) {
    s.run_with_stdin(&["import", "-"], Some(bundle)).await.expect_code(0);
    let token = s.run(&["token"]).await;
    token.expect_code(0);
    assert!(token.stdout.trim().len() > 10, "token prints a token: {:?}", token.stdout);
    let api = s.run(&["api", "/constituent/v1/constituents?limit=1"]).await;
    api.expect_code(0);
    let page: Value = serde_json::from_str(&api.stdout).expect("api prints JSON");
    assert_eq!(page["value"].as_array().map(Vec::len), Some(1), "{page}");
}

fn downloaded(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("skysync-bundle.json")).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_page_exchanges_in_the_browser_and_the_bundle_imports() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (s, page, b) = consent_setup().await;
    // The button names the server it goes to: the simulator here, not Blackbaud.
    let sim_host = s.sim.authorize_url().host_str().unwrap().to_owned();
    let button = b.text("#authorize").await;
    assert!(button.contains(&sim_host) && !button.contains("Blackbaud"), "{button}");
    b.state("form-other-server").await;
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();

    b.wait_visible("#result").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.query(), None, "the code left the address bar: {url}");
    let cfg = s.sim.config();
    // What to do next, in order: save, send (how), and what the receiver runs.
    let steps = b.text("#next-steps").await;
    let at = |needle: &str| steps.find(needle).unwrap_or_else(|| panic!("{needle:?} missing from the steps:\n{steps}"));
    assert!(at("Download bundle") < at("Send it to the person who runs skysync"), "{steps}");
    assert!(at("do not email it") < at("Send it once") && at("Send it once") < at("delete your copy"), "{steps}");
    assert!(at("Send it once") < at("skysync import skysync-bundle.json"), "{steps}");
    assert_plain(&b.visible_text().await, "connected");
    assert!(b.client.find(Locator::Css("#identity-missing[hidden]")).await.is_ok(), "the identity is known");
    assert!(b.leaving_asks().await, "leaving before the bundle is saved asks first");
    b.state("connected").await;
    assert!(b.text("#environment").await.contains(&cfg.environment_name));
    assert!(b.text("#user").await.contains(&cfg.email));
    assert!(b.text("#refresh-expires").await.contains('Z'));
    assert!(b.client.find(Locator::Css("#code-warning[hidden]")).await.is_ok(), "no code warning");
    assert_eq!(s.sim.stats().token_authorization_code, 1, "the browser exchanged the code");

    let bundle = b.js("return document.getElementById('bundle').textContent").await;
    let bundle = bundle.as_str().expect("bundle text").to_owned();
    let parsed: Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(parsed["kind"], "refresh_token");
    assert!(!bundle.contains(&cfg.client_secret), "the secret never goes into the bundle");

    b.client.find(Locator::Id("test-call")).await.unwrap().click().await.unwrap();
    b.client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::XPath("//p[@id='test-result' and contains(., 'The call worked')]"))
        .await
        .expect("the test call succeeds");

    b.client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    b.wait_visible("#export-note").await;
    assert!(!b.leaving_asks().await, "once saved, leaving does not ask");
    assert_no_secret_left_in_storage(&b).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while downloaded(b.downloads.path()).is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(downloaded(b.downloads.path()).as_deref(), Some(bundle.as_str()), "the downloaded file is the bundle");
    b.state("connected-saved").await;

    import_and_use(&s, &bundle).await;
    b.client.clone().close().await.ok();
    page.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cors_on_the_token_endpoint_the_page_offers_a_code_bundle() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (s, page, b) = consent_setup().await;
    s.sim.set_token_cors(false);
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();

    b.wait_visible("#code-warning").await;
    assert!(b.client.find(Locator::Css("#identity[hidden]")).await.is_ok(), "no identity before the import");
    let warning = b.text("#code-warning").await;
    assert!(warning.contains("Time left") && warning.contains("authorization code"), "{warning}");
    // Plainly: 5 minutes, both ready together, and the alternative.
    let title = b.text("#result-title").await;
    assert!(title.contains("within 5 minutes"), "{title}");
    let when = b.text("#run-when").await;
    assert!(when.contains("within 5 minutes") && when.contains("both of you must be ready at the same time"), "{when}");
    let alternative = b.text("#code-alternative").await;
    assert!(
        alternative.contains("skysync login --manual") && alternative.contains("while you are available"),
        "{alternative}"
    );
    assert_plain(&b.visible_text().await, "code bundle");
    assert!(b.leaving_asks().await, "leaving before the bundle is saved asks first");
    b.state("code-bundle").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.query(), None, "the code left the address bar: {url}");
    assert_eq!(s.sim.stats().token_authorization_code, 0, "the browser could not use the code");

    let bundle = b.js("return document.getElementById('bundle').textContent").await;
    let bundle = bundle.as_str().expect("bundle text").to_owned();
    let parsed: Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(parsed["kind"], "authorization_code");
    assert_eq!(parsed["redirect_uri"], page.page_url().as_str());

    b.client.find(Locator::Id("copy")).await.unwrap().click().await.unwrap();
    b.wait_visible("#export-note").await;

    import_and_use(&s, &bundle).await;
    assert_eq!(s.sim.stats().token_authorization_code, 1, "skysync import exchanged the code");
    b.client.clone().close().await.ok();
    page.shutdown().await;
}

/// A plain static file server, as any web host is: `dir` under the URL path `prefix`, with a
/// Content-Type and nothing else (no security headers: the page's own `<meta>` policy applies).
async fn static_host(dir: PathBuf, prefix: &'static str) -> (url::Url, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://127.0.0.1:{}{prefix}", listener.local_addr().unwrap().port())).unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let dir = dir.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let target = head.split(' ').nth(1).unwrap_or("/");
                let path = target.split('?').next().unwrap_or("");
                let file = path
                    .strip_prefix(prefix)
                    .filter(|rel| !rel.contains(".."))
                    .map(|rel| if rel.is_empty() { dir.join("index.html") } else { dir.join(rel) });
                let (status, body) = match file.map(std::fs::read) {
                    Some(Ok(body)) => ("200 OK", body),
                    _ => ("404 Not Found", b"not found".to_vec()),
                };
                let kind = match path.rsplit('.').next() {
                    Some("wasm") => "application/wasm",
                    Some("js") => "text/javascript",
                    Some("css") => "text/css",
                    _ if status.starts_with("200") => "text/html",
                    _ => "text/plain",
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
                let _ = conn.write_all(&body).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_a_plain_static_host_in_a_subdirectory_with_remembered_fields() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (page_url, host) = static_host(page_dir(), "/some/dir/").await;
    let (s, b) = consent_setup_at(page_url.as_str()).await;
    let cfg = s.sim.config();
    b.client.find(Locator::Id("remember")).await.unwrap().click().await.unwrap();
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();

    b.wait_visible("#result").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.as_str(), page_url.as_str(), "back on the page, without the code");
    assert!(b.text("#environment").await.contains(&cfg.environment_name));
    let bundle = b.js("return document.getElementById('bundle').textContent").await;
    let bundle = bundle.as_str().expect("bundle text").to_owned();

    // Opted in: localStorage holds the non-secret fields, never the secret or the key.
    let stored = b.js("return Object.entries(localStorage)").await.to_string();
    assert!(stored.contains(&cfg.client_id) && stored.contains(page_url.as_str()), "{stored}");
    assert!(!stored.contains(&cfg.client_secret) && !stored.contains(&cfg.subscription_key), "{stored}");
    let session = b.js("return JSON.stringify(sessionStorage)").await.to_string();
    assert!(!session.contains(&cfg.client_secret), "the secret left sessionStorage on the way back: {session}");

    b.client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    b.wait_visible("#export-note").await;
    let session = b.js("return Object.keys(sessionStorage).filter(k => k.startsWith('skysync.'))").await;
    assert_eq!(session, json!([]), "sessionStorage after export");

    // A later visit finds the remembered fields, and an empty secret.
    b.client.goto(page_url.as_str()).await.unwrap();
    b.wait_ready().await;
    assert_eq!(b.value("client-id").await, cfg.client_id);
    assert_eq!(b.value("token-url").await, s.sim.token_url().as_str());
    assert_eq!(b.value("client-secret").await, "");
    assert_eq!(b.value("subscription-key").await, "");
    assert!(b.client.find(Locator::Id("remember")).await.unwrap().is_selected().await.unwrap());
    b.state("form-remembered").await;

    // Whatever else is under the key must not break the page, and is not restored.
    b.js("localStorage.setItem('skysync.page.remembered', '{not json')").await;
    b.client.refresh().await.unwrap();
    b.wait_ready().await;
    assert_eq!(b.value("client-id").await, "");
    assert_eq!(b.js("return localStorage.length").await, json!(0), "the unreadable value is dropped");
    b.js("localStorage.setItem('skysync.page.remembered', JSON.stringify({clientId: 'app', clientSecret: 'planted'}))")
        .await;
    b.client.refresh().await.unwrap();
    b.wait_ready().await;
    assert_eq!(b.value("client-id").await, "app");
    assert_eq!(b.value("client-secret").await, "", "only the remembered fields are restored");

    // Back from Blackbaud with an error but no state (a redirect URI mismatch, say): the error
    // code is shown, an unverifiable description is not, and the secret of the abandoned
    // attempt leaves sessionStorage.
    b.js("sessionStorage.setItem('skysync.page.form', JSON.stringify({clientId: 'app', clientSecret: 'abandoned'}))")
        .await;
    let mut back = page_url.clone();
    back.set_query(Some("error=invalid_request&error_description=Call+555-0100+now"));
    b.client.goto(back.as_str()).await.unwrap();
    b.wait_ready().await;
    b.wait_visible("#error").await;
    let error = b.text("#error").await;
    assert!(error.contains("\"invalid_request\"") && !error.contains("555"), "{error}");
    let what = b.text("#error-text").await;
    assert!(what.starts_with("Blackbaud sent you back with an error") && !what.contains("Error:"), "{what}");
    assert!(b.text("#error-details").await.starts_with("Details: AuthorizationError:"));
    b.state("error-without-state").await;
    assert_eq!(b.client.current_url().await.unwrap().query(), None);
    assert_eq!(b.js("return JSON.stringify(sessionStorage)").await, json!("{}"));
    assert_eq!(b.value("client-id").await, "app");

    import_and_use(&s, &bundle).await;
    b.client.clone().close().await.ok();
    host.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_wasm_cannot_load_the_code_still_leaves_the_address_bar() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    // The page without its wasm module: init() fails.
    let broken = tempfile::tempdir().unwrap();
    let dist = page_dir();
    for f in ["index.html", "app.js", "style.css"] {
        std::fs::copy(dist.join(f), broken.path().join(f)).unwrap();
    }
    std::fs::create_dir(broken.path().join("pkg")).unwrap();
    std::fs::copy(dist.join("pkg/skysync_web.js"), broken.path().join("pkg/skysync_web.js")).unwrap();
    let (_, page) = consent_page::serve(broken.path(), 0).await.expect("page server");

    let b = Browser::start().await;
    let mut back = page.page_url();
    back.set_query(Some("code=one-time-code&state=s"));
    b.client.goto(back.as_str()).await.unwrap();
    b.wait_visible("#error").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.query(), None, "the code stayed in the address bar: {url}");
    let authorize = b.client.find(Locator::Id("authorize")).await.unwrap();
    assert!(!authorize.is_enabled().await.unwrap(), "Authorize stays disabled without the wasm");
    let what = b.text("#error-text").await;
    assert!(what.starts_with("This page could not load its WebAssembly part"), "{what}");
    assert!(b.text("#error-details").await.starts_with("Details: PageLoadError: "));
    b.state("error-page-cannot-load").await;
    b.client.clone().close().await.ok();
    page.shutdown().await;
}

/// The sealed hand-over: `skysync import --prepare` prints a link to the page with the one-time
/// public key in its fragment; the page keeps it across the visit to Blackbaud, seals the bundle
/// with the wasm build of the core's `bundle_seal`, and only this profile's key opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_link_makes_the_page_seal_the_bundle() {
    let _one = BROWSER.lock().await;
    let (_, page) = consent_page::serve(&page_dir(), 0).await.expect("page server");
    let page_url = page.page_url().to_string();
    let s = Skysync::with_sim(SimConfig {
        records: 50,
        redirect_uris: vec![page_url.clone()],
        allow_any_loopback_redirect: false,
        ..SimConfig::default()
    })
    .await;
    let prepared = s.run(&["import", "--prepare", "--page-url", &page_url]).await;
    prepared.expect_code(0);
    let link = prepared.stdout.trim().to_owned();
    assert!(link.starts_with(&format!("{page_url}#skysync-recipient=")), "{link}");
    let fingerprint = prepared.stderr.split("(key ").nth(1).and_then(|r| r.split(',').next()).unwrap_or("").to_owned();
    assert_eq!(fingerprint.len(), 16, "prepare names the key: {}", prepared.stderr);

    let b = Browser::start().await;
    b.client.goto(&link).await.unwrap();
    b.wait_ready().await;
    b.wait_visible("#seal-note").await;
    assert!(b.text("#seal-note").await.contains(&fingerprint), "the page shows the key prepare printed");
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.fragment(), None, "the recipient left the address bar: {url}");
    b.state("sealed-link").await;
    let cfg = s.sim.config();
    b.type_into("client-id", &cfg.client_id).await;
    b.type_into("client-secret", &cfg.client_secret).await;
    b.client.find(Locator::Id("endpoints-toggle")).await.unwrap().click().await.unwrap();
    b.type_into("authorize-url", s.sim.authorize_url().as_str()).await;
    b.type_into("token-url", s.sim.token_url().as_str()).await;
    b.type_into("api-url", s.sim.api_url().as_str()).await;
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();

    b.wait_visible("#result").await;
    assert_eq!(s.sim.stats().token_authorization_code, 1, "the browser exchanged the code");
    let bundle = b.js("return document.getElementById('bundle').textContent").await;
    let bundle = bundle.as_str().expect("bundle text").to_owned();
    let parsed: Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(parsed["format"], "skysync-sealed-bundle", "{bundle}");
    assert!(parsed.get("kind").is_none() && !bundle.contains("refresh_token"), "nothing readable: {bundle}");
    let how = b.text("#send-how").await;
    assert!(how.contains("encrypted") && how.contains(&fingerprint) && how.contains("email or chat is fine"), "{how}");
    assert!(!how.contains("do not email"), "{how}");
    b.state("sealed").await;
    b.client.find(Locator::Id("download")).await.unwrap().click().await.unwrap();
    b.wait_visible("#export-note").await;
    assert_no_secret_left_in_storage(&b).await;

    let import = s.run_with_stdin(&["import", "-"], Some(&bundle)).await;
    import.expect_code(0);
    assert!(!import.stderr.contains("not encrypted"), "{}", import.stderr);
    assert!(!s.data_dir().join("import-key.json").exists(), "the one-time key is gone");
    s.run(&["token"]).await.expect_code(0);
    b.client.clone().close().await.ok();
    page.shutdown().await;
}

/// The form for an admin who is not technical: plain words on the main path, the return address
/// read-only with "change" behind the disclosure, a button that names the server it goes to,
/// and every control reachable in order from the keyboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_speaks_plainly_and_works_from_the_keyboard() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (_, page) = consent_page::serve(&page_dir(), 0).await.expect("page server");
    let b = Browser::start().await;
    b.client.goto(page.page_url().as_str()).await.unwrap();
    b.wait_ready().await;

    assert_eq!(b.text("#authorize").await, "Continue to Blackbaud");
    assert_plain(&b.visible_text().await, "form");
    let redirect = b.client.find(Locator::Id("redirect-uri")).await.unwrap();
    assert_eq!(redirect.attr("readonly").await.unwrap().as_deref(), Some("true"), "the return address is read-only");
    b.state("form").await;

    // Tab order: the fields in reading order, the disclosures, then the button.
    b.client.find(Locator::Id("client-id")).await.unwrap().click().await.unwrap();
    let mut order = vec![b.focused().await];
    for _ in 0..8 {
        b.press(Key::Tab).await;
        order.push(b.focused().await);
    }
    assert_eq!(
        order,
        [
            "client-id",
            "client-secret",
            "summary in secret-details",
            "subscription-key",
            "environment-id",
            "redirect-uri",
            "endpoints-toggle",
            "remember",
            "authorize",
        ]
    );

    // The disclosure opens from the keyboard; "change" makes the return address editable.
    b.js("document.getElementById('endpoints-toggle').focus()").await;
    b.press(Key::Enter).await;
    assert_eq!(b.js("return document.getElementById('endpoints').open").await, json!(true));
    b.press(Key::Tab).await;
    assert_eq!(b.focused().await, "redirect-change");
    b.press(Key::Enter).await;
    assert_eq!(b.focused().await, "redirect-uri", "change moves to the return address");
    assert_eq!(b.js("return document.getElementById('redirect-uri').readOnly").await, json!(false));
    b.press(Key::End).await;
    b.client.active_element().await.unwrap().send_keys("x").await.unwrap();
    assert!(b.value("redirect-uri").await.ends_with('x'), "the return address can be typed into after change");

    // Another consent server: the button says where it goes.
    b.type_into("authorize-url", "http://127.0.0.1:9/oauth/authorize").await;
    assert_eq!(b.text("#authorize").await, "Continue to 127.0.0.1:9");
    b.type_into("authorize-url", "https://app.blackbaud.com/oauth/authorize").await;
    assert_eq!(b.text("#authorize").await, "Continue to Blackbaud");
    b.state("form-addresses").await;
    b.client.clone().close().await.ok();
    page.shutdown().await;
}

/// A stand-in for Blackbaud's consent page as a page of its own (the simulator's authorize
/// endpoint redirects at once, so Back would skip it): an "Allow" link to the simulator's
/// authorize endpoint with the same query.
async fn consent_stand_in(authorize: &url::Url) -> (tempfile::TempDir, url::Url, tokio::task::JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        format!(
            "<!doctype html><html lang=\"en\"><head><title>Consent</title></head><body><main><h1>Allow skysync?</h1>\
             <a id=\"allow\" href=\"#\">Allow</a></main><script>document.getElementById('allow').href = {:?} + \
             location.search;</script></body></html>",
            authorize.as_str()
        ),
    )
    .unwrap();
    let (url, task) = static_host(dir.path().to_owned(), "/consent/").await;
    (dir, url, task)
}

/// Back from Blackbaud before consenting, then Forward and consenting: the page picks the
/// consent up (asking for the secret it did not keep, and saying why it is empty) instead of
/// claiming this tab did not start one; leaving with an unsaved bundle asks first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_and_forward_in_the_middle_of_a_consent_resume_it() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (s, page, b) = consent_setup().await;
    let cfg = s.sim.config();
    let (_dir, stand_in, host) = consent_stand_in(&s.sim.authorize_url()).await;
    b.type_into("authorize-url", stand_in.as_str()).await;
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();
    b.client.wait().at_most(WAIT).for_element(Locator::Id("allow")).await.expect("at the consent page");

    b.client.back().await.unwrap();
    b.wait_ready().await;
    b.wait_visible("#resume-note").await;
    assert_eq!(b.value("client-id").await, cfg.client_id, "the settings are kept");
    assert_eq!(b.value("client-secret").await, "");
    let why = b.text("#client-secret-empty").await;
    assert!(why.contains("empty on purpose") && why.contains("Enter it again"), "{why}");
    let session = b.js("return JSON.stringify(sessionStorage)").await.to_string();
    assert!(!session.contains(&cfg.client_secret), "the secret does not wait in sessionStorage: {session}");
    b.state("back-from-blackbaud").await;

    b.client.forward().await.unwrap();
    b.client.wait().at_most(WAIT).for_element(Locator::Id("allow")).await.expect("at the consent page again");
    b.client.find(Locator::Id("allow")).await.unwrap().click().await.unwrap();
    b.wait_ready().await;
    b.wait_visible("#resume-note").await;
    assert!(b.client.find(Locator::Css("#error[hidden]")).await.is_ok(), "no error: {}", b.text("#error").await);
    assert!(b.text("#resume-note").await.contains("Blackbaud has your consent"));
    assert_eq!(b.text("#authorize").await, "Finish connecting");
    assert_eq!(b.focused().await, "client-secret", "the secret field has the focus");
    assert!(b.text("#client-secret-empty").await.contains("empty on purpose"));
    b.state("resumed").await;

    // From the keyboard: type the secret and press Enter.
    b.client.active_element().await.unwrap().send_keys(&cfg.client_secret).await.unwrap();
    b.press(Key::Enter).await;
    b.wait_visible("#result").await;
    assert_eq!(s.sim.stats().token_authorization_code, 1, "the resumed consent was exchanged");
    assert!(b.leaving_asks().await, "leaving before the bundle is saved asks first");
    let bundle = b.js("return document.getElementById('bundle').textContent").await;
    import_and_use(&s, bundle.as_str().expect("bundle text")).await;
    b.client.clone().close().await.ok();
    host.abort();
    page.shutdown().await;
}

/// Errors lead with what happened and what to do; the error's name and the core's text stay in a
/// details line, which never tells the admin to run `skysync login`. After the round trip the
/// secret field says why it is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_happened_and_what_to_do() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (s, page, b) = consent_setup().await;
    let cfg = s.sim.config();

    s.sim.set_deny_consent(true);
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();
    let what = b.wait_text("error-text", "You cancelled at Blackbaud").await;
    assert!(what.contains("Enter the secret again"), "{what}");
    assert!(b.text("#error-details").await.starts_with("Details: ConsentDeniedError: "));
    assert_eq!(b.value("client-secret").await, "");
    assert!(b.text("#client-secret-empty").await.contains("empty on purpose"));
    b.state("error-cancelled").await;

    s.sim.set_deny_consent(false);
    b.type_into("client-secret", "not-the-secret").await;
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();
    b.wait_text("error-text", "Blackbaud did not accept the application ID or the secret").await;
    assert!(b.text("#error-details").await.starts_with("Details: InvalidClientError: "));
    b.state("error-wrong-secret").await;

    // A redirect whose state is not this tab's: the core's text says to run `skysync login`
    // again, which the page leaves out.
    let (_dir, stand_in, host) = consent_stand_in(&s.sim.authorize_url()).await;
    b.type_into("client-secret", &cfg.client_secret).await;
    b.type_into("authorize-url", stand_in.as_str()).await;
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();
    b.client.wait().at_most(WAIT).for_element(Locator::Id("allow")).await.expect("at the consent page");
    let mut forged = page.page_url();
    forged.set_query(Some("code=c0de&state=forged"));
    b.client.goto(forged.as_str()).await.unwrap();
    b.wait_text("error-text", "This answer from Blackbaud does not belong to the consent started in this tab").await;
    let details = b.text("#error-details").await;
    assert!(details.starts_with("Details: StateMismatchError: "), "{details}");
    assert!(!b.visible_text().await.contains("skysync login"), "{details}");
    for id in ["error-text", "error-details"] {
        assert!(!b.text(&format!("#{id}")).await.is_empty());
    }
    b.client.clone().close().await.ok();
    host.abort();
    page.shutdown().await;
}

/// A token response without environment or user (Blackbaud names both; another server may not):
/// the page says so as an error, with what is known and why the rest is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_environment_and_user_read_as_an_error() {
    skysync_tests::skip_in_fast_tier!("Chromium and the built consent page");
    let _one = BROWSER.lock().await;
    let (_, page) = consent_page::serve(&page_dir(), 0).await.expect("page server");
    let page_url = page.page_url().to_string();
    let s = Skysync::with_sim(SimConfig {
        records: 50,
        redirect_uris: vec![page_url.clone()],
        environment_id: String::new(),
        environment_name: String::new(),
        user_id: String::new(),
        email: String::new(),
        given_name: String::new(),
        family_name: String::new(),
        ..SimConfig::default()
    })
    .await;
    let cfg = s.sim.config();
    let b = Browser::start().await;
    b.client.goto(&page_url).await.unwrap();
    b.wait_ready().await;
    b.type_into("client-id", &cfg.client_id).await;
    b.type_into("client-secret", &cfg.client_secret).await;
    b.client.find(Locator::Id("endpoints-toggle")).await.unwrap().click().await.unwrap();
    b.type_into("authorize-url", s.sim.authorize_url().as_str()).await;
    b.type_into("token-url", s.sim.token_url().as_str()).await;
    b.client.find(Locator::Id("authorize")).await.unwrap().click().await.unwrap();

    b.wait_visible("#identity-missing").await;
    assert_eq!(b.js("return document.getElementById('identity-missing').getAttribute('role')").await, json!("alert"));
    let missing = b.text("#identity-missing").await;
    assert!(missing.contains("did not name the environment or the user who consented"), "{missing}");
    assert!(missing.contains(&format!("organisation {}", cfg.legal_entity_name)), "what is known: {missing}");
    assert!(missing.contains(&format!("application {}", cfg.client_id)), "what is known: {missing}");
    assert_eq!(b.text("#environment").await, "not reported");
    assert_eq!(b.text("#user").await, "not reported");
    assert!(!b.visible_text().await.contains("unknown environment"));
    b.state("connected-unknown-identity").await;
    b.client.clone().close().await.ok();
    page.shutdown().await;
}
