//! Many tenants in one run: `sync` and `status` over `--all-profiles` and repeated `--profile`,
//! against the simulator.

use skysync_cli::sim::SimConfig;
use skysync_tests::cli::Skysync;

/// Three profiles in the config file; `a` and `b` hold tokens, `c` never consented.
async fn world() -> Skysync {
    let s = Skysync::with_sim(SimConfig { records: 30, ..SimConfig::default() }).await;
    let dir = s.home().join("config").join("skysync");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "[profiles.a]\n\n[profiles.b]\n\n[profiles.c]\n").unwrap();
    for profile in ["a", "b"] {
        let bundle = s.bundle_file(skysync_core::bundle::BundleContent::RefreshToken {
            tokens: Box::new(s.minted_tokens(|_| {})),
        });
        s.run(&["--profile", profile, "import", bundle.to_str().unwrap()]).await.expect_code(0);
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_profiles_sync_each_into_its_own_store_and_exit_with_the_worst_code() {
    let s = world().await;
    let run = s.run(&["--json", "sync", "--all-profiles", "constituents", "--page-size", "25"]).await;
    run.expect_code(4);
    let v: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(v["exit_code"], 4);
    let codes: Vec<(String, u64)> = v["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["profile"].as_str().unwrap().to_owned(), p["exit_code"].as_u64().unwrap()))
        .collect();
    assert_eq!(codes, [("a".into(), 0), ("b".into(), 0), ("c".into(), 4)]);
    for p in &v["profiles"].as_array().unwrap()[..2] {
        assert_eq!(p["result"]["records"], 30, "{p}");
    }
    let data = s.home().join("data").join("skysync");
    assert!(data.join("a").join("skysync.db").exists() && data.join("b").join("skysync.db").exists());
    assert!(run.stderr.contains("skysync login"), "c's error is shown: {}", run.stderr);

    // Repeated --profile picks profiles; the text output has a section and a summary line each.
    let run = s.run(&["--profile", "a", "--profile", "b", "sync", "constituents"]).await;
    run.expect_code(0);
    for p in ["a", "b"] {
        assert!(run.stdout.contains(&format!("== profile {p} (exit 0) ==")), "{}", run.stdout);
    }
    assert!(!run.stdout.contains("== profile c"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_all_profiles_gives_a_fleet_view() {
    let s = world().await;
    let run = s.run(&["status", "--all-profiles"]).await;
    run.expect_code(4);
    let summary = run.stdout.rsplit_once("profile").map(|(_, t)| t.to_owned()).unwrap_or_default();
    assert!(summary.contains("a ") && summary.contains("b ") && summary.contains("c "), "{}", run.stdout);
    s.run(&["--profile", "a", "--profile", "b", "status"]).await.expect_code(0);
    // Other commands take one profile.
    let run = s.run(&["--profile", "a", "--profile", "b", "token"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("work with `sync` and `status`"), "{}", run.stderr);
}
