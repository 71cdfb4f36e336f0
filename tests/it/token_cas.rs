//! The token store's compare-and-swap under real contention: separate processes, a slowed token
//! endpoint, a SIGKILLed lock holder, readers during renames, and a stale writer's `Conflict`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use skysync_cli::sim::SimConfig;
use skysync_cli::sim::grants::RefreshTokenState;
use skysync_cli::token_store::FileTokenStore;
use skysync_core::bundle::BundleContent;
use skysync_core::store::{StoreError, TokenStore};
use skysync_tests::cli::Skysync;
use skysync_tests::procs::{is_locked, parse_token_file, wait_until};

const LIMIT: Duration = Duration::from_secs(60);

async fn world() -> Skysync {
    let s = Skysync::with_sim(SimConfig { records: 10, ..SimConfig::default() }).await;
    s.sim.set_revoke_grant_on_replay(true);
    s
}

/// An import that arrives while another process refreshes waits for the refresh's save, then
/// replaces it: both writes land, in order, and neither is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_racing_a_refresh_waits_for_it_and_no_write_is_lost() {
    let s = world().await;
    s.seed_expired_access().await;
    let generation = s.stored()["generation"].as_u64().unwrap();
    s.sim.set_token_delay(Duration::from_millis(300), Duration::from_millis(300));
    let refresher = s.command(&["token"]).spawn().unwrap();
    wait_until(LIMIT, "the refresh holds the lock mid-call", || async { s.sim.stats().token_calls >= 1 }).await;
    assert!(is_locked(&s.data_dir().join("tokens.lock")));
    let newer = s.minted_tokens(|_| {});
    let bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(newer.clone()) });
    let importer = s.command(&["import", bundle.to_str().unwrap()]).spawn().unwrap();
    let refreshed = s.finish(tokio::time::timeout(LIMIT, refresher.wait_with_output()).await.unwrap().unwrap());
    refreshed.expect_code(0);
    let imported = s.finish(tokio::time::timeout(LIMIT, importer.wait_with_output()).await.unwrap().unwrap());
    imported.expect_code(0);
    // The import came last; the refresh's result is the generation before it.
    assert_eq!(s.stored_refresh_token(), newer.refresh_token.secret());
    assert_eq!(s.stored()["generation"].as_u64().unwrap(), generation + 2);
    let backup = parse_token_file(&s.data_dir().join("tokens.json.bak")).unwrap();
    assert_eq!(backup["tokens"]["access_token"].as_str(), Some(refreshed.stdout.trim()), "the refresh was saved");
    assert_eq!(backup["generation"].as_u64().unwrap(), generation + 1);
    assert_eq!(s.sim.stats().token_calls, 1);
}

/// A lock holder killed mid-call (SIGKILL: no deferral possible) releases the lock with its
/// life; the next run proceeds, and the recorded intent says a rotation's outcome is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_lock_holder_does_not_block_the_next_run() {
    let s = world().await;
    let tokens = s.minted_tokens(|_| {});
    let access = tokens.access_token.as_ref().unwrap().secret().to_owned();
    s.seed(tokens).await;
    s.sim.set_token_delay(Duration::from_secs(30), Duration::ZERO);
    let mut holder = s.command(&["renew"]).spawn().unwrap();
    wait_until(LIMIT, "the rotation is in flight", || async { s.sim.stats().token_calls >= 1 }).await;
    assert!(is_locked(&s.data_dir().join("tokens.lock")), "the killed process held the lock");
    holder.start_kill().unwrap();
    holder.wait().await.unwrap();
    let next = tokio::time::timeout(LIMIT, s.run(&["token"])).await.expect("the next run is not blocked");
    next.expect_code(0);
    assert_eq!(next.stdout.trim(), access);
    let status = s.run(&["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(v["rotation_started_at"].is_string(), "{}", status.stdout);
}

/// Readers never see a partial or missing token file while renames replace it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_partial_token_file_during_renames() {
    let s = Arc::new(world().await);
    s.seed(s.minted_tokens(|_| {})).await;
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (file, done, reads) = (s.token_file(), done.clone(), reads.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                parse_token_file(&file).unwrap_or_else(|e| panic!("a reader saw a broken token file: {e}"));
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for _ in 0..15 {
                s.run(&["renew"]).await.expect_code(0);
            }
        })
    };
    let mut statuses = 0;
    while !writer.is_finished() {
        let run = s.run(&["status", "--json"]).await;
        assert_eq!(run.code, 0, "status during a rename: {}", run.stderr);
        statuses += 1;
    }
    writer.await.unwrap();
    done.store(true, Ordering::Relaxed);
    reader.join().expect("reader thread");
    assert!(reads.load(Ordering::Relaxed) > 0 && statuses > 0);
    assert_eq!(s.stored()["generation"].as_u64().unwrap(), 1 + 15 * 2, "an intent and a result per rotation");
    assert_eq!(s.sim.refresh_token_state(&s.stored_refresh_token()), RefreshTokenState::Live);
}

/// A writer that read an older generation gets `StoreError::Conflict` and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_with_a_stale_generation_gets_a_conflict() {
    let s = world().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let store = FileTokenStore::new(s.data_dir());
    let read = store.load().await.unwrap().unwrap();
    // Another process rotates meanwhile.
    s.run(&["renew"]).await.expect_code(0);
    let after = std::fs::read(s.token_file()).unwrap();
    let lock = store.lock().await.unwrap();
    let e = store.save(&read.tokens, Some(read.generation)).await.unwrap_err();
    drop(lock);
    match e {
        StoreError::Conflict { expected, found } => {
            assert_eq!(expected, Some(read.generation));
            assert_eq!(found, Some(read.generation + 2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(std::fs::read(s.token_file()).unwrap(), after, "the stale write changed nothing");
    s.run(&["token"]).await.expect_code(0);
}

/// The store refuses a symlinked or foreign-owned token file (and one others can read).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_or_foreign_owned_token_file_is_refused() {
    let s = world().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let file = s.token_file();
    let elsewhere = s.home().join("planted.json");
    std::fs::rename(&file, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &file).unwrap();
    for cmd in [&["token"][..], &["status"]] {
        let run = s.run(cmd).await;
        run.expect_code(1);
        assert!(run.stderr.contains("symbolic link"), "{cmd:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    std::fs::remove_file(&file).unwrap();
    std::fs::rename(&elsewhere, &file).unwrap();
    s.run(&["token"]).await.expect_code(0);
    // Another owner: only root can hand a file to someone else.
    let chown = std::process::Command::new("chown").arg("65534").arg(&file).status();
    if !chown.is_ok_and(|st| st.success()) {
        eprintln!("skipped the foreign-owner half: chown needs root here");
        return;
    }
    let run = s.run(&["token"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("owned by uid 65534"), "{}", run.stderr);
}
