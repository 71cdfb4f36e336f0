//! `skysync export`, black-box against the simulator: the bundle goes out (a new 0600 file or
//! stdout), the profile hands its tokens over (later `token` and `sync` exit 4 naming where they
//! went), `import` elsewhere makes them work there, and `import` back takes them back.
//! `--copy` copies without handing over.

use std::path::{Path, PathBuf};

use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_tests::cli::Skysync;

use crate::node_app::{handed_over_app, install_package, node_env, path_str, run_ok};

fn refresh_token_of(bundle: &str) -> String {
    let bundle = TokenBundle::parse(bundle.as_bytes()).expect("the export is a bundle `import` reads");
    match bundle.content {
        BundleContent::RefreshToken { tokens } => tokens.refresh_token.secret().to_owned(),
        other => panic!("a refresh-token bundle, not {other:?}"),
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("file exists").permissions().mode() & 0o777
}

/// Asserts that the default profile refuses to use its tokens, naming `to`.
async fn assert_handed_over(s: &Skysync, to: &str) {
    for args in [&["token"][..], &["sync", "gifts", "--page-size", "50"][..]] {
        let run = s.run(args).await;
        run.expect_code(4);
        // `sync` reports on stdout with its summary table, `token` on stderr.
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(said.contains("handed over to") && said.contains(to), "{args:?}: {said}");
    }
    let run = s.run(&["token"]).await;
    assert!(run.stdout.trim().is_empty(), "no token printed: {}", run.stdout);
    let status = s.run(&["status"]).await;
    status.expect_code(4);
    assert!(status.stderr.contains(to), "status says where the tokens went: {}", status.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_hands_over_import_elsewhere_works_and_import_back_takes_them_back() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let stored = s.stored_refresh_token();
    let file: PathBuf = s.home().join("moved.json");

    let run = s.run(&["export", path_str(&file)]).await;
    run.expect_code(0);
    assert!(run.stdout.is_empty(), "nothing on stdout when writing a file: {}", run.stdout);
    assert_eq!(mode(&file), 0o600, "the bundle is private");
    assert_eq!(refresh_token_of(&std::fs::read_to_string(&file).unwrap()), stored);
    assert!(s.data_dir().join("handed-over.json").exists());
    let token_calls = s.sim.stats().token_calls;
    assert_handed_over(&s, path_str(&file)).await;
    assert_eq!(s.sim.stats().token_calls, token_calls, "a handed-over profile never calls /token");

    // Another profile (another host, in real life) imports it, and its refresh token works there.
    s.run(&["--profile", "other", "import", path_str(&file)]).await.expect_code(0);
    s.run(&["--profile", "other", "renew"]).await.expect_code(0);
    let token = s.run(&["--profile", "other", "token"]).await;
    token.expect_code(0);
    assert!(!token.stdout.trim().is_empty());

    // Exported back from there, the bundle is imported over the handed-over profile.
    let back = s.home().join("back.json");
    s.run(&["--profile", "other", "export", path_str(&back)]).await.expect_code(0);
    s.run(&["import", path_str(&back)]).await.expect_code(0);
    assert!(!s.data_dir().join("handed-over.json").exists(), "the import takes the tokens back");
    let token = s.run(&["token"]).await;
    token.expect_code(0);
    assert_ne!(s.stored_refresh_token(), stored, "the rotated refresh token came back");
    s.run(&["--profile", "other", "token"]).await.expect_code(4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_stdout_hands_over_to_stdout() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let stored = s.stored_refresh_token();

    let run = s.run(&["export", "-"]).await;
    run.expect_code(0);
    assert_eq!(refresh_token_of(&run.stdout), stored);
    assert!(run.stderr.contains("Handed profile `default`'s tokens over to stdout"), "{}", run.stderr);
    assert_handed_over(&s, "to stdout at ").await;

    // A second export has nothing to hand over.
    let again = s.run(&["export", "-"]).await;
    again.expect_code(4);
    assert!(again.stdout.is_empty(), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_copy_warns_and_keeps_the_profile_working() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let file = s.home().join("copy.json");

    let run = s.run(&["export", "--copy", path_str(&file)]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("warning: --copy") && run.stderr.contains("only one of them refresh"),
        "{}",
        run.stderr
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(refresh_token_of(&std::fs::read_to_string(&file).unwrap()), s.stored_refresh_token());
    assert!(!s.data_dir().join("handed-over.json").exists());
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_an_existing_file_and_an_empty_profile_and_hands_nothing_over() {
    let s = Skysync::start().await;
    let file = s.home().join("there.json");
    let nothing = s.run(&["export", path_str(&file)]).await;
    nothing.expect_code(4);
    assert!(!file.exists(), "no tokens, no bundle");

    s.seed(s.minted_tokens(|_| {})).await;
    std::fs::write(&file, "keep me").unwrap();
    let run = s.run(&["export", path_str(&file)]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me", "never overwritten");
    s.run(&["token"]).await.expect_code(0);
}

/// The npm package `web/build.sh` makes, packed and installed like any package (no install
/// scripts, nothing downloaded), runs in Node with a bundle `skysync export` handed over: it
/// refreshes the expired access token and pages through every constituent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_bundle_works_in_node_through_the_npm_package() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let (s, bundle, app) = handed_over_app().await;

    let env = node_env(&s);
    let token_calls = s.sim.stats().token_calls;
    let out = run_ok("node", &["node-api.mjs", path_str(&bundle)], &app, &env).await;
    let all = s.sim.live_ids("constituents").len();
    assert_eq!(out.trim(), format!("fetched {all} constituents"));
    assert_eq!(s.sim.stats().token_calls, token_calls + 1, "Node refreshed the expired access token once");
}

/// Runs `web/examples/node-store.mjs` with a bundle handed over by `skysync export`, and returns
/// its stderr lines that log saves, and the refresh token its store file ends with.
async fn node_store_run(s: &Skysync) -> (Vec<String>, String, String) {
    let bundle = s.home().join("for-node.json");
    s.run(&["export", path_str(&bundle)]).await.expect_code(0);
    let exported = refresh_token_of(&std::fs::read_to_string(&bundle).unwrap());
    let app = install_package(s).await;
    let store = app.join("tokens.json");
    let out = tokio::process::Command::new("node")
        .args(["node-store.mjs", path_str(&bundle), path_str(&store)])
        .current_dir(&app)
        .envs(node_env(s))
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node-store.mjs failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains("access token ok, 10 constituents on the first page"), "{stdout}");
    assert_eq!(mode(&store), 0o600);
    let saves = stderr.lines().filter(|l| l.starts_with("saved generation")).map(str::to_owned).collect();
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&store).unwrap()).unwrap();
    let tokens: serde_json::Value = serde_json::from_str(record["json"].as_str().unwrap()).unwrap();
    (saves, exported, tokens["refresh_token"].as_str().unwrap().to_owned())
}

/// A routine refresh through the app's store (`SkyAuth.withStore(config, store)`): one `/token` call
/// for two concurrent callers, one compare-and-swap save, and the refresh token preserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_token_store_keeps_the_refresh_token_on_a_routine_refresh() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    let token_calls = s.sim.stats().token_calls;
    let (saves, exported, stored) = node_store_run(&s).await;
    assert_eq!(saves, ["saved generation 1", "saved generation 2"], "the seed, then the refresh");
    assert_eq!(stored, exported, "a routine refresh preserves the refresh token");
    assert_eq!(s.sim.stats().token_calls, token_calls + 1, "single flight: one refresh for two callers");
}

/// Inside the renewal window the refresh rotates, and the intent is saved in the app's store
/// before the rotation is sent; the new refresh token is the one the simulator knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_token_store_records_the_rotation_intent_before_rotating() {
    skysync_tests::skip_in_fast_tier!("Node and web/build.sh");
    let s = Skysync::start().await;
    let now = s.sim.now();
    s.seed(s.minted_tokens(|t| {
        t.access_expires_at = Some(now - time::Duration::hours(1));
        t.refresh_expires_at = now + time::Duration::days(2);
    }))
    .await;
    let (saves, exported, stored) = node_store_run(&s).await;
    assert_eq!(saves, ["saved generation 1", "saved generation 2 (rotation intent)", "saved generation 3"]);
    assert_ne!(stored, exported, "rotated");
    assert!(s.sim.refresh_token_expiry(&stored).is_some(), "the stored refresh token is the simulator's new one");
}

/// `export --json` describes a bundle written to a file, with no secret in it; with `-` (the
/// bundle on stdout) it is refused before anything is exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_json_describes_the_hand_over_without_secrets_and_is_refused_for_stdout() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let (refresh, access) = (s.stored_refresh_token(), s.stored_access_token());

    let refused = s.run(&["--json", "export", "-"]).await;
    refused.expect_code(2);
    // Under --json the refusal is the JSON error on stdout (no bundle).
    let error: serde_json::Value = serde_json::from_str(&refused.stdout).expect("a JSON error on stdout");
    assert_eq!(error["error"]["code"], 2, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("stdout carries the bundle"), "{error}");
    assert!(!s.data_dir().join("handed-over.json").exists(), "nothing was handed over");

    let copy = s.home().join("copy.json");
    let run = s.run(&["--json", "export", "--copy", path_str(&copy)]).await;
    run.expect_code(0);
    let result: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!((&result["bundle"], &result["handed_over"]), (&path_str(&copy).into(), &false.into()));

    let file = s.home().join("moved.json");
    let run = s.run(&["--json", "export", path_str(&file)]).await;
    run.expect_code(0);
    let result: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(result["bundle"], path_str(&file));
    assert_eq!(result["profile"], "default");
    assert_eq!(result["handed_over"], true);
    assert!(result["generation"].as_u64().is_some_and(|g| g >= 1), "{result}");
    assert!(result["exported_at"].is_string(), "{result}");
    for secret in [&refresh, &access] {
        assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()), "a token leaked");
    }
    assert_handed_over(&s, path_str(&file)).await;
}
