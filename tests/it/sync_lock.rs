//! One sync per database at a time: a second `skysync sync` on the same SQLite file, PostgreSQL
//! database or JSONL directory waits `--lock-wait` seconds, then exits 6 naming the holder; a
//! SIGKILLed holder releases the lock with its process (or its PostgreSQL session).

use std::time::Duration;

use skysync_cli::sim::{Fault, SimConfig};
use skysync_cli::sink::SinkSpec;
use skysync_cli::sink::run_lock::{JSONL_LOCK_FILE, sqlite_lock_path};
use skysync_tests::cli::Skysync;
use skysync_tests::procs::wait_until;
use tokio::process::Child;

use crate::sync::Fixture;

async fn world(records: u64) -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records, ..SimConfig::default() }).await;
    let tokens = sk.minted_tokens(|_| {});
    sk.seed(tokens).await;
    sk
}

/// Where a run's lock says who holds it.
enum Target {
    Sqlite(std::path::PathBuf),
    Jsonl(std::path::PathBuf),
    Postgres(Fixture, String),
}

impl Target {
    fn args(&self) -> Vec<String> {
        match self {
            Target::Sqlite(p) => vec!["--db".into(), p.display().to_string()],
            Target::Jsonl(d) => vec!["--format".into(), "jsonl".into(), "--out".into(), d.display().to_string()],
            Target::Postgres(_, url) => vec!["--db".into(), url.clone()],
        }
    }

    /// The pid the lock's holder record names, if any.
    async fn holder_pid(&self) -> Option<u32> {
        let text = match self {
            Target::Sqlite(p) => std::fs::read_to_string(sqlite_lock_path(p)).ok()?,
            Target::Jsonl(d) => std::fs::read_to_string(d.join(JSONL_LOCK_FILE)).ok()?,
            Target::Postgres(_, url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.ok()?;
                let task = tokio::spawn(conn);
                let row = client.query_opt("SELECT pid FROM skysync_sync_lock WHERE id = 1", &[]).await.ok()??;
                drop(client);
                let _ = task.await;
                return u32::try_from(row.get::<_, i64>(0)).ok();
            }
        };
        text.lines().find_map(|l| l.strip_prefix("pid=")).and_then(|p| p.trim().parse().ok())
    }
}

fn args<'a>(base: &'a [&'a str], target: &'a [String]) -> Vec<&'a str> {
    base.iter().copied().chain(target.iter().map(String::as_str)).collect()
}

/// Starts a sync whose first API call is held at the simulator's latch, and waits until it holds
/// the sync lock (taken before any API call) with that call held: it stays busy, holding the lock,
/// until the test calls `release_held`, however slow the machine.
async fn held_holder(sk: &Skysync, target: &Target) -> Child {
    let t = target.args();
    sk.sim.fail_next_api(1, Fault::Hold);
    let mut child = sk.command(&args(&["sync", "gifts", "--page-size", "50"], &t)).spawn().expect("spawn skysync sync");
    let pid = child.id().expect("pid");
    let what = "the holder takes the lock and its first call is held";
    wait_until(Duration::from_secs(60), what, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the holder exited ({status}) before it was seen holding the lock");
        }
        let held = sk.sim.stats().held == 1;
        async move { held && target.holder_pid().await == Some(pid) }
    })
    .await;
    child
}

async fn second_run_is_refused_then_a_killed_holder_frees_the_lock(sk: Skysync, target: Target) {
    let t = target.args();
    let mut holder = held_holder(&sk, &target).await;
    let pid = holder.id().unwrap();

    let run = sk.run(&args(&["sync", "gifts", "--full", "--lock-wait", "1"], &t)).await;
    run.expect_code(6);
    assert!(run.stderr.contains("another sync is running"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("pid {pid}")), "names the holder: {}", run.stderr);
    assert!(run.stderr.contains("since "), "{}", run.stderr);
    assert!(!run.stderr.contains("begin_full"), "no internals: {}", run.stderr);
    assert!(holder.try_wait().unwrap().is_none(), "the holder is untouched");
    assert_eq!(sk.sim.stats().held, 1, "the holder is still mid-call");

    // SIGKILL: the OS (or the PostgreSQL server, when the session drops) releases the lock.
    holder.start_kill().unwrap();
    let _ = holder.wait().await;
    sk.sim.release_held();
    let run = sk.run(&args(&["sync", "gifts", "--lock-wait", "30", "--page-size", "100"], &t)).await;
    run.expect_code(0);
    match &target {
        Target::Sqlite(p) => Fixture::at(SinkSpec::Sqlite(p.clone())).assert_equals_source(&sk.sim, "gifts").await,
        Target::Postgres(fx, _) => fx.assert_equals_source(&sk.sim, "gifts").await,
        Target::Jsonl(d) => assert!(d.join("gifts.jsonl").exists()),
    }
}

#[tokio::test]
async fn sqlite_second_sync_exits_6_and_a_killed_holder_frees_the_lock() {
    let sk = world(200).await;
    let db = sk.home().join("lock.db");
    second_run_is_refused_then_a_killed_holder_frees_the_lock(sk, Target::Sqlite(db)).await;
}

#[tokio::test]
async fn postgres_second_sync_exits_6_and_a_killed_holder_frees_the_lock() {
    let sk = world(200).await;
    let fx = Fixture::postgres();
    let SinkSpec::Postgres { url, .. } = fx.spec().clone() else { unreachable!() };
    second_run_is_refused_then_a_killed_holder_frees_the_lock(sk, Target::Postgres(fx, url)).await;
}

#[tokio::test]
async fn jsonl_dir_second_sync_exits_6_and_a_killed_holder_frees_the_lock() {
    let sk = world(200).await;
    let dir = sk.home().join("out");
    second_run_is_refused_then_a_killed_holder_frees_the_lock(sk, Target::Jsonl(dir)).await;
}

/// A run that finds the lock taken waits for the holder to finish, then syncs.
#[tokio::test]
async fn a_waiting_run_proceeds_once_the_holder_finishes() {
    let sk = world(100).await;
    let db = sk.home().join("wait.db");
    let target = Target::Sqlite(db.clone());
    let t = target.args();
    let holder = held_holder(&sk, &target).await;
    let mut waiting = sk.command(&args(&["sync", "gifts", "--full", "--lock-wait", "50"], &t)).spawn().unwrap();
    // Released only once the waiting run has the lock file open: it found the lock taken.
    let lock_file = std::fs::canonicalize(sqlite_lock_path(&db)).unwrap();
    let waiting_pid = waiting.id().unwrap();
    wait_until(Duration::from_secs(60), "the waiting run opens the lock file", || {
        if let Ok(Some(status)) = waiting.try_wait() {
            panic!("the waiting run exited ({status}) while the holder still held the lock");
        }
        let open = has_open(waiting_pid, &lock_file);
        async move { open }
    })
    .await;
    assert_eq!(sk.sim.stats().api_calls, 1, "the waiting run made no call while the lock was held");
    sk.sim.release_held();
    let run = sk.finish(waiting.wait_with_output().await.unwrap());
    let held = holder.wait_with_output().await.unwrap();
    assert!(held.status.success(), "{}", String::from_utf8_lossy(&held.stderr));
    run.expect_code(0);
    assert!(run.stdout.contains("full"), "{}", run.stdout);
    Fixture::at(SinkSpec::Sqlite(db)).assert_equals_source(&sk.sim, "gifts").await;
}

/// Whether process `pid` has `path` open (Linux `/proc`).
fn has_open(pid: u32, path: &std::path::Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}
