//! Settings that the config file and the flags must treat alike, black-box: `[sync]
//! concurrency = 0` is refused as `--concurrency 0` is, `token_key_file` in a profile works as
//! `SKYSYNC_TOKEN_KEY_FILE` does, and `login` refuses an unusable token-store key before the
//! consent (whose code works once), not after.

use std::path::{Path, PathBuf};

use skysync_core::bundle::BundleContent;
use skysync_tests::cli::Skysync;

fn write_config(s: &Skysync, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let file = s.home().join("config").join("skysync").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

async fn new_key(s: &Skysync, name: &str) -> PathBuf {
    let path = s.home().join(name);
    s.run(&["token-store", "new-key", path.to_str().unwrap()]).await.expect_code(0);
    path
}

fn token_file_format(s: &Skysync) -> String {
    let text = std::fs::read_to_string(s.token_file()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["format"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_concurrency_in_the_config_file_is_a_usage_error_like_the_flag() {
    let s = Skysync::start().await;
    let db = s.home().join("sync.db");
    let flag = s.run(&["sync", "--concurrency", "0", "--db", db.to_str().unwrap()]).await;
    flag.expect_code(2);
    assert!(flag.stderr.contains("--concurrency"), "{}", flag.stderr);

    write_config(&s, "[profiles.default.sync]\nconcurrency = 0\n");
    let file = s.run(&["sync", "--db", db.to_str().unwrap()]).await;
    file.expect_code(2);
    assert!(file.stderr.contains("`concurrency`") && file.stderr.contains("at least 1"), "{}", file.stderr);
    assert!(!db.exists(), "nothing changed on disk");
    assert_eq!(s.sim.stats().api_calls, 0, "no API call before the settings are sound");

    // The flag still wins over the file.
    let run = s.run(&["sync", "--concurrency", "1", "--dry-run", "--db", db.to_str().unwrap()]).await;
    run.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_key_file_in_a_profile_encrypts_the_store_like_the_environment_variable() {
    let s = Skysync::start().await;
    let key = new_key(&s, "token.key").await;
    write_config(&s, &format!("[profiles.default]\ntoken_key_file = {:?}\n", key.to_str().unwrap()));
    let shown = s.run(&["--json", "config", "show"]).await;
    shown.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["settings"]["token_key_file"]["source"], "config file", "{v}");

    let bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(s.minted_tokens(|_| {})) });
    s.run(&["import", bundle.to_str().unwrap()]).await.expect_code(0);
    assert_eq!(token_file_format(&s), "skysync-tokens-encrypted");
    s.run(&["token"]).await.expect_code(0);

    // Without the key the store cannot be read: it really is the profile's key at work.
    write_config(&s, "[profiles.default]\n");
    let run = s.run(&["token"]).await;
    run.expect_code(3);

    // The environment variable wins over the file (the same rule as every setting).
    let other = new_key(&s, "other.key").await;
    write_config(&s, &format!("[profiles.default]\ntoken_key_file = {:?}\n", other.to_str().unwrap()));
    s.set_env("SKYSYNC_TOKEN_KEY_FILE", Some(key.to_str().unwrap()));
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_key_file_others_can_read_is_refused_from_the_config_file_too() {
    use std::os::unix::fs::PermissionsExt;
    let s = Skysync::start().await;
    let key = new_key(&s, "token.key").await;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_config(&s, &format!("[profiles.default]\ntoken_key_file = {:?}\n", key.to_str().unwrap()));
    let bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(s.minted_tokens(|_| {})) });
    let run = s.run(&["import", bundle.to_str().unwrap()]).await;
    run.expect_code(3);
    assert!(run.stderr.contains(key.to_str().unwrap()) && run.stderr.contains("readable"), "{}", run.stderr);
    assert!(!s.token_file().exists(), "nothing stored");
}

fn assert_refused_before_consent(run: &skysync_tests::cli::Run, key: &Path) {
    run.expect_code(3);
    assert!(run.stderr.contains(key.to_str().unwrap()), "names the key: {}", run.stderr);
    assert!(!run.stderr.contains("/authorize"), "no consent URL was offered: {}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_refuses_an_unusable_key_before_the_consent() {
    let s = Skysync::start().await;
    // A key that is not there.
    let missing = s.home().join("missing.key");
    s.set_env("SKYSYNC_TOKEN_KEY_FILE", Some(missing.to_str().unwrap()));
    let run = s.run_with_stdin(&["login", "--manual", "--timeout", "5"], Some("")).await;
    assert_refused_before_consent(&run, &missing);

    // A key other than the one the stored tokens were written with.
    let first = new_key(&s, "first.key").await;
    s.set_env("SKYSYNC_TOKEN_KEY_FILE", Some(first.to_str().unwrap()));
    let bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(s.minted_tokens(|_| {})) });
    s.run(&["import", bundle.to_str().unwrap()]).await.expect_code(0);
    let stored = std::fs::read(s.token_file()).unwrap();
    let second = new_key(&s, "second.key").await;
    s.set_env("SKYSYNC_TOKEN_KEY_FILE", Some(second.to_str().unwrap()));
    let run = s.run_with_stdin(&["login", "--manual", "--timeout", "5"], Some("")).await;
    run.expect_code(3);
    assert!(!run.stderr.contains("/authorize"), "no consent URL was offered: {}", run.stderr);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), stored, "the stored tokens are untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_zero_is_refused_in_its_own_words_and_off_turns_pacing_off() {
    let s = Skysync::with_sim(skysync_cli::sim::SimConfig { records: 5, ..Default::default() }).await;
    s.seed(s.minted_tokens(|_| {})).await;
    let db = s.home().join("sync.db");
    let db_arg = db.to_str().unwrap();

    let flag = s.run(&["sync", "gifts", "--rate-limit", "0", "--db", db_arg]).await;
    flag.expect_code(2);
    assert!(flag.stderr.contains("--rate-limit") && flag.stderr.contains("--rate-limit off"), "{}", flag.stderr);
    assert!(!flag.stderr.contains("page_size"), "{}", flag.stderr);
    let concurrency = s.run(&["sync", "gifts", "--concurrency", "0", "--db", db_arg]).await;
    concurrency.expect_code(2);
    assert!(concurrency.stderr.contains("--concurrency must be at least 1"), "{}", concurrency.stderr);
    assert!(!concurrency.stderr.contains("page_size"), "{}", concurrency.stderr);

    s.set_env("SKYSYNC_RATE_LIMIT", Some("0"));
    let env = s.run(&["sync", "gifts", "--db", db_arg]).await;
    env.expect_code(2);
    assert!(env.stderr.contains("SKYSYNC_RATE_LIMIT=off"), "{}", env.stderr);
    s.set_env("SKYSYNC_RATE_LIMIT", None);

    // A config file from before `off` existed: told exactly what to write instead.
    write_config(&s, "[profiles.default.sync]\nrate_limit = 0\n");
    let file = s.run(&["sync", "gifts", "--db", db_arg]).await;
    file.expect_code(2);
    assert!(file.stderr.contains("`rate_limit`") && file.stderr.contains(r#"rate_limit = "off""#), "{}", file.stderr);
    assert!(!db.exists(), "nothing changed on disk");
    assert_eq!(s.sim.stats().api_calls, 0, "no API call before the settings are sound");
    let shown = s.run(&["config", "show"]).await;
    assert!(shown.stderr.contains(r#"rate_limit = "off""#), "config show warns too: {}", shown.stderr);

    // `off` in each place: the flag, the environment, the file (and `config set` writes it).
    s.run(&["sync", "gifts", "--rate-limit", "off", "--db", db_arg]).await.expect_code(0);
    s.set_env("SKYSYNC_RATE_LIMIT", Some("off"));
    s.run(&["sync", "gifts", "--db", db_arg]).await.expect_code(0);
    s.set_env("SKYSYNC_RATE_LIMIT", None);
    let refused = s.run(&["config", "set", "sync.rate_limit", "0"]).await;
    refused.expect_code(2);
    assert!(refused.stderr.contains(r#"rate_limit = "off""#), "{}", refused.stderr);
    s.run(&["config", "set", "sync.rate_limit", "off"]).await.expect_code(0);
    let text = std::fs::read_to_string(s.home().join("config/skysync/config.toml")).unwrap();
    assert!(text.contains(r#"rate_limit = "off""#), "{text}");
    let shown = s.run(&["--json", "config", "show"]).await;
    shown.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["sync"]["rate_limit"]["value"], "off", "{v}");
    s.run(&["sync", "gifts", "--db", db_arg]).await.expect_code(0);
    s.run(&["config", "set", "sync.rate_limit", "2.5"]).await.expect_code(0);
    let text = std::fs::read_to_string(s.home().join("config/skysync/config.toml")).unwrap();
    assert!(text.contains("rate_limit = 2.5"), "a number stays a number: {text}");
}
