//! Where each setting comes from, black-box through `config show --json`: the environment over
//! the config file over the default for every non-secret key, `--profile` over
//! `SKYSYNC_PROFILE`, `--config` over `SKYSYNC_CONFIG` (the only settings with both a flag and
//! an environment variable), a secret from the environment over the file's `*_file` setting, and
//! every `[sync]` key that has a flag against that flag (observed through `sync --dry-run --json`
//! or through what the run does).

use serde_json::Value;
use skysync_tests::cli::Skysync;

/// (key, file value, environment value) for every setting a file and the environment can set.
const KEYS: &[(&str, &str, &str)] = &[
    ("client_id", "file-app", "env-app"),
    ("redirect_uri", "http://127.0.0.1:1111/callback", "http://127.0.0.1:2222/callback"),
    ("auth_url", "https://file.example/authorize", "https://env.example/authorize"),
    ("token_url", "https://file.example/token", "https://env.example/token"),
    ("api_url", "https://file.example/", "https://env.example/"),
    ("environment_id", "p-file", "p-env"),
    ("access_skew_secs", "100", "200"),
    ("renewal_window_days", "70", "80"),
    ("warn_window_days", "20", "25"),
];

fn env_name(key: &str) -> String {
    format!("SKYSYNC_{}", key.to_uppercase())
}

fn file_text(profile: &str, pick: impl Fn(&str, &str) -> String) -> String {
    let mut text = format!("[profiles.{profile}]\n");
    for (key, file, _) in KEYS {
        let number = file.parse::<u64>().is_ok();
        let value = pick(key, file);
        text.push_str(&if number { format!("{key} = {value}\n") } else { format!("{key} = \"{value}\"\n") });
    }
    text
}

async fn show(s: &Skysync, args: &[&str]) -> Value {
    show_exiting(s, args, 0).await
}

async fn show_exiting(s: &Skysync, args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend(["config", "show", "--json"]);
    let run = s.run(&all).await;
    run.expect_code(code);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn value(v: &Value, key: &str) -> String {
    match &v["settings"][key]["value"] {
        Value::String(s) => s.trim_end_matches('/').to_owned(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_over_file_over_default_for_every_key() {
    let s = Skysync::start().await;
    for (key, _, _) in KEYS {
        s.set_env(&env_name(key), None);
    }
    let file = s.home().join("config").join("skysync").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, file_text("default", |_, f| f.to_owned())).unwrap();

    // File only.
    let v = show(&s, &[]).await;
    for (key, file, _) in KEYS {
        assert_eq!(v["settings"][key]["source"], "config file", "{key}: {v}");
        assert_eq!(value(&v, key), file.trim_end_matches('/'), "{key}");
    }
    // The environment wins over the file, key by key.
    for (key, _, env) in KEYS {
        s.set_env(&env_name(key), Some(env));
    }
    let v = show(&s, &[]).await;
    for (key, _, env) in KEYS {
        assert_eq!(v["settings"][key]["source"], format!("env {}", env_name(key)), "{key}: {v}");
        assert_eq!(value(&v, key), env.trim_end_matches('/'), "{key}");
    }
    // Neither: the default (or missing, for what has none).
    for (key, _, _) in KEYS {
        s.set_env(&env_name(key), None);
    }
    std::fs::remove_file(&file).unwrap();
    // Exit 3: client_id has no default, and `config show` says what is missing.
    let v = show_exiting(&s, &[], 3).await;
    for (key, _, _) in KEYS {
        let source = v["settings"][key]["source"].as_str().unwrap_or_default().to_owned();
        assert!(source == "default" || source == "missing", "{key}: {source}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_flag_over_env_and_config_flag_over_env() {
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_CLIENT_ID", None);
    let a = s.home().join("a.toml");
    let b = s.home().join("b.toml");
    std::fs::write(&a, "[profiles.one]\nclient_id = \"a-one\"\n[profiles.two]\nclient_id = \"a-two\"\n").unwrap();
    std::fs::write(&b, "[profiles.one]\nclient_id = \"b-one\"\n[profiles.two]\nclient_id = \"b-two\"\n").unwrap();
    s.set_env("SKYSYNC_CONFIG", Some(a.to_str().unwrap()));
    s.set_env("SKYSYNC_PROFILE", Some("one"));
    assert_eq!(value(&show(&s, &[]).await, "client_id"), "a-one", "both from the environment");
    assert_eq!(value(&show(&s, &["--profile", "two"]).await, "client_id"), "a-two", "--profile wins");
    assert_eq!(value(&show(&s, &["--config", b.to_str().unwrap()]).await, "client_id"), "b-one", "--config wins");
    let v = show(&s, &["--config", b.to_str().unwrap(), "--profile", "two"]).await;
    assert_eq!((v["profile"].as_str(), value(&v, "client_id").as_str()), (Some("two"), "b-two"));
}

fn write_config(s: &Skysync, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let file = s.home().join("config").join("skysync").join("config.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, text).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_from_the_environment_beats_the_files_secret_file_setting() {
    use std::os::unix::fs::PermissionsExt;
    // (setting, its environment variable, its `*_file` key)
    let table = [
        ("client_secret", "SKYSYNC_CLIENT_SECRET", "client_secret_file"),
        ("subscription_key", "SKYSYNC_SUBSCRIPTION_KEY", "subscription_key_file"),
    ];
    let s = Skysync::start().await;
    let mut text = "[profiles.default]\n".to_owned();
    for (name, _, file_key) in table {
        let path = s.home().join(format!("{name}.txt"));
        std::fs::write(&path, format!("from-file-{name}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        text.push_str(&format!("{file_key} = \"{}\"\n", path.display()));
    }
    write_config(&s, &text);
    let v = show(&s, &[]).await;
    for (name, env, _) in table {
        assert_eq!(v["settings"][name]["source"], format!("env {env}"), "{name}: {v}");
    }
    for (_, env, _) in table {
        s.set_env(env, None);
    }
    let v = show(&s, &[]).await;
    for (name, _, _) in table {
        assert_eq!(v["settings"][name]["source"], "config file", "{name}: {v}");
        assert!(!v.to_string().contains(&format!("from-file-{name}")), "the secret itself is not shown");
    }
}

/// What a run shows of one `[sync]` setting.
#[derive(Clone, Copy)]
enum Observe {
    /// The entity names `sync --dry-run --json` plans.
    PlannedEntities,
    /// The sink `sync --dry-run --json` names.
    PlannedSink,
    /// The exit code of `sync` (dry run or real, as the row's arguments say).
    ExitCode,
    /// `stopped.reason` of `sync --json` (`null` when the run finished).
    StopReason,
}

async fn observe(s: &Skysync, args: &[&str], what: Observe) -> String {
    let run = s.run(args).await;
    match what {
        Observe::ExitCode => run.code.to_string(),
        Observe::StopReason => {
            let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
            v["stopped"]["reason"].as_str().unwrap_or("null").to_owned()
        }
        Observe::PlannedEntities | Observe::PlannedSink => {
            run.expect_code(0);
            let v: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
            match what {
                Observe::PlannedEntities => {
                    let names: Vec<&str> =
                        v["entities"].as_array().unwrap().iter().map(|e| e["entity"].as_str().unwrap()).collect();
                    names.join(",")
                }
                _ => v["sink"].as_str().unwrap().to_owned(),
            }
        }
    }
}

/// One `[sync]` key against its flag; see [`every_sync_key_with_a_flag_loses_to_its_flag`].
type SyncRow =
    (&'static str, &'static str, &'static [&'static str], &'static [&'static str], Observe, &'static str, &'static str);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_key_with_a_flag_loses_to_its_flag() {
    // (key, its line in [sync], the command, the flag, what to observe, seen with the file's
    // value, seen with the flag's). `{home}` is the test's HOME. `overlap_minutes` and
    // `reconcile_every_days` have no flag; `lock_wait_secs` vs `--lock-wait`
    // would need a held lock and is not here.
    let rows: &[SyncRow] = &[
        (
            "entities",
            r#"entities = ["constituents"]"#,
            &["sync", "--dry-run", "--json"],
            &["gifts"],
            Observe::PlannedEntities,
            "constituents",
            "gifts",
        ),
        (
            "db",
            r#"db = "{home}/from-file.db""#,
            &["sync", "--dry-run", "--json"],
            &["--db", "{home}/from-flag.db"],
            Observe::PlannedSink,
            "from-file.db",
            "from-flag.db",
        ),
        (
            "deletes",
            r#"deletes = "shred""#,
            &["sync", "--dry-run", "--json"],
            &["--deletes", "mark"],
            Observe::ExitCode,
            "2",
            "0",
        ),
        ("rate_limit", "rate_limit = -1.0", &["sync", "gifts"], &["--rate-limit", "100"], Observe::ExitCode, "2", "0"),
        (
            "call_budget",
            "call_budget = 1",
            &["sync", "gifts", "--page-size", "2", "--json"],
            &["--call-budget", "1000"],
            Observe::StopReason,
            "call_budget",
            "null",
        ),
        (
            "concurrency",
            "concurrency = 1",
            &["sync", "--dry-run", "--json"],
            &["--concurrency", "0"],
            Observe::ExitCode,
            "0",
            "2",
        ),
    ];
    let mut failures = Vec::new();
    for &(key, line, command, flag, what, from_file, from_flag) in rows {
        let s = Skysync::with_sim(skysync_cli::sim::SimConfig { records: 5, ..Default::default() }).await;
        s.seed(s.minted_tokens(|_| {})).await;
        let home = s.home().display().to_string();
        write_config(&s, &format!("[profiles.default.sync]\n{}\n", line.replace("{home}", &home)));
        let seen = observe(&s, command, what).await;
        if !seen.contains(from_file) {
            failures.push(format!("{key} from the file: expected {from_file}, saw {seen}"));
        }
        let flag: Vec<String> = flag.iter().map(|f| f.replace("{home}", &home)).collect();
        let mut args: Vec<&str> = command.to_vec();
        args.extend(flag.iter().map(String::as_str));
        let seen = observe(&s, &args, what).await;
        if !seen.contains(from_flag) || seen.contains(from_file) {
            failures.push(format!("{key} with its flag: expected {from_flag}, saw {seen}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
