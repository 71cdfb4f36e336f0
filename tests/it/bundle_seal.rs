//! Sealed bundles, black-box: `skysync import --prepare` prints a link, the bundle is sealed with
//! the core code the consent page runs (`skysync_core::bundle_seal::seal`, the same function the
//! wasm binding calls), and `skysync import` opens it.

use std::path::PathBuf;

use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_core::bundle_seal::{Recipient, seal};
use skysync_core::token_set::TokenSet;
use skysync_tests::cli::Skysync;

/// Runs `import --prepare` (in `profile`, if given) and returns the recipient from its link.
async fn prepare(s: &Skysync, profile: Option<&str>) -> (url::Url, Recipient) {
    let mut args = vec![];
    if let Some(p) = profile {
        args.extend(["--profile", p]);
    }
    args.extend(["import", "--prepare"]);
    let run = s.run(&args).await;
    run.expect_code(0);
    let link = url::Url::parse(run.stdout.trim()).expect("prepare prints the link on stdout");
    let fragment = link.fragment().expect("the recipient is in the fragment");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(fragment.as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).expect(k);
    let recipient = Recipient::parse(&get("skysync-recipient"), &get("skysync-nonce")).expect("valid recipient");
    (link, recipient)
}

/// Seals `content` as the page would and writes it next to the other test files.
fn sealed_file(s: &Skysync, content: BundleContent, recipient: &Recipient, name: &str) -> PathBuf {
    let plain = TokenBundle::new(content, s.sim.now()).to_json();
    let path = s.home().join(name);
    std::fs::write(&path, seal(plain.as_bytes(), recipient).unwrap()).unwrap();
    path
}

fn refresh(tokens: &TokenSet) -> BundleContent {
    BundleContent::RefreshToken { tokens: Box::new(tokens.clone()) }
}

fn import_key(s: &Skysync) -> PathBuf {
    s.data_dir().join("import-key.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_sealed_bundle_imports_once_and_the_key_is_deleted() {
    let s = Skysync::start().await;
    let (link, recipient) = prepare(&s, None).await;
    // The page's address is the redirect URI (where `consent-page` serves it); the key only in the fragment.
    assert_eq!(link.as_str().split('#').next(), s.env_value("SKYSYNC_REDIRECT_URI").as_deref());
    assert!(link.query().is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(import_key(&s)).unwrap().permissions().mode() & 0o777, 0o600);
    }

    let tokens = s.minted_tokens(|_| {});
    let file = sealed_file(&s, refresh(&tokens), &recipient, "sealed.json");
    assert!(!std::fs::read_to_string(&file).unwrap().contains(tokens.refresh_token.secret()));
    let run = s.run(&["import", file.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(!run.stderr.contains("not encrypted"), "{}", run.stderr);
    assert_eq!(s.stored_refresh_token(), tokens.refresh_token.secret());
    assert!(!import_key(&s).exists(), "the one-time key is deleted after use");

    // The same sealed bundle again: the key is gone, so it cannot be opened (a replay).
    let again = s.run(&["import", "--force", file.to_str().unwrap()]).await;
    again.expect_code(1);
    assert!(again.stderr.contains("no import key") && again.stderr.contains("--prepare"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_sealed_to_another_profile_or_prepare_is_refused_and_nothing_changes() {
    let s = Skysync::start().await;
    let (_, other_profile) = prepare(&s, Some("other")).await;
    let (_, first) = prepare(&s, None).await;
    // A second prepare replaces the first key: a bundle from the first link no longer opens.
    let (_, current) = prepare(&s, None).await;
    let tokens = s.minted_tokens(|_| {});

    for (name, recipient, expected) in [
        ("other-profile.json", &other_profile, "sealed for another import key"),
        ("earlier-prepare.json", &first, "sealed for another import key"),
    ] {
        let file = sealed_file(&s, refresh(&tokens), recipient, name);
        let run = s.run(&["import", file.to_str().unwrap()]).await;
        run.expect_code(1);
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
    }
    // The right key, but a nonce from elsewhere: not this prepare step's bundle.
    let rebound = Recipient::parse(&current.public_b64(), "AAAAAAAAAAAAAAAAAAAAAA").unwrap();
    let file = sealed_file(&s, refresh(&tokens), &rebound, "rebound.json");
    let run = s.run(&["import", file.to_str().unwrap()]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("nonce"), "{}", run.stderr);

    assert!(!s.token_file().exists(), "nothing was stored");
    assert!(import_key(&s).exists(), "a refused bundle does not use up the key");
    let good = sealed_file(&s, refresh(&tokens), &current, "good.json");
    s.run(&["import", good.to_str().unwrap()]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_bundles_are_accepted_with_a_warning() {
    let s = Skysync::start().await;
    let tokens = s.minted_tokens(|_| {});
    let file = s.bundle_file(refresh(&tokens));
    let run = s.run(&["import", file.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("not encrypted") && run.stderr.contains("--prepare"), "{}", run.stderr);
    assert_eq!(s.stored_refresh_token(), tokens.refresh_token.secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_bundles_are_bound_to_the_prepare_step() {
    let s = Skysync::start().await;
    let (_, recipient) = prepare(&s, None).await;

    // While a prepare waits, an unsealed code bundle (someone else's consent) is refused unexchanged.
    let plain = s.bundle_file(s.code_bundle().await);
    let run = s.run(&["import", plain.to_str().unwrap()]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("someone else's consent"), "{}", run.stderr);
    // A code bundle bound to another prepare step's nonce is refused too.
    let elsewhere = Recipient::parse(&recipient.public_b64(), "BBBBBBBBBBBBBBBBBBBBBB").unwrap();
    let file = sealed_file(&s, s.code_bundle().await, &elsewhere, "code-elsewhere.json");
    s.run(&["import", file.to_str().unwrap()]).await.expect_code(1);
    assert_eq!(s.sim.stats().token_authorization_code, 0, "no refused code was exchanged");

    // The bound one is exchanged.
    let file = sealed_file(&s, s.code_bundle().await, &recipient, "code.json");
    let run = s.run(&["import", file.to_str().unwrap()]).await;
    run.expect_code(0);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
    assert!(!import_key(&s).exists());
    // With no prepare pending, a plain code bundle is accepted again (with the warning).
    let plain = s.bundle_file(s.code_bundle().await);
    let run = s.run(&["import", "--force", plain.to_str().unwrap()]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("not encrypted"), "{}", run.stderr);
}
