//! `skysync sync`, `sync status`, `--list`, `--dry-run` and `demo`, black-box: the real binary
//! against the in-process simulator, with a private HOME per test.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use skysync_cli::sim::SimConfig;
use skysync_cli::sink::SinkSpec;
use skysync_core::catalog::CATALOG;
use skysync_core::sync::Bookmark;
use skysync_tests::cli::Skysync;

use crate::sync::Fixture;

async fn world(records: u64) -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records, ..SimConfig::default() }).await;
    let tokens = sk.minted_tokens(|_| {});
    sk.seed(tokens).await;
    sk
}

fn db_path(sk: &Skysync) -> PathBuf {
    sk.data_dir().join("skysync.db")
}

fn default_db(sk: &Skysync) -> Fixture {
    Fixture::at(SinkSpec::Sqlite(db_path(sk)))
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn list_prints_the_catalog_without_credentials() {
    let sk = Skysync::start().await;
    sk.set_env("SKYSYNC_CLIENT_SECRET", None);
    sk.set_env("SKYSYNC_SUBSCRIPTION_KEY", None);
    let run = sk.run(&["sync", "--list"]).await;
    run.expect_code(0);
    for e in CATALOG {
        assert!(run.stdout.contains(e.name) && run.stdout.contains(e.path), "{}:\n{}", e.name, run.stdout);
    }
    assert!(run.stdout.contains("no sort_token"), "entities without sort_token say how they sync");
    let run = sk.run(&["sync", "--list", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!(v.as_array().unwrap().len(), CATALOG.len());
    assert_eq!(sk.sim.stats().api_calls, 0);
}

#[tokio::test]
async fn sync_then_status_then_incremental_rerun() {
    let sk = world(100).await;
    let run = sk.run(&["sync", "--page-size", "50", "--json"]).await;
    run.expect_code(0);
    let summary = json(&run.stdout);
    assert_eq!(summary["ok"], true);
    assert_eq!(summary["records"], 300, "100 constituents and 200 gifts");
    let gifts = summary["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "gifts").unwrap();
    assert_eq!((gifts["added"].as_u64(), gifts["pages"].as_u64()), (Some(200), Some(5)));
    let db = default_db(&sk);
    db.assert_equals_source(&sk.sim, "gifts").await;
    db.assert_equals_source(&sk.sim, "constituents").await;

    let run = sk.run(&["sync", "status"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("gifts") && run.stdout.contains("sort_token chain"), "{}", run.stdout);
    assert!(!run.stdout.contains("http://"), "no URLs in status: {}", run.stdout);
    let run = sk.run(&["sync", "status", "--json"]).await;
    run.expect_code(0);
    let st = json(&run.stdout);
    let g = st["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "gifts").unwrap().clone();
    assert_eq!(g["row_count"], 200);
    assert!(g["last_success_at"].is_string());

    sk.sim.modify("gifts", 3);
    sk.sim.reset_stats();
    let run = sk.run(&["sync", "gifts", "--page-size", "50"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("incremental"), "{}", run.stdout);
    assert_eq!(sk.sim.stats().per_entity_calls.get("gifts"), Some(&2), "the changes and the empty page");
    db.assert_equals_source(&sk.sim, "gifts").await;
}

#[tokio::test]
async fn dry_run_shows_the_requests_and_calls_nothing() {
    let sk = world(50).await;
    let run = sk.run(&["sync", "--dry-run", "gifts", "events", "--page-size", "25"]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("first run"), "{}", run.stdout);
    assert!(run.stdout.contains("/gift/v1/gifts?limit=25&last_modified=1600-01-01"), "{}", run.stdout);
    assert!(run.stdout.contains("/event/v1/eventlist?limit=25&offset=0"), "{}", run.stdout);
    assert_eq!(sk.sim.stats().api_calls, 0, "a dry run makes no API calls");
    sk.run(&["sync", "gifts", "--page-size", "25"]).await.expect_code(0);
    let calls = sk.sim.stats().api_calls;
    let run = sk.run(&["sync", "--dry-run", "--json", "gifts", "--reconcile"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    let g = &v["entities"][0];
    assert_eq!(g["mode"], "incremental");
    assert_eq!(g["reconcile"], true);
    assert!(g["request"].as_str().unwrap().contains("sort_token="));
    assert_eq!(sk.sim.stats().api_calls, calls);
}

#[tokio::test]
async fn quota_exhaustion_exits_5_keeps_pages_and_the_next_run_completes() {
    let sk = world(100).await;
    sk.sim.set_quota(Some(3));
    let run = sk.run(&["sync", "gifts", "--page-size", "50"]).await;
    run.expect_code(5);
    // Blackbaud's quota message is printed once: in the summary, not again in the error line.
    let said = |text: &str| run.stdout.matches(text).count() + run.stderr.matches(text).count();
    assert_eq!(said("replenished in"), 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("stopped early: ") && run.stdout.contains("quota"), "{}", run.stdout);
    assert!(run.stderr.contains("the sync stopped early (why: the summary above)"), "{}", run.stderr);
    assert!(run.stdout.contains("resumes where it stopped"), "{}", run.stdout);
    let db = default_db(&sk);
    assert_eq!(db.count("gifts").await, 150, "the three committed pages are kept");
    sk.sim.set_quota(None);
    let run = sk.run(&["sync", "gifts", "--page-size", "50"]).await;
    run.expect_code(0);
    db.assert_equals_source(&sk.sim, "gifts").await;
    assert_eq!(db.count("gifts").await, 200);
}

#[tokio::test]
async fn call_budget_is_a_planned_stop_with_exit_0() {
    let sk = world(100).await;
    let run = sk.run(&["sync", "gifts", "--page-size", "50", "--call-budget", "2", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!((&v["ok"], &v["complete"]), (&Value::Bool(true), &Value::Bool(false)));
    assert!(v["stopped"]["message"].as_str().unwrap().contains("budget"));
    assert_eq!(sk.sim.stats().api_calls, 2);
    assert_eq!(default_db(&sk).count("gifts").await, 100);
}

#[tokio::test]
async fn sigkill_mid_sync_then_rerun_is_complete_without_duplicates() {
    let sk = world(200).await;
    let db = default_db(&sk);
    // 400 gifts in pages of 10; killed while its sixth call is held, after five committed pages.
    // One chain (no partitioning, whatever the first page's latency): this test is about its bookmark.
    sigkill_at_call(&sk, &["sync", "gifts", "--page-size", "10", "--partitions", "1"], 5).await;
    let kept = sqlite_count(&db_path(&sk), "gifts");
    assert_eq!(kept, 50, "the five committed pages are kept");
    match db.bookmark("gifts").await {
        Some(Bookmark::Chain { next_link, .. }) => assert!(next_link.contains("sort_token="), "the chain moved"),
        other => panic!("no chain bookmark after committed pages: {other:?}"),
    }
    let run = sk.run(&["sync", "gifts", "--page-size", "50", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!(v["entities"][0]["changed"].as_u64().unwrap(), 0, "no committed page is fetched again");
    assert_eq!(v["entities"][0]["added"].as_u64().unwrap() as usize, 400 - kept);
    db.assert_equals_source(&sk.sim, "gifts").await;
    assert_eq!(db.count("gifts").await, 400, "no duplicates");
}

fn sqlite_count(path: &std::path::Path, table: &str) -> usize {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| r.get::<_, i64>(0)).unwrap_or(0) as usize
}

#[tokio::test]
async fn postgres_sync_and_status() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let sk = world(100).await;
    let pg = Fixture::postgres();
    let SinkSpec::Postgres { url, .. } = pg.spec().clone() else { unreachable!() };
    sk.sim.set_quota(Some(2));
    sk.run(&["sync", "--db", &url, "--page-size", "50"]).await.expect_code(5);
    sk.sim.set_quota(None);
    sk.run(&["sync", "--db", &url, "--page-size", "50"]).await.expect_code(0);
    pg.assert_equals_source(&sk.sim, "gifts").await;
    pg.assert_equals_source(&sk.sim, "constituents").await;
    let run = sk.run(&["sync", "status", "--db", &url, "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert!(v["sink"].as_str().unwrap().starts_with("PostgreSQL"));
    assert_eq!(v["entities"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn postgres_over_verified_tls() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let sk = world(30).await;
    let pg = skysync_tests::pg::PgServer::start_tls().unwrap();
    let ca = pg.ca_file().unwrap().display().to_string();
    let url = |host: &str, ca: &str| {
        format!("postgres://skysync@{host}:{}/{}?sslmode=verify-full&sslrootcert={ca}", pg.port(), pg.db())
    };
    sk.run(&["sync", "--db", &url("localhost", &ca), "--page-size", "50"]).await.expect_code(0);
    let run = sk.run(&["sync", "status", "--db", &url("localhost", &ca), "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    let rows: u64 = v["entities"].as_array().unwrap().iter().map(|e| e["row_count"].as_u64().unwrap()).sum();
    assert_eq!(rows, 90, "30 constituents and 60 gifts: {v}");

    // A certificate that does not check out stops the run before any API call, saying why.
    let calls = sk.sim.stats().api_calls;
    let run = sk.run(&["sync", "--db", &url("127.0.0.1", &ca)]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("does not name the host"), "{}", run.stderr);
    assert_eq!(sk.sim.stats().api_calls, calls);
}

#[tokio::test]
async fn jsonl_to_stdout_keeps_the_summary_off_stdout() {
    let sk = world(20).await;
    let run = sk.run(&["sync", "gifts", "--format", "jsonl", "--out", "-", "--page-size", "15"]).await;
    run.expect_code(0);
    let lines: Vec<Value> = run.stdout.lines().map(json).collect();
    assert_eq!(lines.len(), 40, "one line per gift:\n{}", run.stdout);
    // The summary goes to stderr: the gifts row (mode, added) and the totals line.
    let row = run.stderr.lines().find(|l| l.starts_with("gifts ")).unwrap_or_else(|| panic!("{}", run.stderr));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[..3], ["gifts", "initial", "40"], "{row}");
    assert!(run.stderr.contains("40 records, 4 API calls"), "{}", run.stderr);
}

#[tokio::test]
async fn demo_runs_the_whole_flow() {
    let sk = Skysync::start().await;
    let db = sk.home().join("demo.db");
    let run = sk.run(&["demo", "--records", "300", "--db", db.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(run.stdout.contains("constituents") && run.stdout.contains("gifts"), "{}", run.stdout);
    assert!(run.stdout.contains("SELECT") && run.stdout.contains("FROM v_gifts"), "{}", run.stdout);
    // The sample's answer: the five largest gifts, largest first, with their donors' names.
    let answer: Vec<&str> =
        run.stdout.lines().skip_while(|l| !l.starts_with("donor")).skip(1).take_while(|l| !l.is_empty()).collect();
    assert_eq!(answer.len(), 5, "{}", run.stdout);
    let amount = |line: &str| line.split_whitespace().rev().nth(2).unwrap().parse::<f64>().unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let largest: f64 = conn
        .query_row("SELECT max(json_extract(data, '$.amount.value')) FROM gifts WHERE deleted_at IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!((amount(answer[0]) - largest).abs() < 0.005, "largest first: {answer:?}");
    assert!(answer.windows(2).all(|w| amount(w[0]) >= amount(w[1])), "{answer:?}");
    assert!(answer.iter().all(|l| !l.starts_with(' ')), "every gift has its donor's name: {answer:?}");
    assert!(run.stdout.contains("skysync login"), "points at the real Blackbaud: {}", run.stdout);
    assert_eq!(sqlite_count(&db, "gifts"), 600);
    assert_eq!(sqlite_count(&db, "constituents"), 300);
}

/// Starts `skysync args…` and SIGKILLs it while its API call number `calls + 1` is held at the
/// simulator (the calls before it answered normally): a kill at a known point, with no timing.
async fn sigkill_at_call(sk: &Skysync, args: &[&str], calls: u32) {
    let start = sk.sim.stats().api_calls;
    sk.sim.fail_next_api(calls, skysync_cli::sim::Fault::Slow { ms: 0 });
    sk.sim.fail_next_api(1, skysync_cli::sim::Fault::Hold);
    let mut child = sk.command(args).spawn().expect("spawn skysync");
    let target = start + u64::from(calls) + 1;
    let reached = tokio::time::timeout(Duration::from_secs(60), async {
        // A poll of the simulator's latch (each check is a lock, not a sleep-and-hope).
        while sk.sim.stats().held == 0 {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("skysync exited ({status}) before its call {target} was held");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "skysync never reached API call {target}");
    assert_eq!(sk.sim.stats().api_calls, target, "the held call is call {target}");
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed, not finished");
    sk.sim.release_held();
}

/// Starts `skysync sync gifts` (pages of 20) with its 5th API call (the page fetched ahead while
/// the 4th is committed) held at the simulator, SIGINTs it and waits until it says it took the
/// signal in. Returns the child (stderr taken) and the simulator's API calls before it started.
async fn sigint_at_the_fifth_call(sk: &Skysync) -> (tokio::process::Child, u64) {
    use tokio::io::AsyncBufReadExt as _;
    let start = sk.sim.stats().api_calls;
    sk.sim.fail_next_api(4, skysync_cli::sim::Fault::Slow { ms: 0 });
    sk.sim.fail_next_api(1, skysync_cli::sim::Fault::Hold);
    let mut child = sk.command(&["sync", "gifts", "--page-size", "20", "--json"]).spawn().expect("spawn skysync");
    skysync_tests::procs::wait_until(Duration::from_secs(60), "the 5th request held", || async {
        sk.sim.stats().held == 1
    })
    .await;
    skysync_tests::procs::signal(child.id().unwrap(), "INT");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    while let Some(line) = stderr.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("SIGINT received") {
            return (child, start);
        }
    }
    panic!("skysync ended without taking SIGINT in: {seen}");
}

/// SIGINT while the 5th page is on its way: the run sends no request after the signal, commits
/// that page, reports exactly the rows it committed and exits 130; the next run adds the rest, once.
#[tokio::test]
async fn sigint_mid_sync_commits_the_page_on_its_way_reports_it_and_exits_130() {
    let sk = world(100).await;
    let (child, start) = sigint_at_the_fifth_call(&sk).await;
    // Released only now that skysync has taken the signal in: the page arrives after it.
    sk.sim.release_held();
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert_eq!(sk.sim.stats().api_calls - start, 5, "no request after the signal");
    let v = json(&stdout);
    assert_eq!(v["stopped"]["reason"], "signal", "{v}");
    assert_eq!(v["entities"][0]["added"].as_u64(), Some(100), "five pages, the held one included: {v}");
    assert_eq!(sqlite_count(&db_path(&sk), "gifts"), 100, "exactly what the report says");
    let run = sk.run(&["sync", "gifts", "--page-size", "20", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!((v["entities"][0]["added"].as_u64(), v["entities"][0]["changed"].as_u64()), (Some(100), Some(0)));
    assert_eq!(sqlite_count(&db_path(&sk), "gifts"), 200);
}

/// A second SIGINT does not wait for the page on its way: the process ends at once (130), with the
/// four committed pages kept.
#[tokio::test]
async fn a_second_sigint_stops_a_sync_at_once() {
    let sk = world(100).await;
    let (child, _) = sigint_at_the_fifth_call(&sk).await;
    skysync_tests::procs::signal(child.id().unwrap(), "INT");
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(out.stdout.is_empty(), "no summary: {}", String::from_utf8_lossy(&out.stdout));
    sk.sim.release_held();
    assert_eq!(sqlite_count(&db_path(&sk), "gifts"), 80, "the four committed pages");
}

#[tokio::test]
async fn sigkill_mid_sync_on_postgres_then_rerun_is_complete_without_duplicates() {
    skysync_tests::skip_in_fast_tier!("PostgreSQL");
    let sk = world(100).await;
    let pg = Fixture::postgres();
    let SinkSpec::Postgres { url, .. } = pg.spec().clone() else { unreachable!() };
    sigkill_at_call(&sk, &["sync", "gifts", "--db", &url, "--page-size", "20"], 4).await;
    let kept = pg.count("gifts").await;
    assert_eq!(kept, 80, "the four committed pages are kept");
    let calls = sk.sim.stats().api_calls;
    let run = sk.run(&["sync", "gifts", "--db", &url, "--page-size", "20", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    let rerun_calls = sk.sim.stats().api_calls - calls;
    assert_eq!(rerun_calls, 7, "from the bookmark: the 6 remaining pages of 20 and the chain's empty last page");
    assert_eq!(v["entities"][0]["changed"].as_u64(), Some(0), "no committed page is fetched again");
    assert_eq!(v["entities"][0]["added"].as_u64(), Some(120));
    pg.assert_equals_source(&sk.sim, "gifts").await;
    assert_eq!(pg.count("gifts").await, 200, "no duplicates");
}

#[tokio::test]
async fn sigkill_during_full_keeps_the_old_table_and_the_next_full_completes() {
    let sk = world(100).await;
    sk.run(&["sync", "gifts", "--page-size", "50"]).await.expect_code(0);
    let db = default_db(&sk);
    let before = db.rows("gifts").await;
    assert_eq!(before.len(), 200);
    let gone = sk.sim.delete("gifts", 5);
    sk.sim.modify("gifts", 5);
    sigkill_at_call(&sk, &["sync", "gifts", "--full", "--page-size", "20"], 3).await;
    assert_eq!(db.rows("gifts").await, before, "readers still see the old, complete table");
    let calls = sk.sim.stats().api_calls;
    let run = sk.run(&["sync", "gifts", "--full", "--page-size", "20", "--json"]).await;
    run.expect_code(0);
    let rerun_calls = sk.sim.stats().api_calls - calls;
    // Resumed from the staging bookmark: the 135 rows after the 3 staged pages in 7 pages, and
    // the chain's empty last page (from scratch it would be 11).
    assert_eq!(rerun_calls, 8, "the staged pages are not fetched again");
    let v = json(&run.stdout);
    assert_eq!(v["entities"][0]["mode"], "full", "{v}");
    db.assert_equals_source(&sk.sim, "gifts").await;
    assert_eq!(db.count("gifts").await, 195, "the swap dropped the deleted rows: {gone:?}");
}

#[tokio::test]
async fn sigkill_during_a_reconcile_then_the_next_reconcile_completes() {
    let sk = world(100).await;
    sk.run(&["sync", "gifts", "--page-size", "50"]).await.expect_code(0);
    let db = default_db(&sk);
    let gone = sk.sim.delete("gifts", 6);
    // The incremental part costs one call (nothing changed); the id scan is killed mid-way.
    sigkill_at_call(&sk, &["sync", "gifts", "--reconcile", "--page-size", "20"], 3).await;
    let rows = db.rows("gifts").await;
    assert!(gone.iter().all(|id| rows.get(id).is_some_and(|(_, deleted)| !deleted)), "nothing marked by a half scan");
    let run = sk.run(&["sync", "gifts", "--reconcile", "--page-size", "20", "--json"]).await;
    run.expect_code(0);
    let v = json(&run.stdout);
    assert_eq!(v["entities"][0]["removed"].as_u64(), Some(6), "{v}");
    db.assert_equals_source(&sk.sim, "gifts").await;
}

#[tokio::test]
async fn jsonl_into_a_directory_appends_and_resumes() {
    let sk = world(20).await;
    let out = sk.home().join("jsonl");
    let out_s = out.to_str().unwrap();
    let run = sk.run(&["sync", "gifts", "--format", "jsonl", "--out", out_s, "--page-size", "15"]).await;
    run.expect_code(0);
    let lines = |name: &str| -> Vec<Value> {
        std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}")).lines().map(json).collect()
    };
    let first = lines("gifts.jsonl");
    assert_eq!(first.len(), 40, "one line per gift");
    let mut ids: Vec<&str> = first.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut live = sk.sim.live_ids("gifts");
    live.sort();
    assert_eq!(ids, live.iter().map(String::as_str).collect::<Vec<_>>());
    // The next run resumes from the saved state: only the changed records are appended.
    let changed = sk.sim.modify("gifts", 3);
    sk.run(&["sync", "gifts", "--format", "jsonl", "--out", out_s, "--page-size", "15"]).await.expect_code(0);
    let second = lines("gifts.jsonl");
    assert_eq!(second.len(), 43, "three changed records appended");
    let mut appended: Vec<&str> = second[40..].iter().map(|r| r["id"].as_str().unwrap()).collect();
    appended.sort_unstable();
    let mut changed_sorted: Vec<&str> = changed.iter().map(String::as_str).collect();
    changed_sorted.sort_unstable();
    assert_eq!(appended, changed_sorted);
}
