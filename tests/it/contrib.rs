//! The deployment examples in contrib/: the systemd units pass `systemd-analyze verify` where it
//! is installed (and are parsed otherwise), every skysync command line in them is one this
//! skysync accepts, and the cron and Kubernetes schedules are well-formed.

use std::path::{Path, PathBuf};

use skysync_tests::cli::{skysync_bin, workspace_root};

fn contrib(path: &str) -> PathBuf {
    workspace_root().join("contrib").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(contrib(path)).unwrap_or_else(|e| panic!("contrib/{path}: {e}"))
}

/// `key=value` lines of one `[section]` of a unit file.
fn unit_entries(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line}"));
        if current == section {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

/// Runs skysync with `args` plus `--help`: clap accepts every option, or exits 2.
fn accepts(args: &[&str]) {
    let mut full: Vec<&str> = args.to_vec();
    full.push("--help");
    let out = std::process::Command::new(skysync_bin()).args(&full).output().expect("skysync runs");
    assert!(out.status.success(), "skysync {args:?} is refused: {}", String::from_utf8_lossy(&out.stderr));
}

/// A five-field cron schedule.
fn is_schedule(fields: &[&str]) -> bool {
    fields.len() == 5 && fields.iter().all(|f| f.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c)))
}

#[test]
fn the_systemd_units_verify_and_are_hardened() {
    let service = read("systemd/skysync.service");
    let entries = unit_entries(&service, "Service");
    let has = |k: &str, v: &str| entries.iter().any(|(key, val)| key == k && val.starts_with(v));
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "skysync"),
        ("ProtectSystem", "strict"),
        ("LoadCredential", "client_secret:"),
        ("LoadCredential", "subscription_key:"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("Type", "oneshot"),
    ] {
        assert!(has(k, v), "skysync.service lacks {k}={v}");
    }
    let exec = entries.iter().find(|(k, _)| k == "ExecStart").map(|(_, v)| v.clone()).expect("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/skysync");
    accepts(&words[1..]);
    let timer = read("systemd/skysync.timer");
    assert!(unit_entries(&timer, "Timer").iter().any(|(k, _)| k == "OnCalendar"));

    if which("systemd-analyze").is_none() {
        skysync_tests::tier::not_checked("systemd-analyze; the units were parsed instead");
        return;
    }
    // verify needs ExecStart to exist: point it at this build.
    let dir = tempfile::tempdir().unwrap();
    let unit = service.replace("/usr/local/bin/skysync", &skysync_bin().display().to_string());
    std::fs::write(dir.path().join("skysync.service"), unit).unwrap();
    std::fs::write(dir.path().join("skysync.timer"), timer).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no", "./skysync.service", "./skysync.timer"])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}

#[test]
fn the_cron_example_has_valid_lines_and_commands() {
    let text = read("cron/skysync.cron");
    let mut jobs = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() == 1 && line.contains('=') {
            continue;
        }
        assert!(is_schedule(&words[..5]), "not a schedule: {line}");
        assert_eq!(words[5], "skysync", "runs as the skysync user: {line}");
        let command: Vec<&str> =
            words[6..].iter().take_while(|w| !w.starts_with(">>") && **w != "||").copied().collect();
        assert_eq!(command[0], "/usr/local/bin/skysync", "by absolute path, as installed: {line}");
        accepts(&command[1..]);
        jobs += 1;
    }
    assert_eq!(jobs, 2);
}

#[test]
fn the_kubernetes_cronjob_uses_the_postgresql_token_store() {
    let text = read("kubernetes/cronjob.yaml");
    assert!(text.lines().any(|l| l.trim() == "kind: CronJob"));
    let value_after = |key: &str| {
        let mut lines = text.lines().map(str::trim);
        lines.find(|l| *l == format!("- name: {key}"))?;
        lines.next()?.strip_prefix("value: ").map(|v| v.trim_matches('"').to_owned())
    };
    let store = value_after("SKYSYNC_TOKEN_STORE").expect("SKYSYNC_TOKEN_STORE is set");
    let url = url::Url::parse(&store).expect("a URL");
    assert_eq!(url.scheme(), "postgres");
    assert!(url.password().is_none(), "no password in the URL");
    assert!(value_after("SKYSYNC_TOKEN_KEY_FILE").is_some(), "the token store is encrypted");
    let schedule = text.lines().find_map(|l| l.trim().strip_prefix("schedule: ")).expect("schedule");
    let fields: Vec<&str> = schedule.trim_matches('"').split_whitespace().collect();
    assert!(is_schedule(&fields), "{schedule}");
    let args = text.lines().find_map(|l| l.trim().strip_prefix("args: ")).expect("args");
    let args: Vec<String> = serde_json::from_str(args).expect("args is a JSON-style list");
    accepts(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}
