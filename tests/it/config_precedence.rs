//! Where each setting comes from, black-box through `config show --json`: the environment over
//! the config file over the default for every non-secret key, `--profile` over
//! `SKYSYNC_PROFILE`, and `--config` over `SKYSYNC_CONFIG`.

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
