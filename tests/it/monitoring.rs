//! `--ping-url` (healthchecks.io convention) against a loopback HTTP listener, and
//! `notify_command` against the simulator, with a script that writes its stdin to a file.

use std::sync::{Arc, Mutex};

use skysync_tests::cli::Skysync;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback HTTP server that answers 200 to everything and records each request's method and
/// path, and its body.
struct PingListener {
    url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl PingListener {
    async fn start() -> PingListener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ping/abc-123", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let record = record.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read the head, then the body its Content-Length announces.
                    let (head_end, length) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                                .unwrap_or(0usize);
                            break (i + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let line: Vec<&str> = head.lines().next().unwrap_or_default().split(' ').collect();
                    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
                    record.lock().unwrap().push((format!("{} {}", line[0], line.get(1).unwrap_or(&"")), body));
                    let _ =
                        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK").await;
                });
            }
        });
        PingListener { url, seen }
    }

    fn paths(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(p, _)| p.clone()).collect()
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_start_then_success_or_fail() {
    let s = Skysync::start().await;
    let hc = PingListener::start().await;
    s.seed_expired_access().await;
    s.run(&["token", "--ping-url", &hc.url]).await.expect_code(0);
    assert_eq!(hc.paths(), ["POST /ping/abc-123/start", "POST /ping/abc-123"]);

    hc.clear();
    s.set_env("SKYSYNC_PING_URL", Some(&hc.url));
    s.run(&["logout", "--yes"]).await.expect_code(0);
    hc.clear();
    s.run(&["token"]).await.expect_code(4);
    assert_eq!(hc.paths(), ["POST /ping/abc-123/start", "POST /ping/abc-123/fail"]);
    let body = hc.seen.lock().unwrap()[1].1.clone();
    assert!(body.starts_with("exit code 4: "), "{body}");

    // An unreachable ping URL is a warning; the run's exit code is its own.
    // A port that was just free and is closed again: connections to it are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    s.set_env("SKYSYNC_PING_URL", Some(&format!("http://127.0.0.1:{closed}/x")));
    s.seed_expired_access().await;
    let run = s.run(&["token"]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("could not send the ping"), "{}", run.stderr);
}

/// The notify payload written by `notify_command` (the last one).
fn payload(s: &Skysync) -> serde_json::Value {
    let text = std::fs::read_to_string(s.home().join("notified.json")).expect("the notify command ran");
    serde_json::from_str(&text).expect("the payload is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_command_hears_of_failures_expiry_soon_and_lost_rotations() {
    let s = Skysync::start().await;
    let out = s.home().join("notified.json");
    s.set_env("SKYSYNC_NOTIFY_COMMAND", Some(&format!("cat > '{}'", out.display())));

    // A healthy run is not reported.
    s.seed_expired_access().await;
    s.run(&["token"]).await.expect_code(0);
    assert!(!out.exists());

    // Expiring within the warning window (30 days by default).
    let soon = s.minted_tokens(|t| t.refresh_expires_at = s.sim.now() + time::Duration::days(10));
    s.seed(soon).await;
    s.run(&["status"]).await.expect_code(10);
    let p = payload(&s);
    assert_eq!(p["events"], serde_json::json!(["consent_soon"]), "{p}");
    assert_eq!(
        (p["profile"].as_str(), p["command"].as_str(), p["exit_code"].as_u64()),
        (Some("default"), Some("status"), Some(10))
    );
    assert!(p["refresh_days_left"].as_u64().is_some_and(|d| d <= 10), "{p}");
    std::fs::remove_file(&out).unwrap();

    // A rotation whose response is lost, then refused: a failed run and a lost rotation.
    s.seed(s.minted_tokens(|_| {})).await;
    s.sim.drop_response_after_rotation(1);
    let lost = s.run(&["renew"]).await;
    assert_ne!(lost.code, 0);
    assert_eq!(payload(&s)["events"], serde_json::json!(["run_failed"]));
    std::fs::remove_file(&out).unwrap();
    s.run(&["renew"]).await.expect_code(4);
    let p = payload(&s);
    assert_eq!(p["events"], serde_json::json!(["run_failed", "rotation_lost"]), "{p}");
    assert!(p["message"].as_str().is_some_and(|m| m.contains("rotated at")), "{p}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(&s.sim.config().client_secret) && !text.contains(&s.stored_refresh_token()));
}

/// The notify command does not inherit the secrets skysync was given in its environment, and a
/// failing or slow notify command does not change the exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_command_gets_no_secrets_and_cannot_change_the_exit_code() {
    let s = Skysync::start().await;
    let env_out = s.home().join("env.txt");
    s.set_env("SKYSYNC_NOTIFY_COMMAND", Some(&format!("env > '{}'; exit 3", env_out.display())));
    let run = s.run(&["token"]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("notify_command failed"), "{}", run.stderr);
    let env = std::fs::read_to_string(&env_out).unwrap();
    assert!(env.contains("SKYSYNC_CLIENT_ID="), "the environment is otherwise passed on");
    assert!(!env.contains("SKYSYNC_CLIENT_SECRET") && !env.contains(&s.sim.config().client_secret));
    assert!(!env.contains(&s.sim.config().subscription_key));
}

/// The samples of a metrics file: `name{labels}` → value.
fn samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').expect("name value");
            (k.to_owned(), v.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_file_after_a_sync_and_after_a_quota_stop() {
    let s = Skysync::with_sim(skysync_cli::sim::SimConfig { records: 60, ..Default::default() }).await;
    s.seed(s.minted_tokens(|_| {})).await;
    let dir = s.home().join("textfile");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("skysync.prom");
    let m = path.to_str().unwrap();
    s.run(&["sync", "constituents", "--page-size", "25", "--metrics-file", m]).await.expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE skysync_refresh_token_days_left gauge"), "{text}");
    let v = samples(&text);
    let p = r#"profile="default""#;
    assert_eq!(v[&format!("skysync_last_exit_code{{{p},command=\"sync\"}}")], 0.0, "{text}");
    assert!(v[&format!("skysync_refresh_token_days_left{{{p}}}")] >= 364.0, "{text}");
    assert_eq!(v[&format!("skysync_run_records{{{p},entity=\"constituents\"}}")], 60.0, "{text}");
    assert_eq!(v[&format!("skysync_entity_rows{{{p},entity=\"constituents\"}}")], 60.0, "{text}");
    let calls = v[&format!("skysync_run_api_calls{{{p},entity=\"constituents\"}}")];
    assert_eq!(calls, s.sim.stats().api_calls as f64, "{text}");
    assert_eq!(v[&format!("skysync_run_quota_calls_used{{{p}}}")], calls);
    assert!(v[&format!("skysync_entity_last_success_age_seconds{{{p},entity=\"constituents\"}}")] >= 0.0);
    assert_eq!(v[&format!("skysync_run_quota_exhausted{{{p}}}")], 0.0);
    assert_eq!(v[&format!("skysync_quota_calls_today{{{p}}}")], calls, "the day's first run: {text}");
    assert!(!v.contains_key(&format!("skysync_quota_remaining_today{{{p}}}")), "no daily_quota: {text}");
    assert_eq!(skysync_tests::procs::mode(&path) & 0o777, 0o644);

    // A second run the same day adds to the day's count; with a daily_quota, what is left.
    s.run(&["sync", "constituents", "--daily-quota", "1000", "--metrics-file", m]).await.expect_code(0);
    let text = std::fs::read_to_string(&path).unwrap();
    let v = samples(&text);
    let today = v[&format!("skysync_quota_calls_today{{{p}}}")];
    assert_eq!(today, s.sim.stats().api_calls as f64, "both runs' calls, the estimate's probes included: {text}");
    assert!(today > calls, "{text}");
    assert_eq!(v[&format!("skysync_quota_remaining_today{{{p}}}")], 1000.0 - today, "{text}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left");

    // Out of quota: exit 5, and the file says so; the entity's last success is still there.
    s.sim.set_quota(Some(0));
    s.run(&["sync", "constituents", "--full", "--metrics-file", m]).await.expect_code(5);
    let text = std::fs::read_to_string(&path).unwrap();
    let v = samples(&text);
    assert_eq!(v[&format!("skysync_last_exit_code{{{p},command=\"sync\"}}")], 5.0, "{text}");
    assert_eq!(v[&format!("skysync_run_quota_exhausted{{{p}}}")], 1.0, "{text}");
    assert!(v.contains_key(&format!("skysync_entity_last_success_age_seconds{{{p},entity=\"constituents\"}}")));

    // Any command can write it: `status` gives the token metrics and its exit code.
    s.run(&["status", "--metrics-file", m]).await.expect_code(0);
    let v = samples(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(v[&format!("skysync_last_exit_code{{{p},command=\"status\"}}")], 0.0);
    assert!(!v.keys().any(|k| k.starts_with("skysync_run_")), "no sync ran");
}
