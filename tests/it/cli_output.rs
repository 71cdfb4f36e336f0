//! What the CLI prints around the work, black-box: log lines with timestamps, a warning per retry,
//! a host that refuses connections given up quickly with a message naming it, a closed pipe
//! ending quietly, "did you mean" for entity names, and errors as JSON under `--json`.

use skysync_cli::sim::{Fault, SimConfig};
use skysync_tests::cli::Skysync;
use tokio::io::AsyncBufReadExt;

async fn world(records: u64) -> Skysync {
    let s = Skysync::with_sim(SimConfig { records, ..SimConfig::default() }).await;
    s.seed(s.minted_tokens(|_| {})).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_gives_up_within_the_window_naming_the_host() {
    let s = world(5).await;
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    s.set_env("SKYSYNC_API_URL", Some(&format!("http://127.0.0.1:{port}/")));
    let run = s.run(&["api", "/constituent/v1/constituents?limit=1"]).await;
    run.expect_code(1);
    let host = format!("127.0.0.1:{port}");
    assert!(run.stderr.contains(&format!("cannot connect to {host} (gave up after 4 attempts)")), "{}", run.stderr);
    assert!(run.stderr.contains("reachable from this machine"), "says what to check: {}", run.stderr);
    // Each retry is a warning at the default verbosity, with its number and what failed.
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 3, "{}", run.stderr);
    for (i, w) in warnings.iter().enumerate() {
        assert!(w.contains(&format!("retry {} of http://{host}/constituent/v1/constituents", i + 1)), "{w}");
        assert!(w.contains("cannot connect") && w.contains("s"), "{w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_429_waits_are_one_line_warnings_with_a_timestamp() {
    let s = world(5).await;
    s.sim.fail_next_api(1, Fault::Status { code: 503 });
    s.sim.fail_next_api(1, Fault::TooManyRequests { retry_after_secs: 1 });
    let run = s.run(&["api", "/constituent/v1/constituents?limit=1"]).await;
    run.expect_code(0);
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 2, "one line per retry: {}", run.stderr);
    assert!(warnings[0].contains("HTTP 503") && warnings[0].contains("retry 1 of http://"), "{}", warnings[0]);
    assert!(warnings[1].contains("HTTP 429 (rate limited); retry 2 of http://"), "{}", warnings[1]);
    assert!(warnings[1].contains(" in 1.0s"), "{}", warnings[1]);
    for w in &warnings {
        // 2027-01-15T02:30:00.123Z  WARN …
        let stamp = w.split_whitespace().next().unwrap();
        assert!(time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).is_ok(), "{w}");
        assert!(stamp.ends_with('Z') && stamp.len() == 24, "UTC to the millisecond: {w}");
        assert!(!w.contains("sim-subscription-key") && !w.contains("Bearer"), "{w}");
    }
    // -q: errors only.
    s.sim.fail_next_api(1, Fault::Status { code: 503 });
    let run = s.run(&["-q", "api", "/constituent/v1/constituents?limit=1"]).await;
    run.expect_code(0);
    assert_eq!(run.stderr, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_quietly_with_exit_0_for_jsonl_on_stdout() {
    // Enough rows to overflow the pipe's buffer, so the writer meets the closed end.
    let s = world(2000).await;
    let mut cmd = s.command(&["sync", "gifts", "--format", "jsonl", "--out", "-", "--rate-limit", "100"]);
    let mut child = cmd.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("a first record");
    assert!(first.starts_with('{'), "{first}");
    drop(lines);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("error") && !stderr.contains("Broken pipe"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_entity_gets_the_nearest_name() {
    let s = world(5).await;
    let run = s.run(&["sync", "constituens"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("did you mean `constituents`?"), "{}", run.stderr);
    // Before any setting is needed: the same answer with nothing configured.
    s.set_env("SKYSYNC_CLIENT_ID", None);
    let run = s.run(&["sync", "gifs"]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("did you mean `gifts`?"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rate_limit_or_zero_concurrency_is_refused_in_its_own_words() {
    let s = world(5).await;
    for (flag, words) in [
        ("--concurrency=0", "--concurrency must be at least 1"),
        ("--rate-limit=-1", "--rate-limit must be a number of calls per second"),
        ("--rate-limit=0", "--rate-limit must be more than 0 calls per second; `--rate-limit off` turns"),
    ] {
        let run = s.run(&["sync", "gifts", flag]).await;
        run.expect_code(2);
        assert!(run.stderr.contains(words), "{flag}: {}", run.stderr);
        assert!(!run.stderr.contains("page_size") && !run.stderr.contains("page-size"), "{flag}: {}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_on_stdout_under_json() {
    let s = world(5).await;
    let shape = |stdout: &str, code: i64, kind: &str| {
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["error"]["kind"], kind, "{v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v
    };
    // A command line that does not parse.
    let run = s.run(&["--json", "sync", "--bogus"]).await;
    run.expect_code(2);
    shape(&run.stdout, 2, "usage");
    // A usage error found after parsing.
    let run = s.run(&["--json", "sync", "giftz"]).await;
    run.expect_code(2);
    let v = shape(&run.stdout, 2, "usage");
    assert!(v["error"]["message"].as_str().unwrap().contains("giftz"), "{v}");
    assert!(run.stderr.contains("error: unknown entity"), "stderr keeps the human text: {}", run.stderr);
    // A configuration error.
    s.set_env("SKYSYNC_CLIENT_ID", None);
    let run = s.run(&["token", "--json"]).await;
    run.expect_code(3);
    shape(&run.stdout, 3, "config");
    // Without --json, stdout stays empty.
    let run = s.run(&["token"]).await;
    run.expect_code(3);
    assert_eq!(run.stdout, "");
}
