//! `skysync export`, black-box against the simulator: the bundle goes out (a new 0600 file or
//! stdout), the profile hands its tokens over (later `token` and `sync` exit 4 naming where they
//! went), `import` elsewhere makes them work there, and `import` back takes them back.
//! `--copy` copies without handing over.

use std::path::{Path, PathBuf};

use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_tests::cli::Skysync;

fn refresh_token_of(bundle: &str) -> String {
    let bundle = TokenBundle::parse(bundle.as_bytes()).expect("the export is a bundle `import` reads");
    match bundle.content {
        BundleContent::RefreshToken { tokens } => tokens.refresh_token.secret().to_owned(),
        other => panic!("a refresh-token bundle, not {other:?}"),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("file exists").permissions().mode() & 0o777
}

/// Asserts that the default profile refuses to use its tokens, naming `to`.
async fn assert_handed_over(s: &Skysync, to: &str) {
    for args in [&["token"][..], &["sync", "gifts", "--page-size", "50"][..]] {
        let run = s.run(args).await;
        run.expect_code(4);
        // `sync` reports on stdout with its summary table, `token` on stderr.
        let said = format!("{}{}", run.stdout, run.stderr);
        assert!(said.contains("handed over to") && said.contains(to), "{args:?}: {said}");
    }
    let run = s.run(&["token"]).await;
    assert!(run.stdout.trim().is_empty(), "no token printed: {}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_hands_over_import_elsewhere_works_and_import_back_takes_them_back() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let stored = s.stored_refresh_token();
    let file: PathBuf = s.home().join("moved.json");

    let run = s.run(&["export", path_str(&file)]).await;
    run.expect_code(0);
    assert!(run.stdout.is_empty(), "nothing on stdout when writing a file: {}", run.stdout);
    assert_eq!(mode(&file), 0o600, "the bundle is private");
    assert_eq!(refresh_token_of(&std::fs::read_to_string(&file).unwrap()), stored);
    assert!(s.data_dir().join("handed-over.json").exists());
    let token_calls = s.sim.stats().token_calls;
    assert_handed_over(&s, path_str(&file)).await;
    assert_eq!(s.sim.stats().token_calls, token_calls, "a handed-over profile never calls /token");

    // Another profile (another host, in real life) imports it, and its refresh token works there.
    s.run(&["--profile", "other", "import", path_str(&file)]).await.expect_code(0);
    s.run(&["--profile", "other", "renew"]).await.expect_code(0);
    let token = s.run(&["--profile", "other", "token"]).await;
    token.expect_code(0);
    assert!(!token.stdout.trim().is_empty());

    // Exported back from there, the bundle is imported over the handed-over profile.
    let back = s.home().join("back.json");
    s.run(&["--profile", "other", "export", path_str(&back)]).await.expect_code(0);
    s.run(&["import", path_str(&back)]).await.expect_code(0);
    assert!(!s.data_dir().join("handed-over.json").exists(), "the import takes the tokens back");
    let token = s.run(&["token"]).await;
    token.expect_code(0);
    assert_ne!(s.stored_refresh_token(), stored, "the rotated refresh token came back");
    s.run(&["--profile", "other", "token"]).await.expect_code(4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_to_stdout_hands_over_to_stdout() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let stored = s.stored_refresh_token();

    let run = s.run(&["export", "-"]).await;
    run.expect_code(0);
    assert_eq!(refresh_token_of(&run.stdout), stored);
    assert!(run.stderr.contains("Handed profile `default`'s tokens over to stdout"), "{}", run.stderr);
    assert_handed_over(&s, "to stdout at ").await;

    // A second export has nothing to hand over.
    let again = s.run(&["export", "-"]).await;
    again.expect_code(4);
    assert!(again.stdout.is_empty(), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_copy_warns_and_keeps_the_profile_working() {
    let s = Skysync::start().await;
    s.seed(s.minted_tokens(|_| {})).await;
    let file = s.home().join("copy.json");

    let run = s.run(&["export", "--copy", path_str(&file)]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("warning: --copy") && run.stderr.contains("only one of them refresh"),
        "{}",
        run.stderr
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(refresh_token_of(&std::fs::read_to_string(&file).unwrap()), s.stored_refresh_token());
    assert!(!s.data_dir().join("handed-over.json").exists());
    s.run(&["token"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_refuses_an_existing_file_and_an_empty_profile_and_hands_nothing_over() {
    let s = Skysync::start().await;
    let file = s.home().join("there.json");
    let nothing = s.run(&["export", path_str(&file)]).await;
    nothing.expect_code(4);
    assert!(!file.exists(), "no tokens, no bundle");

    s.seed(s.minted_tokens(|_| {})).await;
    std::fs::write(&file, "keep me").unwrap();
    let run = s.run(&["export", path_str(&file)]).await;
    run.expect_code(2);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me", "never overwritten");
    s.run(&["token"]).await.expect_code(0);
}
