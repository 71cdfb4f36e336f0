//! A throwaway Node app with the npm package `web/build.sh` makes, packed and installed like any
//! package (offline, no install scripts), and the example scripts beside it: what the Node tests
//! of the package (export.rs, node_sync.rs) run.

use std::path::{Path, PathBuf};

use skysync_tests::cli::{Skysync, workspace_root};

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `program args…` in `dir` to completion and returns its stdout, panicking with its output
/// on failure.
pub async fn run_ok(program: &str, args: &[&str], dir: &Path, env: &[(String, String)]) -> String {
    let out = run(program, args, dir, env).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    stdout.into_owned()
}

/// Runs `program args…` in `dir` to completion.
pub async fn run(program: &str, args: &[&str], dir: &Path, env: &[(String, String)]) -> std::process::Output {
    tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} could not start ({e}); install Node 18+ with npm"))
}

/// A world whose profile handed its tokens (access token expired) over with `skysync export`:
/// returns it, the bundle file and the installed app ([`install_package`]).
pub async fn handed_over_app() -> (Skysync, PathBuf, PathBuf) {
    let s = Skysync::start().await;
    s.seed_expired_access().await;
    let bundle = s.home().join("for-node.json");
    s.run(&["export", path_str(&bundle)]).await.expect_code(0);
    let app = install_package(&s).await;
    (s, bundle, app)
}

/// Packs `web/dist/npm` (from `web/build.sh`) and installs the tarball offline, with no install
/// scripts, in a new app directory under the world's home, with every `web/examples/*.mjs` and
/// the JS test modules of `web/tests/` beside it. Returns the directory.
pub async fn install_package(s: &Skysync) -> PathBuf {
    let package = workspace_root().join("web/dist/npm");
    assert!(package.join("package.json").exists(), "{} is missing: run web/build.sh", package.display());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(package.join("package.json")).unwrap()).unwrap();
    assert!(manifest.get("scripts").is_none(), "no install step: {manifest}");
    let app = s.home().join("app");
    std::fs::create_dir(&app).unwrap();
    let packed = run_ok("npm", &["pack", "--pack-destination", path_str(&app)], &package, &[]).await;
    let tarball = packed.lines().last().expect("npm pack names the tarball").trim().to_owned();
    std::fs::write(app.join("package.json"), r#"{ "name": "app", "private": true, "type": "module" }"#).unwrap();
    let install = ["install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", tarball.as_str()];
    run_ok("npm", &install, &app, &[]).await;
    for dir in ["web/examples", "web/tests"] {
        for entry in std::fs::read_dir(workspace_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "mjs") {
                std::fs::copy(&path, app.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    app
}

/// The `SKYSYNC_*` variables the Node examples read, from this world.
pub fn node_env(s: &Skysync) -> Vec<(String, String)> {
    [
        "SKYSYNC_CLIENT_ID",
        "SKYSYNC_CLIENT_SECRET",
        "SKYSYNC_SUBSCRIPTION_KEY",
        "SKYSYNC_REDIRECT_URI",
        "SKYSYNC_TOKEN_URL",
        "SKYSYNC_API_URL",
    ]
    .iter()
    .map(|k| (k.to_string(), s.env_value(k).expect(k)))
    .collect()
}
