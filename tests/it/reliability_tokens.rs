//! Never lose a refresh token: signals during a rotation, failed saves and rescue files, lost
//! rotations, imports that cannot destroy a working grant, the SIGKILL crash loop (9.1),
//! concurrency (9.2), full and read-only disks (9.3) and secret hygiene with errors forced (9.5).
//!
//! The simulator revokes a whole grant when a used code or a rotated refresh token is replayed
//! (as RFC 6749 allows), so any replay a client makes shows up as a dead grant.

use std::time::Duration;

use skysync_cli::sim::grants::RefreshTokenState;
use skysync_cli::sim::{Fault, SimConfig};
use skysync_core::bundle::BundleContent;
use skysync_tests::cli::{Skysync, assert_no_secrets};
use skysync_tests::procs::{Dice, files_starting_with, parse_token_file, signal, wait_until};

const LIMIT: Duration = Duration::from_secs(60);

/// A world whose simulator revokes grants on replay.
async fn strict_world() -> Skysync {
    let s = Skysync::with_sim(SimConfig { records: 20, ..SimConfig::default() }).await;
    s.sim.set_revoke_grant_on_replay(true);
    s
}

fn state_of_stored(s: &Skysync) -> RefreshTokenState {
    s.sim.refresh_token_state(&s.stored_refresh_token())
}

fn rescue_files(s: &Skysync) -> Vec<std::path::PathBuf> {
    files_starting_with(&s.data_dir(), "tokens.rescue-")
}

// ---- Item 5: a rotation is never lost without a trace ----

/// SIGTERM, SIGINT and SIGHUP that arrive while a rotation is in flight wait for its save; the
/// process then exits with the signal's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_a_rotation_waits_for_the_save_then_exits_with_its_status() {
    let s = strict_world().await;
    s.seed(s.minted_tokens(|_| {})).await;
    // The server commits the rotation, then takes a while to answer.
    s.sim.set_token_delay(Duration::ZERO, Duration::from_millis(400));
    for (name, code) in [("TERM", 143), ("INT", 130), ("HUP", 129)] {
        let calls = s.sim.stats().token_calls;
        let child = s.command(&["renew"]).spawn().unwrap();
        let pid = child.id().unwrap();
        wait_until(LIMIT, "the rotation is in flight", || async { s.sim.stats().token_calls > calls }).await;
        signal(pid, name);
        let out = tokio::time::timeout(LIMIT, child.wait_with_output()).await.unwrap().unwrap();
        let run = s.finish(out);
        assert_eq!(run.code, code, "SIG{name}: {}", run.stderr);
        assert!(run.stderr.contains(&format!("SIG{name}")), "{}", run.stderr);
        assert_eq!(state_of_stored(&s), RefreshTokenState::Live, "SIG{name}: the rotated token was saved");
        assert!(s.stored()["tokens"]["rotation_started_at"].is_null());
    }
    s.run(&["renew"]).await.expect_code(0);
    assert_eq!(s.sim.stats().replays, 0);
}

/// Outside a token call a signal still stops the process at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_outside_a_token_call_stops_at_once() {
    let s = strict_world().await;
    let (mut child, _url, _stderr) = s.start_login(&["login", "--manual", "--timeout", "60"]).await;
    // Kept open: login waits on stdin, and EOF would end it before the signal does.
    let _stdin = child.stdin.take();
    signal(child.id().unwrap(), "TERM");
    let status = tokio::time::timeout(LIMIT, child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(143));
}

/// A rotation is only sent once its intent is on disk: a store that cannot be written gets no
/// rotation at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_gets_no_rotation() {
    let s = strict_world().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let before = std::fs::read(s.token_file()).unwrap();
    s.set_env("SKYSYNC_TEST_SAVE_FAULT", Some("erofs:0"));
    let run = s.run(&["renew"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("not writable, so the rotation was not sent"), "{}", run.stderr);
    assert!(run.stderr.contains("Read-only file system"), "{}", run.stderr);
    assert_eq!(s.sim.stats().token_calls, 0);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), before);
}

/// 9.3: a full or read-only disk when the rotated tokens are saved. The old file stays intact,
/// the new tokens go to a 0600 rescue file the error names (exit 4), and the next run adopts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_after_a_rotation_is_rescued_and_adopted_by_the_next_run() {
    for fault in ["enospc:1", "erofs:1"] {
        let s = strict_world().await;
        s.seed(s.minted_tokens(|_| {})).await;
        let old_refresh = s.stored_refresh_token();
        // The intent write succeeds; the save of the rotated tokens fails.
        s.set_env("SKYSYNC_TEST_SAVE_FAULT", Some(fault));
        let run = s.run(&["renew"]).await;
        run.expect_code(4);
        let rescues = rescue_files(&s);
        assert_eq!(rescues.len(), 1, "{fault}: one rescue file: {}", run.stderr);
        let rescue = &rescues[0];
        assert!(run.stderr.contains(&rescue.display().to_string()), "{fault}: the error names it: {}", run.stderr);
        assert!(run.stderr.contains("rotated") && run.stderr.contains("adopts it"), "{}", run.stderr);
        assert!(!run.stderr.contains("previous refresh token is kept"), "{}", run.stderr);
        #[cfg(unix)]
        assert_eq!(skysync_tests::procs::mode(rescue), 0o600);
        let rescued = parse_token_file(rescue).unwrap();
        let new_refresh = rescued["tokens"]["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(s.sim.refresh_token_state(&new_refresh), RefreshTokenState::Live);
        // The token file is intact: the old refresh token, with the rotation's intent recorded.
        assert_eq!(s.stored_refresh_token(), old_refresh);
        assert!(s.stored()["tokens"]["rotation_started_at"].is_string());
        // Until it is adopted, status says where the newest tokens are.
        let status = s.run(&["status", "--json"]).await;
        let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(v["rescue_file"].as_str(), Some(rescue.to_str().unwrap()), "{}", status.stdout);
        // The disk is fine again: the next run adopts the rescue and works without consent.
        s.set_env("SKYSYNC_TEST_SAVE_FAULT", None);
        let next = s.run(&["token"]).await;
        next.expect_code(0);
        assert!(next.stderr.contains("adopted the tokens rescued"), "{}", next.stderr);
        assert_eq!(s.stored_refresh_token(), new_refresh);
        assert!(rescue_files(&s).is_empty(), "the adopted rescue file is removed");
        s.run(&["renew"]).await.expect_code(0);
        assert_eq!(s.sim.stats().replays, 0, "{fault}: the dead token was never replayed");
    }
}

/// When even the rescue file cannot be written, the error says the rotation is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_cannot_be_saved_anywhere_says_so() {
    let s = strict_world().await;
    s.seed(s.minted_tokens(|_| {})).await;
    s.set_env("SKYSYNC_TEST_SAVE_FAULT", Some("enospc-all:1"));
    let run = s.run(&["renew"]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("writing a rescue file failed too"), "{}", run.stderr);
    assert!(run.stderr.contains("No space left on device"), "{}", run.stderr);
    assert!(rescue_files(&s).is_empty());
}

/// A rescue older than the stored tokens (a later consent) is not adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_rescue_file_is_not_adopted() {
    let s = strict_world().await;
    s.seed(s.minted_tokens(|_| {})).await;
    s.set_env("SKYSYNC_TEST_SAVE_FAULT", Some("enospc:1"));
    s.run(&["renew"]).await.expect_code(4);
    s.set_env("SKYSYNC_TEST_SAVE_FAULT", None);
    // A new consent arrives before any run adopts the rescue.
    let fresh = s.minted_tokens(|_| {});
    s.seed(fresh.clone()).await;
    assert!(rescue_files(&s).is_empty(), "a new consent supersedes the rescue");
    s.run(&["token"]).await.expect_code(0);
    assert_eq!(s.stored_refresh_token(), fresh.refresh_token.secret());
}

/// An `invalid_grant` after a recorded rotation intent is a lost rotation (exit 4, with the
/// time), never a bare `invalid_grant`; `status` reports it and consent as needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_after_a_recorded_intent_is_reported_as_a_lost_rotation() {
    let s = strict_world().await;
    s.seed_expired_access().await;
    s.sim.drop_response_after_rotation(1);
    s.run(&["renew"]).await.expect_code(1);
    let sent = s.stored()["tokens"]["rotation_started_at"].as_str().unwrap().to_owned();
    assert_eq!(state_of_stored(&s), RefreshTokenState::Rotated, "the server committed the rotation");
    let run = s.run(&["token"]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("response never arrived"), "{}", run.stderr);
    assert!(run.stderr.contains(&sent[..16]), "the time it was sent: {}", run.stderr);
    let status = s.run(&["status", "--json"]).await;
    status.expect_code(4);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["rotation_lost"], true, "{}", status.stdout);
    assert_eq!(v["health"], "consent_needed");
    // Known dead: no further token call.
    let calls = s.sim.stats().token_calls;
    s.run(&["token"]).await.expect_code(4);
    assert_eq!(s.sim.stats().token_calls, calls);
}

// ---- Item 6: import cannot destroy a working grant; a dead grant is never healthy ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_same_code_bundle_twice_is_refused_before_any_request() {
    let s = strict_world().await;
    let bundle = s.bundle_file(s.code_bundle().await);
    let path = bundle.to_str().unwrap();
    s.run(&["import", path]).await.expect_code(0);
    let calls = s.sim.stats().token_calls;
    let again = s.run(&["import", path]).await;
    again.expect_code(2);
    assert!(again.stderr.contains("already sent"), "{}", again.stderr);
    let forced = s.run(&["import", "--force", path]).await;
    forced.expect_code(2);
    assert_eq!(s.sim.stats().token_calls, calls, "nothing was sent");
    assert_eq!(s.sim.stats().replays, 0);
    s.run(&["renew"]).await.expect_code(0);
    s.run(&["status"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_bundle_older_than_the_stored_consent_is_refused() {
    let s = strict_world().await;
    let bundle = s.home().join("code-bundle.json");
    // (Renamed: the next bundle file would reuse its name.)
    std::fs::rename(s.bundle_file(s.code_bundle().await), &bundle).unwrap();
    // A newer consent is stored meanwhile.
    s.sim.advance_clock(Duration::from_secs(60));
    s.seed(s.minted_tokens(|_| {})).await;
    let stored = std::fs::read(s.token_file()).unwrap();
    let run = s.run(&["import", bundle.to_str().unwrap()]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("before the stored consent"), "{}", run.stderr);
    assert_eq!(s.sim.stats().token_calls, 0);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_refresh_bundle_after_two_renewals_is_refused_unless_forced() {
    let s = strict_world().await;
    let first = s.minted_tokens(|t| t.access_expires_at = Some(t.refresh_obtained_at));
    let first_bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(first) });
    let path = first_bundle.to_str().unwrap();
    s.run(&["import", path]).await.expect_code(0);
    s.sim.advance_clock(Duration::from_secs(2));
    s.run(&["renew"]).await.expect_code(0);
    s.sim.advance_clock(Duration::from_secs(2));
    s.run(&["renew"]).await.expect_code(0);
    let live = s.stored_refresh_token();
    let run = s.run(&["import", path]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("before the stored one"), "{}", run.stderr);
    assert_eq!(s.stored_refresh_token(), live);
    s.run(&["token"]).await.expect_code(0);
    assert_eq!((s.sim.stats().replays, state_of_stored(&s)), (0, RefreshTokenState::Live));

    // Forced, the stale token is replayed and this server revokes the whole grant: the refusal
    // is recorded, and nothing reports the dead grant as healthy afterwards.
    s.run(&["import", "--force", path]).await.expect_code(0);
    let run = s.run(&["token"]).await;
    run.expect_code(4);
    assert!(run.stdout.is_empty());
    assert_eq!(s.sim.stats().grants_revoked, 1);
    assert_eq!(s.sim.refresh_token_state(&live), RefreshTokenState::Revoked);
    s.run(&["status"]).await.expect_code(4);
    // The live token of before is still on disk in the kept generations.
    let kept: Vec<String> = ["tokens.json.bak", "tokens.json.bak.2", "tokens.json.bak.3"]
        .iter()
        .filter_map(|n| parse_token_file(&s.data_dir().join(n)).ok())
        .map(|v| v["tokens"]["refresh_token"].as_str().unwrap().to_owned())
        .collect();
    assert!(kept.contains(&live), "{kept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_refresh_bundle_is_refused() {
    let s = strict_world().await;
    let dead = s.minted_tokens(|t| t.refresh_expires_at = t.refresh_obtained_at - time::Duration::days(1));
    let path = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(dead) });
    let run = s.run(&["import", path.to_str().unwrap()]).await;
    run.expect_code(4);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert!(!s.token_file().exists());
}

/// Two imports in a row keep the first (working) token file among three generations, all 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_generations_of_the_token_file_are_kept() {
    let s = strict_world().await;
    let mut refresh = Vec::new();
    for _ in 0..4 {
        let t = s.minted_tokens(|_| {});
        refresh.push(t.refresh_token.secret().to_owned());
        s.seed(t).await;
    }
    let names = ["tokens.json", "tokens.json.bak", "tokens.json.bak.2", "tokens.json.bak.3"];
    for (i, name) in names.iter().enumerate() {
        let path = s.data_dir().join(name);
        let v = parse_token_file(&path).unwrap();
        assert_eq!(v["tokens"]["refresh_token"].as_str(), Some(refresh[3 - i].as_str()), "{name}");
        #[cfg(unix)]
        assert_eq!(skysync_tests::procs::mode(&path), 0o600, "{name}");
    }
    s.run(&["logout", "--yes"]).await.expect_code(0);
    for name in names {
        assert!(!s.data_dir().join(name).exists(), "logout removes {name}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_warns_about_a_bundle_others_can_read_and_suggests_deleting_it() {
    use std::os::unix::fs::PermissionsExt;
    let s = strict_world().await;
    let path = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(s.minted_tokens(|_| {})) });
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = s.run(&["import", path.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("readable by other users (mode 644)"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("rm {}", path.display())), "{}", run.stderr);
    let private = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(s.minted_tokens(|_| {})) });
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = s.run(&["import", private.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(!run.stderr.contains("readable by other users"), "{}", run.stderr);
    assert!(run.stderr.contains("delete it"), "{}", run.stderr);
}

/// After `invalid_grant`, `token` refuses the cached access token that still looks valid, and
/// `status` reports consent needed, until a new import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_grant_is_never_reported_healthy_until_a_new_import() {
    let s = strict_world().await;
    let tokens = s.minted_tokens(|_| {});
    s.seed(tokens).await;
    s.sim.revoke_refresh_tokens();
    s.run(&["renew"]).await.expect_code(4);
    let token = s.run(&["token"]).await;
    token.expect_code(4);
    assert!(token.stdout.is_empty(), "the cached access token is not printed");
    assert!(token.stderr.contains("refused"), "{}", token.stderr);
    let status = s.run(&["status", "--json"]).await;
    status.expect_code(4);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!((v["health"].as_str(), v["access_token_valid"].as_bool()), (Some("consent_needed"), Some(false)));
    assert!(v["grant_refused_at"].is_string());
    s.seed(s.minted_tokens(|_| {})).await;
    s.run(&["status"]).await.expect_code(0);
    s.run(&["token"]).await.expect_code(0);
}

// ---- 9.2: concurrency ----

/// 24 processes (`SKYSYNC_CONCURRENCY_PROCESSES`) mixing `token`, `renew` and `sync` on one profile: one preserving refresh at
/// most for the expired access token, one rotation per `renew`, no lost rotation, no replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_renew_and_sync_processes_on_one_profile_lose_nothing() {
    let s = strict_world().await;
    s.seed_expired_access().await;
    s.sim.set_token_delay(Duration::from_millis(20), Duration::from_millis(20));
    let before = s.sim.stats();
    let dbs = tempfile::tempdir().unwrap();
    let processes: u64 =
        std::env::var("SKYSYNC_CONCURRENCY_PROCESSES").ok().and_then(|v| v.parse().ok()).unwrap_or(24).clamp(3, 64);
    let mut children = Vec::new();
    let mut renews = 0;
    for i in 0..processes {
        let db = dbs.path().join(format!("sync-{i}.db"));
        let args: Vec<String> = match i % 3 {
            0 => vec!["token".into()],
            1 => {
                renews += 1;
                vec!["renew".into()]
            }
            _ => ["sync", "constituents", "--db", db.to_str().unwrap(), "--page-size", "10"]
                .iter()
                .map(|a| a.to_string())
                .collect(),
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        children.push((args.join(" "), s.command(&argv).spawn().unwrap()));
    }
    for (what, child) in children {
        let out = tokio::time::timeout(LIMIT, child.wait_with_output()).await.unwrap().unwrap();
        let run = s.finish(out);
        assert_eq!(run.code, 0, "{what}: {}", run.stderr);
        assert!(!run.stderr.contains("invalid_grant"), "{what}: {}", run.stderr);
    }
    let stats = s.sim.stats();
    let rotations = stats.token_refresh_rotate - before.token_refresh_rotate;
    let preserves = stats.token_refresh_preserve - before.token_refresh_preserve;
    eprintln!(
        "RELIABILITY concurrency: processes={processes} renews={renews} rotations={rotations} preserving_refreshes={preserves} token_calls={} replays={} grants_revoked={} lost_rotations={}",
        stats.token_calls - before.token_calls,
        stats.replays,
        stats.grants_revoked,
        u64::from(state_of_stored(&s) != RefreshTokenState::Live)
    );
    assert_eq!(rotations, renews, "one rotation per renew");
    assert!(preserves <= 1, "at most one refresh for the one expiry: {preserves}");
    assert_eq!(stats.token_calls - before.token_calls, rotations + preserves, "no failed token call");
    assert_eq!((stats.replays, stats.grants_revoked), (0, 0));
    assert_eq!(state_of_stored(&s), RefreshTokenState::Live);
    assert!(s.stored()["tokens"]["rotation_started_at"].is_null());
}

// ---- 9.1: SIGKILL during refresh and rotation ----

/// Figures of one crash loop.
#[derive(Debug, Default)]
struct CrashFigures {
    iterations: u64,
    killed: u64,
    rotations: u64,
    lost: u64,
    reported_lost: u64,
    bare_invalid_grant: u64,
    store_parsed: u64,
}

/// SIGKILLs `token`, `renew` and `sync` at random points (a slowed, jittered token endpoint and
/// a random kill delay). After each kill the token file parses, and the next run either works
/// without consent or (only when the server committed a rotation the client never saved)
/// reports the lost rotation. `SKYSYNC_CRASH_ITERATIONS` sets the count (default 200; the heavy
/// script runs more), `SKYSYNC_CRASH_SEED` the dice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_refresh_and_rotation_never_loses_a_token_silently() {
    let iterations: u64 = std::env::var("SKYSYNC_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let seed: u64 = std::env::var("SKYSYNC_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5EED);
    let s = Skysync::with_sim(SimConfig {
        records: 20,
        // Every access token is due at once: each run refreshes, and rotates inside the window.
        access_token_ttl: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    s.sim.set_revoke_grant_on_replay(true);
    s.sim.set_token_delay(Duration::from_millis(15), Duration::from_millis(15));
    s.set_env("SKYSYNC_RENEWAL_WINDOW_DAYS", Some("400"));
    s.seed(s.minted_tokens(|_| {})).await;
    let db = s.home().join("crash.db");
    let mut dice = Dice::new(seed);
    let mut f = CrashFigures::default();
    let rotations_before = s.sim.stats().token_refresh_rotate;
    for i in 0..iterations {
        f.iterations += 1;
        let args: Vec<&str> = match dice.below(3) {
            0 => vec!["token"],
            1 => vec!["renew"],
            _ => vec!["sync", "constituents", "--db", db.to_str().unwrap(), "--page-size", "10"],
        };
        let mut child = s.command(&args).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(dice.below(120))).await;
        child.start_kill().unwrap();
        let status = tokio::time::timeout(LIMIT, child.wait()).await.unwrap().unwrap();
        if status.code().is_none() {
            f.killed += 1;
        }
        match parse_token_file(&s.token_file()) {
            Ok(_) => f.store_parsed += 1,
            Err(e) => panic!("iteration {i} ({args:?}, seed {seed}): {e}"),
        }
        // What the server knows: a committed rotation whose result the client never saved.
        let lost = state_of_stored(&s) == RefreshTokenState::Rotated;
        let mut next = s.run(&["token"]).await;
        if lost && next.code == 0 {
            // The cached access token was still good (a token is never refreshed more than a
            // quarter of its life early): the loss shows when the refresh token is next used.
            next = s.run(&["renew"]).await;
        }
        if lost {
            f.lost += 1;
            assert_eq!(next.code, 4, "iteration {i}: {}", next.stderr);
            if next.stderr.contains("response never arrived") {
                f.reported_lost += 1;
            } else if next.stderr.contains("invalid_grant") {
                f.bare_invalid_grant += 1;
            }
            // A person consents again.
            let fresh = s.minted_tokens(|_| {});
            let path = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(fresh) });
            s.run(&["import", "--force", path.to_str().unwrap()]).await.expect_code(0);
        } else {
            assert_eq!(
                next.code, 0,
                "iteration {i} ({args:?}, seed {seed}): the next run needs no consent\n{}",
                next.stderr
            );
        }
    }
    f.rotations = s.sim.stats().token_refresh_rotate - rotations_before;
    eprintln!(
        "RELIABILITY crash-loop: seed={seed} iterations={} killed={} rotations_committed={} lost_rotations={} reported_as_lost_rotation={} bare_invalid_grant={} store_parsed_after_kill={} grants_revoked={}",
        f.iterations,
        f.killed,
        f.rotations,
        f.lost,
        f.reported_lost,
        f.bare_invalid_grant,
        f.store_parsed,
        s.sim.stats().grants_revoked
    );
    assert_eq!(f.bare_invalid_grant, 0);
    assert_eq!(f.reported_lost, f.lost, "every lost rotation is reported as one");
    // Runs that still hold a good access token finish before any kill (a token is refreshed at
    // most a quarter of its life early), so only some runs die mid-way; enough must.
    assert!(f.killed > iterations / 8, "runs were killed mid-way: {f:?}");
    assert!(f.rotations > 0, "rotations happened: {f:?}");
}

// ---- 9.5: secret hygiene with errors forced ----

/// At trace verbosity, with lost rotations, refused grants, failed saves, rescue files, replayed
/// codes and a broken token endpoint, no secret value appears in any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_at_trace_level_when_token_handling_fails() {
    let s = strict_world().await;
    let c = s.sim.config();
    let mut secrets = vec![c.client_secret.clone(), c.subscription_key.clone()];
    let bundle = s.bundle_file(s.code_bundle().await);
    let text = std::fs::read_to_string(&bundle).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    secrets.push(v["code"].as_str().unwrap().to_owned());
    secrets.push(v["code_verifier"].as_str().unwrap().to_owned());
    let path = bundle.to_str().unwrap();
    for format in ["text", "json"] {
        let trace = ["-vvv", "--log-format", format];
        let with = |args: &[&'static str]| trace.iter().copied().chain(args.iter().copied()).collect::<Vec<&str>>();
        let run_traced = async |args: &[&'static str]| {
            let mut argv = with(args);
            if args == ["import"] {
                argv.push(path);
            }
            s.run(&argv).await
        };
        // A code exchanged, then replayed (refused before any request).
        run_traced(&["import"]).await;
        remember_stored(&s, &mut secrets);
        run_traced(&["import"]).await.expect_code(2);
        // A rotation whose save fails: the rescue file holds the new tokens.
        s.set_env("SKYSYNC_TEST_SAVE_FAULT", Some("enospc:1"));
        run_traced(&["renew"]).await.expect_code(4);
        s.set_env("SKYSYNC_TEST_SAVE_FAULT", None);
        for rescue in rescue_files(&s) {
            let v = parse_token_file(&rescue).unwrap();
            secrets.push(v["tokens"]["refresh_token"].as_str().unwrap().to_owned());
            secrets.push(v["tokens"]["access_token"].as_str().unwrap().to_owned());
        }
        // (`api`, not `token`: printing the access token is `token`'s job.)
        run_traced(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(0);
        remember_stored(&s, &mut secrets);
        // A broken token endpoint, then a lost rotation and the refusal that follows.
        s.sim.fail_next_token(1, Fault::Html { code: 502 });
        run_traced(&["renew"]).await;
        s.sim.drop_response_after_rotation(1);
        run_traced(&["renew"]).await.expect_code(1);
        run_traced(&["renew"]).await.expect_code(4);
        run_traced(&["token"]).await.expect_code(4);
        run_traced(&["status"]).await.expect_code(4);
        // Start over with a fresh consent for the second format.
        let fresh = s.minted_tokens(|_| {});
        secrets.push(fresh.refresh_token.secret().to_owned());
        secrets.push(fresh.access_token.as_ref().unwrap().secret().to_owned());
        s.seed(fresh).await;
    }
    // Plus SKYSYNC_LOG=trace, which also raises the HTTP crates to trace.
    s.set_env("SKYSYNC_LOG", Some("trace"));
    s.seed_expired_access().await;
    remember_stored(&s, &mut secrets);
    s.run(&["api", "/constituent/v1/constituents?limit=1"]).await.expect_code(0);
    remember_stored(&s, &mut secrets);
    s.run(&["renew"]).await.expect_code(0);
    remember_stored(&s, &mut secrets);
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 12, "{} secrets collected", secrets.len());
    assert_no_secrets(&s.all_output(), &secrets);
}

/// Adds the refresh and access tokens of the current token file to `secrets`.
fn remember_stored(s: &Skysync, secrets: &mut Vec<String>) {
    if let Ok(v) = parse_token_file(&s.token_file()) {
        for key in ["refresh_token", "access_token"] {
            if let Some(t) = v["tokens"][key].as_str() {
                secrets.push(t.to_owned());
            }
        }
    }
}
