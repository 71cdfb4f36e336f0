//! The bad-input matrix (issue 9): every input skysync reads (token responses, API pages, callback
//! URLs, bundles, config files, token files), malformed, truncated, huge, of the wrong type and
//! hostile. Each case gives its documented exit code and error, prints no terminal escape, and
//! leaves the files under HOME exactly as they were (compared before and after).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use skysync_cli::sim::{Fault, SimConfig};
use skysync_core::bundle::BundleContent;
use skysync_tests::cli::Skysync;

/// What a case feeds skysync, and how.
enum Input {
    /// The next `/token` answers (`skysync renew`).
    Token(Fault),
    /// The next API answers (`skysync api --paginate …`).
    Api(Fault),
    /// The line pasted into `skysync login --manual`.
    Callback(String),
    /// The bundle file given to `skysync import`.
    Bundle(String),
    /// A bundle made for another application.
    ForeignBundle,
    /// The config file (0600), then `skysync status`.
    Config(String),
    /// The token file's contents (0600, no backup), then `skysync token`.
    TokenFile(String),
}

struct Case {
    name: &'static str,
    input: Input,
    code: i32,
    /// Expected in stderr (lower-cased comparison).
    says: &'static str,
}

const HOSTILE: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mcleared\u{1b}[0m\u{9b}1m";

fn raw(status: u16, content_type: &str, body: impl Into<String>) -> Fault {
    Fault::Raw { status, content_type: content_type.into(), body: body.into() }
}

fn json_text(v: serde_json::Value) -> String {
    v.to_string()
}

fn cases(sim_api: &str) -> Vec<Case> {
    let huge = "x".repeat(9 * 1024 * 1024);
    let html = "<!doctype html><html><body><h1>502 Bad Gateway</h1></body></html>";
    let token_ok = r#"{"access_token":"a","token_type":"bearer","expires_in":3600,"refresh_token":"r","refresh_token_expires_in":31536000"#;
    let good_page = |next: &str| json_text(serde_json::json!({"count": 2, "value": [{"id": "1"}], "next_link": next}));
    vec![
        // Token responses.
        Case { name: "token: malformed JSON", input: Input::Token(raw(200, "application/json", "{\"access_token\":")), code: 1, says: "not valid json" },
        Case { name: "token: truncated", input: Input::Token(raw(200, "application/json", token_ok)), code: 1, says: "token" },
        Case { name: "token: huge", input: Input::Token(Fault::Oversized), code: 1, says: "token" },
        Case { name: "token: wrong types", input: Input::Token(raw(200, "application/json", r#"{"access_token":12,"token_type":["bearer"],"expires_in":"soon","refresh_token":{}}"#)), code: 1, says: "token" },
        Case { name: "token: HTML error page", input: Input::Token(raw(400, "text/html", html)), code: 1, says: "text/html" },
        Case { name: "token: error in a 200", input: Input::Token(raw(200, "application/json", r#"{"error":"invalid_grant","error_description":"revoked"}"#)), code: 4, says: "invalid_grant" },
        Case { name: "token: hostile description", input: Input::Token(raw(400, "application/json", json_text(serde_json::json!({"error": "invalid_request", "error_description": HOSTILE})))), code: 1, says: "cleared" },
        // API pages.
        Case { name: "api: malformed JSON", input: Input::Api(raw(200, "application/json", "{\"count\":1,\"value\":[")), code: 1, says: "not a list envelope" },
        Case { name: "api: huge message", input: Input::Api(raw(400, "application/json", json_text(serde_json::json!({"message": huge})))), code: 1, says: "xxx…" },
        Case { name: "api: wrong types", input: Input::Api(raw(200, "application/json", r#"{"count":"many","value":{"id":1},"next_link":7}"#)), code: 1, says: "" },
        Case { name: "api: HTML error page", input: Input::Api(raw(400, "text/html", html)), code: 1, says: "400" },
        Case { name: "api: next_link to another host", input: Input::Api(raw(200, "application/json", good_page("https://evil.example/constituent/v1/constituents?offset=1"))), code: 1, says: "evil.example" },
        Case { name: "api: next_link scheme-relative", input: Input::Api(raw(200, "application/json", good_page(&format!("//evil.example{sim_api}")))), code: 1, says: "evil.example" },
        Case { name: "api: hostile message", input: Input::Api(raw(400, "application/json", json_text(serde_json::json!({"message": HOSTILE})))), code: 1, says: "cleared" },
        Case { name: "api: hostile non-JSON body", input: Input::Api(raw(400, "text/plain", HOSTILE)), code: 1, says: "cleared" },
        // Callback URLs.
        Case { name: "callback: not a URL", input: Input::Callback("not a url at all".into()), code: 1, says: "state" },
        Case { name: "callback: forged state", input: Input::Callback("http://localhost:8321/callback?code=c&state=forged".into()), code: 1, says: "state" },
        Case { name: "callback: truncated", input: Input::Callback("http://localhost:8321/callback?co".into()), code: 1, says: "state" },
        Case { name: "callback: huge", input: Input::Callback(format!("http://localhost:8321/callback?code={huge}&state=s")), code: 1, says: "state" },
        Case { name: "callback: hostile error", input: Input::Callback(format!("http://localhost:8321/callback?error=access_denied&error_description={}", urlencode(HOSTILE))), code: 1, says: "state" },
        // Bundles.
        Case { name: "bundle: malformed JSON", input: Input::Bundle("{\"format\":".into()), code: 1, says: "bundle" },
        Case { name: "bundle: truncated", input: Input::Bundle("{\"format\":\"skysync-bundle\",\"version\":1,\"created_at\":\"2026-01-01T00:00:00Z\",\"content\":{\"kind\":\"refresh_token\"".into()), code: 1, says: "bundle" },
        Case { name: "bundle: huge", input: Input::Bundle(format!("{{\"format\":\"{huge}\"}}")), code: 1, says: "bundle" },
        Case { name: "bundle: wrong types", input: Input::Bundle(r#"{"format":1,"version":"one","created_at":true,"content":[]}"#.into()), code: 1, says: "bundle" },
        Case { name: "bundle: HTML page", input: Input::Bundle(html.into()), code: 1, says: "bundle" },
        Case { name: "bundle: another client id", input: Input::ForeignBundle, code: 1, says: "made for application another-app" },
        // Config files.
        Case { name: "config: malformed", input: Input::Config("[profiles.default\nclient_id = ".into()), code: 3, says: "line 1" },
        Case { name: "config: truncated string", input: Input::Config("[profiles.default]\nclient_id = \"ab".into()), code: 3, says: "line 2" },
        Case { name: "config: huge", input: Input::Config(format!("[profiles.default]\nclient_id = {huge}\n")), code: 3, says: "line 2" },
        Case { name: "config: wrong type", input: Input::Config("[profiles.default]\nrenewal_window_days = \"sixty\"\n".into()), code: 3, says: "expected" },
        Case { name: "config: unknown key", input: Input::Config("[profiles.default]\ntokn_url = \"https://x\"\n".into()), code: 3, says: "unknown field" },
        Case { name: "config: plain-http endpoint", input: Input::Config("[profiles.default]\ntoken_url = \"http://evil.example/token\"\n".into()), code: 3, says: "not https://" },
        // Token files.
        Case { name: "token file: malformed", input: Input::TokenFile("{\"version\":".into()), code: 1, says: "tokens.json" },
        Case { name: "token file: truncated", input: Input::TokenFile("{\"version\":1,\"tokens\":{\"client_id\":\"x\"".into()), code: 1, says: "tokens.json" },
        Case { name: "token file: huge", input: Input::TokenFile(format!("{{\"version\":\"{huge}\"}}")), code: 1, says: "tokens.json" },
        Case { name: "token file: wrong types", input: Input::TokenFile(r#"{"version":"1","tokens":[1,2]}"#.into()), code: 1, says: "tokens.json" },
        Case { name: "token file: HTML", input: Input::TokenFile(html.into()), code: 1, says: "tokens.json" },
    ]
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every file under `dir`: relative path → (mode, contents).
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (meta.permissions().mode(), Vec::new()));
                walk(root, &path, out);
            } else {
                out.insert(rel, (meta.permissions().mode(), std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

async fn run_case(case: &Case) -> Result<(), String> {
    let s = Skysync::with_sim(SimConfig { records: 5, ..SimConfig::default() }).await;
    let write_private = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // The profile as it is before the bad input arrives.
    let (args, stdin): (Vec<String>, Option<String>) = match &case.input {
        Input::Token(fault) => {
            s.seed(s.minted_tokens(|_| {})).await;
            s.sim.fail_next_token(8, fault.clone());
            (vec!["renew".into()], None)
        }
        Input::Api(fault) => {
            s.seed(s.minted_tokens(|_| {})).await;
            s.sim.fail_next_api(8, fault.clone());
            (vec!["api".into(), "--paginate".into(), "/constituent/v1/constituents".into()], None)
        }
        Input::Callback(line) => {
            s.seed(s.minted_tokens(|_| {})).await;
            (vec!["login".into(), "--manual".into(), "--timeout".into(), "30".into()], Some(format!("{line}\n")))
        }
        Input::Bundle(text) => {
            s.seed(s.minted_tokens(|_| {})).await;
            let path = s.home().join("incoming.json");
            std::fs::write(&path, text).unwrap();
            (vec!["import".into(), path.display().to_string()], None)
        }
        Input::ForeignBundle => {
            s.seed(s.minted_tokens(|_| {})).await;
            let tokens = s.minted_tokens(|t| t.client_id = "another-app".into());
            let path = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(tokens) });
            (vec!["import".into(), path.display().to_string()], None)
        }
        Input::Config(text) => {
            s.seed(s.minted_tokens(|_| {})).await;
            // The file's endpoints count (the environment would override them).
            s.set_env("SKYSYNC_TOKEN_URL", None);
            let path = s.home().join("config").join("skysync").join("config.toml");
            write_private(&path, text);
            (vec!["status".into()], None)
        }
        Input::TokenFile(text) => {
            s.seed(s.minted_tokens(|_| {})).await;
            let _ = std::fs::remove_file(s.data_dir().join("tokens.json.bak"));
            write_private(&s.token_file(), text);
            (vec!["token".into()], None)
        }
    };
    let before = snapshot(s.home());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = s.run_with_stdin(&args, stdin.as_deref()).await;
    let after = snapshot(s.home());

    let name = case.name;
    let mut problems = Vec::new();
    if run.code != case.code {
        problems.push(format!("exit code {} (expected {})", run.code, case.code));
    }
    if !run.stderr.to_lowercase().contains(case.says) {
        problems.push(format!("{:?} not in stderr", case.says));
    }
    for out in [&run.stdout, &run.stderr] {
        if out.contains('\u{1b}') || out.contains('\u{9b}') || out.contains('\u{7}') {
            problems.push("a terminal escape reached the output".into());
        }
    }
    if run.stderr.len() > 16 * 1024 {
        problems.push(format!("{} bytes of errors", run.stderr.len()));
    }
    let mut changed: Vec<&String> =
        before.keys().chain(after.keys()).filter(|k| before.get(*k) != after.get(*k)).collect();
    changed.dedup();
    if matches!(case.input, Input::Token(_)) {
        // A rotation records its intent before it is sent, and a refused grant is recorded: the
        // token store's own bookkeeping may change (RELIABILITY.md), the tokens themselves not.
        let tokens = |snap: &BTreeMap<String, (u32, Vec<u8>)>| {
            let (_, (_, bytes)) = snap.iter().find(|(k, _)| k.ends_with("/tokens.json")).expect("a token file");
            let v: serde_json::Value = serde_json::from_slice(bytes).expect("the token file parses");
            let t = &v["tokens"];
            (t["refresh_token"].clone(), t["access_token"].clone(), t["refresh_expires_at"].clone())
        };
        if tokens(&before) != tokens(&after) {
            problems.push("the stored tokens changed".into());
        }
        changed.retain(|k| !k.contains("/tokens.json"));
    }
    if !changed.is_empty() {
        problems.push(format!("files changed on disk: {changed:?}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let shown: String = run.stderr.chars().take(600).collect();
        Err(format!("{name}: {}\n  stderr: {shown:?}", problems.join("; ")))
    }
}

#[tokio::test]
async fn every_bad_input_is_refused_with_its_exit_code_and_changes_nothing() {
    let api_path = "/constituent/v1/constituents";
    let mut failures = Vec::new();
    for case in cases(api_path) {
        if let Err(e) = run_case(&case).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// End to end: a hostile `error_description` from the token endpoint and a hostile API message
/// reach the terminal without their escapes, but with their words.
#[tokio::test]
async fn hostile_server_text_is_stripped_of_escapes() {
    let s = Skysync::with_sim(SimConfig { records: 5, ..SimConfig::default() }).await;
    s.seed(s.minted_tokens(|_| {})).await;
    let body = json_text(serde_json::json!({"error": "invalid_request", "error_description": HOSTILE}));
    s.sim.fail_next_token(1, raw(400, "application/json", body));
    let run = s.run(&["-vv", "renew"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("invalid_request: cleared"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}') && !run.stderr.contains('\u{7}'), "{:?}", run.stderr);
}
