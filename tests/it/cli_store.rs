//! The token file: permissions, corruption, backups.

use skysync_tests::cli::Skysync;

#[cfg(unix)]
fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_file_or_directory_open_to_others_is_refused() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let file = s.token_file();
    chmod(&file, 0o644);
    let run = s.run(&["token"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains(&format!("chmod 600 {}", file.display())), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    chmod(&file, 0o600);
    chmod(&s.data_dir(), 0o755);
    let run = s.run(&["status"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains(&format!("chmod 700 {}", s.data_dir().display())), "{}", run.stderr);
    chmod(&s.data_dir(), 0o700);
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_token_file_without_backup_is_an_error_not_a_reset() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let file = s.token_file();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    for cmd in [&["token"][..], &["status"]] {
        let run = s.run(cmd).await;
        run.expect_code(1);
        assert!(run.stderr.contains(&file.display().to_string()), "{}", run.stderr);
        assert!(run.stderr.contains("unreadable"), "{}", run.stderr);
        assert!(run.stderr.contains("tokens.json.bak"), "{}", run.stderr);
    }
    assert_eq!(std::fs::read(&file).unwrap(), &bytes[..bytes.len() / 2], "the file is left for the user");
    assert_eq!(s.sim.stats().token_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_token_file_falls_back_to_the_backup_with_a_warning() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    // A second save makes the first one the backup.
    s.run(&["renew"]).await.expect_code(0);
    let rotated = s.stored_refresh_token();
    std::fs::write(s.token_file(), b"").unwrap();
    let run = s.run(&["status"]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("using the backup"), "{}", run.stderr);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);
    // The backup is the generation before the rotation; the corrupt main file is not replaced
    // behind the user's back by a read.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.data_dir().join("tokens.json.bak")).unwrap()).unwrap();
    assert_ne!(v["tokens"]["refresh_token"].as_str(), Some(rotated.as_str()));
    assert_eq!(std::fs::read(s.token_file()).unwrap(), b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restores_a_working_session() {
    let s = Skysync::start().await;
    let first = s.minted_tokens(|_| {});
    s.seed(first.clone()).await;
    // Re-importing keeps the previous (still valid) file as the backup.
    s.seed(s.minted_tokens(|_| {})).await;
    std::fs::write(s.token_file(), b"{\"format\":\"skysync-tokens\",\"version\":1,\"gener").unwrap();
    let run = s.run(&["token"]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("using the backup"), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), first.access_token.as_ref().unwrap().secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_removes_tokens_only_with_confirmation() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let refused = s.run(&["logout"]).await;
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("refusing to remove tokens without confirmation; pass --yes"),
        "{}",
        refused.stderr
    );
    assert!(s.token_file().exists());
    let removed = s.run(&["logout", "--yes", "--json"]).await;
    removed.expect_code(0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&removed.stdout).unwrap()["removed"], true);
    assert!(!s.token_file().exists());
    // Scripts get an answer when there was nothing to remove, too.
    let nothing = s.run(&["logout", "--json"]).await;
    nothing.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&nothing.stdout).expect("JSON on stdout");
    assert_eq!((v["profile"].as_str(), v["removed"].as_bool()), (Some("default"), Some(false)));
    assert!(!s.data_dir().join("tokens.json.bak").exists());
    s.run(&["status"]).await.expect_code(4);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_write_leaves_the_old_file_and_says_so() {
    let s = Skysync::start().await;
    let seeded = s.seed_expired_access().await;
    let before = std::fs::read(s.token_file()).unwrap();
    // A 512-byte file size limit makes the token write fail like a full disk would (EFBIG).
    let out = s.shell("trap '' XFSZ; ulimit -f 1; exec \"$SKYSYNC\" token").output().await.unwrap();
    let run = s.finish(out);
    run.expect_code(1);
    assert!(run.stderr.contains("could not save them"), "{}", run.stderr);
    assert!(run.stderr.contains("the previous token file is unchanged"), "{}", run.stderr);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(s.data_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
    // The preserved refresh token still works once the disk has room again.
    s.run(&["token"]).await.expect_code(0);
    assert_eq!(s.stored_refresh_token(), seeded.refresh_token.secret());
}
