//! The PostgreSQL token store against a real server: two "hosts" (separate HOME, config and data
//! directories, so no shared file lock) that share one database and one simulator.

use std::path::PathBuf;
use std::time::Duration;

use skysync_cli::sim::SimConfig;
use skysync_cli::sim::grants::RefreshTokenState;
use skysync_tests::cli::Skysync;
use skysync_tests::pg::PgServer;
use skysync_tests::procs::{signal, wait_until};

const LIMIT: Duration = Duration::from_secs(60);
/// `LOCK_SPACE` in cli/src/token_store/postgres.rs ("skys").
const LOCK_SPACE: i64 = 0x736b_7973;

/// Host A is the [`Skysync`] world itself; [`Host`] is another machine with its own HOME.
struct World {
    s: Skysync,
    pg: PgServer,
    db: tokio_postgres::Client,
}

struct Host {
    home: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        Host { home: tempfile::tempdir().expect("second HOME") }
    }

    fn data_dir(&self) -> PathBuf {
        self.home.path().join("data").join("skysync").join("default")
    }

    /// `skysync args…` as run on this host.
    fn command(&self, s: &Skysync, args: &[&str]) -> tokio::process::Command {
        let mut cmd = s.command(args);
        cmd.env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_DATA_HOME", self.home.path().join("data"));
        cmd
    }

    async fn run(&self, s: &Skysync, args: &[&str]) -> skysync_tests::cli::Run {
        let out = tokio::time::timeout(LIMIT, self.command(s, args).output()).await.expect("finished").expect("ran");
        s.finish(out)
    }
}

async fn world() -> World {
    let s = Skysync::with_sim(SimConfig { records: 10, ..SimConfig::default() }).await;
    s.sim.set_revoke_grant_on_replay(true);
    let pg = PgServer::start().expect("PostgreSQL test server");
    s.set_env("SKYSYNC_TOKEN_STORE", Some(&pg.url()));
    let (db, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.expect("test connection");
    tokio::spawn(conn);
    World { s, pg, db }
}

impl World {
    /// The stored envelope's JSON (plaintext: no key in these tests unless said).
    async fn stored(&self) -> serde_json::Value {
        let row = self
            .db
            .query_one("SELECT envelope FROM skysync_token_sets WHERE profile = 'default'", &[])
            .await
            .expect("a stored row");
        serde_json::from_slice(&row.get::<_, Vec<u8>>(0)).expect("envelope JSON")
    }

    async fn stored_refresh_token(&self) -> String {
        self.stored().await["tokens"]["refresh_token"].as_str().expect("refresh token").to_owned()
    }

    async fn generation(&self) -> i64 {
        self.db
            .query_one("SELECT generation FROM skysync_token_sets WHERE profile = 'default'", &[])
            .await
            .expect("a stored row")
            .get(0)
    }

    /// Whether some session holds skysync's advisory lock on a profile of this test's database
    /// (the server is shared with other tests).
    async fn lock_held(&self) -> bool {
        let row = self
            .db
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid::bigint = $1 \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&LOCK_SPACE],
            )
            .await
            .expect("pg_locks");
        row.get::<_, i64>(0) > 0
    }
}

/// One consent, then 16 processes on two hosts at expiry: exactly one token call, every process
/// prints the same new access token, and no host keeps a token file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_processes_on_two_hosts_make_one_token_call() {
    let w = world().await;
    let b = Host::new();
    w.s.seed_expired_access().await;
    w.s.sim.reset_stats();
    // A slow token endpoint keeps the refresh in flight while the others queue on the lock.
    w.s.sim.set_token_delay(Duration::from_millis(200), Duration::from_millis(200));
    let children: Vec<_> = (0..16)
        .map(|i| if i % 2 == 0 { w.s.command(&["token"]) } else { b.command(&w.s, &["token"]) })
        .map(|mut c| c.spawn().expect("spawn"))
        .collect();
    let mut printed = Vec::new();
    for child in children {
        let run = w.s.finish(tokio::time::timeout(LIMIT, child.wait_with_output()).await.unwrap().unwrap());
        run.expect_code(0);
        printed.push(run.stdout);
    }
    assert_eq!(w.s.sim.stats().token_calls, 1, "exactly one process on one host refreshed");
    assert!(printed.iter().all(|p| p == &printed[0]), "every process prints the same token");
    assert_eq!(Some(printed[0].trim()), w.stored().await["tokens"]["access_token"].as_str());
    assert!(!w.s.token_file().exists() && !b.data_dir().join("tokens.json").exists(), "no token file anywhere");
}

/// `renew` on host B while host A refreshes: the two calls take turns, and the stored refresh
/// token is the one the simulator considers live (no rotation lost, no rescue file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_on_one_host_while_the_other_refreshes_loses_nothing() {
    let w = world().await;
    let b = Host::new();
    w.s.seed_expired_access().await;
    let before = w.generation().await;
    w.s.sim.set_token_delay(Duration::from_millis(300), Duration::from_millis(300));
    let refresher = w.s.command(&["token"]).spawn().unwrap();
    let renewer = b.command(&w.s, &["renew"]).spawn().unwrap();
    let refreshed = w.s.finish(tokio::time::timeout(LIMIT, refresher.wait_with_output()).await.unwrap().unwrap());
    let renewed = w.s.finish(tokio::time::timeout(LIMIT, renewer.wait_with_output()).await.unwrap().unwrap());
    refreshed.expect_code(0);
    renewed.expect_code(0);
    let stats = w.s.sim.stats();
    assert_eq!(stats.token_refresh_rotate, 1, "one rotation");
    assert!(stats.token_calls <= 2, "at most the refresh and the rotation: {stats:?}");
    let stored = w.stored_refresh_token().await;
    assert_eq!(w.s.sim.refresh_token_state(&stored), RefreshTokenState::Live, "the stored refresh token works");
    // A rotation saves its intent and its result; a refresh, its result.
    assert_eq!(w.generation().await, before + 2 + i64::try_from(stats.token_refresh_preserve).unwrap());
    assert!(skysync_tests::procs::files_starting_with(&w.s.data_dir(), "tokens.rescue-").is_empty());
    assert!(skysync_tests::procs::files_starting_with(&b.data_dir(), "tokens.rescue-").is_empty());
    // And it keeps working from either host.
    b.run(&w.s, &["renew"]).await.expect_code(0);
    w.s.run(&["renew"]).await.expect_code(0);
    assert_eq!(w.s.sim.refresh_token_state(&w.stored_refresh_token().await), RefreshTokenState::Live);
}

/// A holder that stops mid-call keeps the lock: another host waits its bounded time and exits 6
/// with what happened, changing nothing. Once the holder is SIGKILLed, the server drops its
/// connection and the lock with it, and the other host proceeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_times_out_with_exit_6_and_a_killed_holder_releases_it() {
    let w = world().await;
    let b = Host::new();
    let tokens = w.s.minted_tokens(|_| {});
    let access = tokens.access_token.as_ref().unwrap().secret().to_owned();
    w.s.seed(tokens).await;
    // The import's lock goes with its connection, which the server closes on its own time.
    wait_until(LIMIT, "the import's lock is released", || async { !w.lock_held().await }).await;
    w.s.sim.set_token_delay(Duration::from_secs(30), Duration::ZERO);
    let mut holder = w.s.command(&["renew"]).spawn().unwrap();
    wait_until(LIMIT, "the rotation is in flight", || async { w.s.sim.stats().token_calls >= 1 }).await;
    assert!(w.lock_held().await, "the holder has the advisory lock");
    // Stopped, it holds the lock for as long as it lives.
    let pid = holder.id().expect("pid");
    signal(pid, "STOP");
    let generation = w.generation().await;

    let mut waiter = b.command(&w.s, &["token"]);
    waiter.env("SKYSYNC_TOKEN_LOCK_WAIT", "1");
    let busy = w.s.finish(tokio::time::timeout(LIMIT, waiter.output()).await.unwrap().unwrap());
    busy.expect_code(6);
    assert!(busy.stderr.contains("held the token lock"), "{}", busy.stderr);
    assert!(busy.stderr.contains("SKYSYNC_TOKEN_LOCK_WAIT"), "{}", busy.stderr);
    assert_eq!(w.generation().await, generation, "nothing changed");

    holder.start_kill().unwrap();
    holder.wait().await.unwrap();
    wait_until(LIMIT, "the server releases the killed holder's lock", || async { !w.lock_held().await }).await;
    let next = b.run(&w.s, &["token"]).await;
    next.expect_code(0);
    assert_eq!(next.stdout.trim(), access, "the access token was still valid: no call needed");
    let status = b.run(&w.s, &["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(v["rotation_started_at"].is_string(), "the intent recorded before the call is there: {}", status.stdout);
    assert_eq!(v["token_store"], "postgres");
}

/// With a key configured, the row holds ciphertext (no token in the clear), and every command
/// reads it; without the key it is exit 3 and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_is_encrypted_at_rest_with_the_same_key_options() {
    let w = world().await;
    let key = w.s.home().join("token.key");
    w.s.run(&["token-store", "new-key", key.to_str().unwrap()]).await.expect_code(0);
    w.s.set_env("SKYSYNC_TOKEN_KEY_FILE", Some(key.to_str().unwrap()));
    let tokens = w.s.seed_expired_access().await;
    let row = w.db.query_one("SELECT envelope FROM skysync_token_sets", &[]).await.unwrap();
    let text = String::from_utf8_lossy(&row.get::<_, Vec<u8>>(0)).into_owned();
    assert!(!text.contains(tokens.refresh_token.secret()), "the refresh token is not stored in the clear");
    assert!(text.contains("skysync-tokens-encrypted"), "{text}");
    w.s.run(&["token"]).await.expect_code(0);
    w.s.run(&["status"]).await.expect_code(0);
    w.s.set_env("SKYSYNC_TOKEN_KEY_FILE", None);
    let generation = w.generation().await;
    let refused = w.s.run(&["renew"]).await;
    refused.expect_code(3);
    assert_eq!(w.generation().await, generation);
}

/// `token-store migrate` moves the tokens file → PostgreSQL → file: each time the destination
/// holds the same refresh token and the source none, and the moved tokens keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_moves_a_profile_both_ways_leaving_one_copy() {
    let w = world().await;
    w.s.set_env("SKYSYNC_TOKEN_STORE", None);
    let tokens = w.s.minted_tokens(|_| {});
    w.s.seed(tokens.clone()).await;
    assert!(w.s.token_file().exists());

    w.s.run(&["token-store", "migrate", "--to", &w.pg.url()]).await.expect_code(0);
    assert!(!w.s.token_file().exists(), "the file copy is gone");
    assert_eq!(w.stored_refresh_token().await, tokens.refresh_token.secret());
    // Until the profile points at the new store, there are no tokens.
    w.s.run(&["token"]).await.expect_code(4);
    w.s.set_env("SKYSYNC_TOKEN_STORE", Some(&w.pg.url()));
    w.s.run(&["renew"]).await.expect_code(0);
    let rotated = w.stored_refresh_token().await;

    // A destination that already holds tokens is refused, and nothing moves.
    w.s.set_env("SKYSYNC_TOKEN_STORE", None);
    w.s.seed(w.s.minted_tokens(|_| {})).await;
    w.s.set_env("SKYSYNC_TOKEN_STORE", Some(&w.pg.url()));
    let refused = w.s.run(&["token-store", "migrate", "--to", "file"]).await;
    refused.expect_code(2);
    assert!(refused.stderr.contains("already holds tokens"), "{}", refused.stderr);
    assert_eq!(w.stored_refresh_token().await, rotated);
    w.s.set_env("SKYSYNC_TOKEN_STORE", None);
    w.s.run(&["logout", "--yes"]).await.expect_code(0);
    w.s.set_env("SKYSYNC_TOKEN_STORE", Some(&w.pg.url()));

    w.s.run(&["token-store", "migrate", "--to", "file"]).await.expect_code(0);
    let gone = w.db.query_one("SELECT count(*) FROM skysync_token_sets", &[]).await.unwrap();
    assert_eq!(gone.get::<_, i64>(0), 0, "the database copy is gone");
    assert_eq!(w.s.stored_refresh_token(), rotated);
    w.s.set_env("SKYSYNC_TOKEN_STORE", None);
    w.s.run(&["renew"]).await.expect_code(0);
    assert_eq!(w.s.sim.refresh_token_state(&w.s.stored_refresh_token()), RefreshTokenState::Live);
}

/// A rotated set whose save fails is rescued into a file on the host that rotated; the next
/// run there adopts it into the table, and status and logout see the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_save_is_rescued_locally_and_adopted_into_the_table() {
    let w = world().await;
    w.s.seed(w.s.minted_tokens(|_| {})).await;
    // The intent saves; the rotated set's save fails.
    let mut renew = w.s.command(&["renew"]);
    renew.env("SKYSYNC_TEST_SAVE_FAULT", "erofs:1");
    let failed = w.s.finish(tokio::time::timeout(LIMIT, renew.output()).await.unwrap().unwrap());
    failed.expect_code(4);
    let rescues = skysync_tests::procs::files_starting_with(&w.s.data_dir(), "tokens.rescue-");
    assert_eq!(rescues.len(), 1, "{}", failed.stderr);
    let rotated = skysync_tests::procs::parse_token_file(&rescues[0]).unwrap()["tokens"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(w.stored_refresh_token().await, rotated);
    let status = w.s.run(&["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(v["rescue_file"].is_string(), "{}", status.stdout);
    // The next run that takes the lock adopts it, whether or not it calls the token endpoint.
    let calls = w.s.sim.stats().token_calls;
    w.s.run(&["token"]).await.expect_code(0);
    assert_eq!(w.s.sim.stats().token_calls, calls, "the rescued access token is still valid");
    assert_eq!(w.stored_refresh_token().await, rotated, "adopted into the table");
    assert!(skysync_tests::procs::files_starting_with(&w.s.data_dir(), "tokens.rescue-").is_empty());
    w.s.run(&["renew"]).await.expect_code(0);
    assert_eq!(w.s.sim.refresh_token_state(&w.stored_refresh_token().await), RefreshTokenState::Live);
    w.s.run(&["logout", "--yes"]).await.expect_code(0);
    let gone = w.db.query_one("SELECT count(*) FROM skysync_token_sets", &[]).await.unwrap();
    assert_eq!(gone.get::<_, i64>(0), 0);
    w.s.run(&["status"]).await.expect_code(4);
}

/// A `token_store` that is neither `file` nor a postgres:// URL is a configuration error (exit 3)
/// naming the setting, with the password left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_store_is_a_configuration_error() {
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_TOKEN_STORE", Some("mysql://app:Sekrit-Pass@db.example/tokens"));
    let run = s.run(&["token"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("token_store") && run.stderr.contains("postgres://"), "{}", run.stderr);
    assert!(!run.stderr.contains("Sekrit-Pass"), "{}", run.stderr);
}

/// `export` hands over only a token file: a PostgreSQL store is shared by several hosts, so it is
/// refused (exit 2, nothing written, the row untouched) unless `--copy` asks for a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_to_hand_over_a_postgres_store_but_copies_on_request() {
    let w = world().await;
    w.s.set_env("SKYSYNC_TOKEN_STORE", None);
    let tokens = w.s.minted_tokens(|_| {});
    w.s.seed(tokens.clone()).await;
    w.s.run(&["token-store", "migrate", "--to", &w.pg.url()]).await.expect_code(0);
    w.s.set_env("SKYSYNC_TOKEN_STORE", Some(&w.pg.url()));
    let generation = w.generation().await;

    let file = w.s.home().join("bundle.json");
    let refused = w.s.run(&["export", file.to_str().unwrap()]).await;
    refused.expect_code(2);
    assert!(refused.stderr.contains("token-store migrate --to file"), "{}", refused.stderr);
    assert!(!file.exists(), "nothing was written");
    assert_eq!(w.generation().await, generation, "the row is untouched");

    let copied = w.s.run(&["export", "--copy", file.to_str().unwrap()]).await;
    copied.expect_code(0);
    let bundle = std::fs::read_to_string(&file).expect("the copy");
    assert!(bundle.contains(tokens.refresh_token.secret()), "the copy carries the stored refresh token");
    w.s.run(&["token"]).await.expect_code(0);
}
