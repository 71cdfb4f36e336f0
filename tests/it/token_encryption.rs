//! The token store encrypted at rest (`SKYSYNC_TOKEN_KEY_FILE`, the systemd credential, `token-store
//! rekey`), black-box against the simulator.

use std::path::{Path, PathBuf};

use skysync_core::bundle::BundleContent;
use skysync_tests::cli::Skysync;

/// Makes a key file with `skysync token-store new-key` and returns its path.
async fn new_key(s: &Skysync, name: &str) -> PathBuf {
    let path = s.home().join(name);
    let run = s.run(&["token-store", "new-key", path.to_str().unwrap()]).await;
    run.expect_code(0);
    path
}

fn use_key(s: &Skysync, key: Option<&Path>) {
    s.set_env("SKYSYNC_TOKEN_KEY_FILE", key.map(|k| k.to_str().unwrap()));
}

/// The token file's raw text, and asserts it is an encrypted envelope holding none of `secrets`.
fn assert_encrypted(path: &Path, secrets: &[&str]) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "{} holds a token in plain text:\n{text}", path.display());
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["format"], "skysync-tokens-encrypted", "{text}");
    v
}

fn stored_key_id(path: &Path) -> String {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["key_id"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_token_status_with_an_encrypted_store_keep_no_token_bytes_on_disk() {
    let s = Skysync::start().await;
    let key = new_key(&s, "token.key").await;
    use_key(&s, Some(&key));

    let (child, authorize, stderr) = s.start_login(&["login", "--no-browser", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    reqwest::get(callback).await.expect("callback reachable");
    let run = s.finish_login(child, stderr).await;
    run.expect_code(0);

    let access = s.run(&["token"]).await;
    access.expect_code(0);
    let access = access.stdout.trim().to_owned();
    s.run(&["status"]).await.expect_code(0);
    // Rotate, so a second generation (and the backup) are written encrypted too.
    s.run(&["renew"]).await.expect_code(0);
    let refreshed = s.run(&["token"]).await;
    refreshed.expect_code(0);

    let backup = s.data_dir().join("tokens.json.bak");
    let sealed_main = s.token_file();
    let copies = [s.home().join("main.enc"), s.home().join("bak.enc")];
    std::fs::copy(&sealed_main, &copies[0]).unwrap();
    std::fs::copy(&backup, &copies[1]).unwrap();
    // Decrypt to learn every token the files held, then check the encrypted copies for them.
    s.run(&["token-store", "rekey", "--plaintext"]).await.expect_code(0);
    let mut secrets = vec![access, refreshed.stdout.trim().to_owned()];
    for file in [&sealed_main, &backup] {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        secrets.push(v["tokens"]["refresh_token"].as_str().unwrap().to_owned());
        secrets.push(v["tokens"]["access_token"].as_str().unwrap().to_owned());
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert_encrypted(&copies[0], &secrets);
    assert_encrypted(&copies[1], &secrets);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(s.token_file()).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_key_is_exit_3_and_changes_nothing() {
    let s = Skysync::start().await;
    let key = new_key(&s, "token.key").await;
    use_key(&s, Some(&key));
    s.seed(s.minted_tokens(|_| {})).await;
    let before = std::fs::read(s.token_file()).unwrap();

    // No key configured: the encrypted store is named as such, never "corrupt".
    use_key(&s, None);
    for cmd in [&["status"][..], &["token"], &["renew"]] {
        let run = s.run(cmd).await;
        run.expect_code(3);
        assert!(run.stderr.contains("is encrypted") && run.stderr.contains("SKYSYNC_TOKEN_KEY_FILE"), "{}", run.stderr);
        assert!(!run.stderr.contains("corrupt"), "{}", run.stderr);
    }
    // A login must not replace (or move aside) an encrypted store it cannot read.
    let bundle = s.bundle_file(BundleContent::RefreshToken { tokens: Box::new(s.minted_tokens(|_| {})) });
    let run = s.run(&["import", bundle.to_str().unwrap()]).await;
    run.expect_code(3);

    // Another key.
    let other = new_key(&s, "other.key").await;
    use_key(&s, Some(&other));
    let run = s.run(&["token"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("key id"), "{}", run.stderr);

    // A configured key file that is gone, or open to others.
    use_key(&s, Some(&s.home().join("absent.key")));
    let run = s.run(&["status"]).await;
    run.expect_code(3);
    assert!(run.stderr.contains("absent.key"), "{}", run.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        use_key(&s, Some(&key));
        let run = s.run(&["token"]).await;
        run.expect_code(3);
        assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    assert_eq!(std::fs::read(s.token_file()).unwrap(), before, "nothing on disk changed");
    assert!(!s.data_dir().join("tokens.json.corrupt").exists());
    use_key(&s, Some(&key));
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_ciphertext_falls_back_to_the_backup_like_any_damaged_file() {
    let s = Skysync::start().await;
    let key = new_key(&s, "token.key").await;
    use_key(&s, Some(&key));
    s.seed(s.minted_tokens(|_| {})).await;
    s.run(&["renew"]).await.expect_code(0);
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.token_file()).unwrap()).unwrap();
    let ct = v["ciphertext"].as_str().unwrap();
    let flipped = if ct.starts_with('A') { ct.replacen('A', "B", 1) } else { format!("A{}", &ct[1..]) };
    v["ciphertext"] = flipped.into();
    std::fs::write(s.token_file(), v.to_string()).unwrap();

    let run = s.run(&["status"]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("fails authentication") && run.stderr.contains("backup"), "{}", run.stderr);

    // Both damaged: a clear "unreadable" (exit 1), not a key problem.
    std::fs::copy(s.token_file(), s.data_dir().join("tokens.json.bak")).unwrap();
    let run = s.run(&["status"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("fails authentication"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_store_migrates_on_the_next_save_or_at_once_with_rekey() {
    let s = Skysync::start().await;
    let first = s.minted_tokens(|_| {});
    s.seed(first.clone()).await;
    let key = new_key(&s, "token.key").await;

    // With a key configured, the plaintext store is still read, and the next save encrypts it.
    use_key(&s, Some(&key));
    s.run(&["status"]).await.expect_code(0);
    assert_eq!(s.stored()["format"], "skysync-tokens", "reading does not rewrite");
    let second = s.minted_tokens(|_| {});
    s.seed(second.clone()).await;
    assert_encrypted(&s.token_file(), &[second.refresh_token.secret(), second.access_token.as_ref().unwrap().secret()]);
    // The backup is the previous plaintext file until the next save: `rekey` covers it at once.
    let run = s.run(&["token-store", "rekey", "--new-key-file", key.to_str().unwrap()]).await;
    run.expect_code(0);
    assert_encrypted(&s.data_dir().join("tokens.json.bak"), &[first.refresh_token.secret()]);

    // Explicitly, on another store: `rekey` from plaintext encrypts the file and its backup at once.
    let t = Skysync::start().await;
    let (a, b) = (t.minted_tokens(|_| {}), t.minted_tokens(|_| {}));
    t.seed(a.clone()).await;
    t.seed(b.clone()).await; // a backup exists
    let key = new_key(&t, "token.key").await;
    let run = t.run(&["token-store", "rekey", "--new-key-file", key.to_str().unwrap()]).await;
    run.expect_code(0);
    let secrets = [a.refresh_token.secret(), b.refresh_token.secret(), b.access_token.as_ref().unwrap().secret()];
    assert_encrypted(&t.token_file(), &secrets);
    assert_encrypted(&t.data_dir().join("tokens.json.bak"), &secrets);
    // Until the key is configured the store is refused (exit 3); then it works.
    t.run(&["status"]).await.expect_code(3);
    use_key(&t, Some(&key));
    t.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_moves_every_file_to_the_new_key_and_can_be_rerun() {
    let s = Skysync::start().await;
    let old = new_key(&s, "old.key").await;
    let new = new_key(&s, "new.key").await;
    use_key(&s, Some(&old));
    s.seed(s.minted_tokens(|_| {})).await;
    s.run(&["renew"]).await.expect_code(0);
    let old_id = stored_key_id(&s.token_file());

    let run = s.run(&["token-store", "rekey", "--new-key-file", new.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("SKYSYNC_TOKEN_KEY_FILE"), "{}", run.stderr);
    let new_id = stored_key_id(&s.token_file());
    assert_ne!(new_id, old_id);
    assert_eq!(stored_key_id(&s.data_dir().join("tokens.json.bak")), new_id, "the backup is re-encrypted too");

    // The old key no longer opens the store; the new one does, with the same tokens.
    s.run(&["token"]).await.expect_code(3);
    // A re-run (say after a crash half-way) with the old key still configured is safe.
    s.run(&["token-store", "rekey", "--new-key-file", new.to_str().unwrap()]).await.expect_code(0);
    use_key(&s, Some(&new));
    s.run(&["token"]).await.expect_code(0);

    // A rekey whose current key is wrong changes nothing (exit 3).
    let before = std::fs::read(s.token_file()).unwrap();
    use_key(&s, Some(&old));
    let third = new_key(&s, "third.key").await;
    s.run(&["token-store", "rekey", "--new-key-file", third.to_str().unwrap()]).await.expect_code(3);
    assert_eq!(std::fs::read(s.token_file()).unwrap(), before);

    // And back to plaintext.
    use_key(&s, Some(&new));
    s.run(&["token-store", "rekey", "--plaintext"]).await.expect_code(0);
    use_key(&s, None);
    assert_eq!(s.stored()["format"], "skysync-tokens");
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_can_come_from_a_systemd_credential() {
    let s = Skysync::start().await;
    let creds = s.home().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let key = new_key(&s, "credentials/skysync-token-key").await;
    assert!(key.exists());
    s.set_env("CREDENTIALS_DIRECTORY", Some(creds.to_str().unwrap()));
    let tokens = s.minted_tokens(|_| {});
    s.seed(tokens.clone()).await;
    let v = assert_encrypted(&s.token_file(), &[tokens.refresh_token.secret()]);
    assert_eq!(v["version"], 1);
    s.run(&["token"]).await.expect_code(0);
    // The credential gone (a unit without LoadCredential=): a key problem, exit 3.
    s.set_env("CREDENTIALS_DIRECTORY", None);
    s.run(&["token"]).await.expect_code(3);
    // new-key never overwrites a key.
    s.run(&["token-store", "new-key", key.to_str().unwrap()]).await.expect_code(1);
}
