//! Data files hold donor PII (issue 9): the SQLite database with its WAL and SHM files and the
//! JSONL output are created 0600 whatever the umask; existing files keep their mode; `sync
//! status` warns about files other users can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use skysync_cli::sim::SimConfig;
use skysync_tests::cli::Skysync;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

async fn world() -> Skysync {
    let sk = Skysync::with_sim(SimConfig { records: 20, ..SimConfig::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    sk
}

#[tokio::test]
async fn sqlite_files_are_created_private_and_existing_ones_keep_their_mode() {
    let sk = world().await;
    let dir = sk.home().join("out");
    let db = dir.join("donors.db");
    let db_arg = db.to_str().unwrap().to_owned();
    // A permissive umask, as in many login shells: the files must be private anyway. The
    // shell's `exec` keeps skysync in the same process, so its WAL and SHM files are checked
    // while a second connection (the test's) holds them open.
    let script = format!("umask 022 && exec \"$SKYSYNC\" sync gifts --db '{db_arg}' --page-size 10");
    let out = sk.shell(&script).output().await.unwrap();
    sk.finish(out).expect_code(0);
    assert_eq!(mode(&db), 0o600, "database");
    // Keep the WAL and SHM files alive with an open connection, then sync again.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).unwrap();
    let out = sk.shell(&script).output().await.unwrap();
    sk.finish(out).expect_code(0);
    for suffix in ["-wal", "-shm"] {
        let f = dir.join(format!("donors.db{suffix}"));
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&dir) & 0o077, 0, "a new data directory is private");
    drop(conn);

    // An existing database keeps the mode its owner chose, and `sync status` warns about it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    sk.run(&["sync", "gifts", "--db", &db_arg, "--page-size", "10"]).await.expect_code(0);
    assert_eq!(mode(&db), 0o644);
    let run = sk.run(&["sync", "status", "--db", &db_arg]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("readable by other users") && run.stderr.contains(&db_arg), "{}", run.stderr);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = sk.run(&["sync", "status", "--db", &db_arg]).await;
    assert!(!run.stderr.contains("readable by other users"), "{}", run.stderr);
}

#[tokio::test]
async fn jsonl_output_is_created_private() {
    let sk = world().await;
    let out_dir = sk.home().join("jsonl");
    let script = format!(
        "umask 002 && exec \"$SKYSYNC\" sync gifts funds --format jsonl --out '{}' --page-size 10",
        out_dir.display()
    );
    let out = sk.shell(&script).output().await.unwrap();
    sk.finish(out).expect_code(0);
    let files: Vec<_> = std::fs::read_dir(&out_dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(files.len() >= 3, "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(&out_dir) & 0o077, 0);
    // Keep an owner's choice across the atomic rewrites of the next run.
    let state = out_dir.join("sync_state.json");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = sk.shell(&script).output().await.unwrap();
    sk.finish(out).expect_code(0);
    assert_eq!(mode(&state), 0o640);
    let run = sk.run(&["sync", "status", "--out", out_dir.to_str().unwrap()]).await;
    assert!(run.stderr.contains("sync_state.json is readable by other users"), "{}", run.stderr);
}
