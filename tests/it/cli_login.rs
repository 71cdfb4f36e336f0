//! `skysync login` through the loopback listener and by paste.

use skysync_tests::cli::Skysync;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_loopback_listener() {
    let s = Skysync::start().await;
    let (child, authorize, stderr) = s.start_login(&["login", "--no-browser", "--timeout", "30"]).await;
    assert!(authorize.as_str().starts_with(s.sim.authorize_url().as_str()), "{authorize}");
    let query: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    assert!(query.iter().any(|(k, v)| k == "code_challenge_method" && v == "S256"));
    assert!(query.iter().any(|(k, _)| k == "state"));

    let callback = s.consent(&authorize).await;
    let redirect = Skysync::redirect_of(&authorize);
    assert_ne!(redirect.port(), Some(0), "port 0 is configured; the URL carries the port bound");
    assert_eq!(callback.as_str().split('?').next(), Some(redirect.as_str()));
    // The browser lands on the listener, which answers with a page saying it may close.
    let page = reqwest::get(callback.clone()).await.expect("callback reachable");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("You may close this window"));

    let run = s.finish_login(child, stderr).await;
    run.expect_code(0);
    assert!(run.stdout.contains("Sam Simulator <sim.user@example.org>"), "{}", run.stdout);
    assert!(run.stdout.contains("Simulated Sandbox Environment (p-simEnvironment0000000001)"));
    assert!(run.stdout.contains("Refresh token: expires"));
    assert_eq!(s.sim.stats().token_authorization_code, 1);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file_mode = std::fs::metadata(s.token_file()).unwrap().permissions().mode() & 0o777;
        let dir_mode = std::fs::metadata(s.data_dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!((file_mode, dir_mode), (0o600, 0o700));
    }
    // The code was used: a status now reads the stored consent.
    s.run(&["status"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_manual_reads_the_pasted_redirect() {
    let s = Skysync::start().await;
    let (mut child, authorize, stderr) = s.start_login(&["login", "--manual", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    // Nobody listens: paste the URL the browser ended on.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).await.unwrap();
    drop(stdin);
    let run = s.finish_login(child, stderr).await;
    run.expect_code(0);
    assert!(run.stderr.contains("paste"), "{}", run.stderr);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
    assert!(!s.stored_refresh_token().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_manual_rejects_a_redirect_with_another_state() {
    let s = Skysync::start().await;
    let (mut child, authorize, stderr) = s.start_login(&["login", "--manual", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    let forged = callback.as_str().replace("state=", "state=x");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(format!("{forged}\n").as_bytes()).await.unwrap();
    drop(stdin);
    let run = s.finish_login(child, stderr).await;
    run.expect_code(1);
    assert!(run.stderr.contains("state does not match"), "{}", run.stderr);
    assert_eq!(s.sim.stats().token_calls, 0);
    assert!(!s.token_file().exists());
}

/// A redirect to the listener whose `state` is not this login's is refused (400) without
/// exchanging its code, and the listener keeps waiting for the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_listener_refuses_a_forged_state_and_waits_for_the_real_redirect() {
    let s = Skysync::start().await;
    let (child, authorize, stderr) = s.start_login(&["login", "--no-browser", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { format!("forged{v}") } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    assert!(pairs.iter().any(|(k, _)| k == "state"), "the redirect carries a state: {callback}");
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let page = reqwest::get(forged).await.expect("listener reachable");
    assert_eq!(page.status().as_u16(), 400, "a forged state is refused");
    assert_eq!(s.sim.stats().token_calls, 0, "the code of a forged redirect is not exchanged");
    assert!(!s.token_file().exists());

    let page = reqwest::get(callback).await.expect("listener still reachable");
    assert_eq!(page.status().as_u16(), 200, "the real redirect still lands");
    let run = s.finish_login(child, stderr).await;
    run.expect_code(0);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_times_out_with_a_clear_message() {
    let s = Skysync::start().await;
    let run = s.run(&["login", "--no-browser", "--timeout", "1"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("timed out after 1s"), "{}", run.stderr);
    assert!(run.stderr.contains("--manual"));
    assert!(!s.token_file().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reports_denied_consent() {
    let s = Skysync::start().await;
    s.sim.set_deny_consent(true);
    let (child, authorize, stderr) = s.start_login(&["login", "--no-browser", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    let page = reqwest::get(callback).await.unwrap();
    assert_eq!(page.status().as_u16(), 400);
    let run = s.finish_login(child, stderr).await;
    run.expect_code(1);
    assert!(run.stderr.contains("access_denied"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_redirect_port_busy_says_what_to_do_before_showing_a_url() {
    let s = Skysync::start().await;
    // The test holds the port all along (bound first, then named), so it is busy for certain.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    s.set_env("SKYSYNC_REDIRECT_URI", Some(&format!("http://127.0.0.1:{port}/callback")));
    let run = s.run(&["login", "--no-browser", "--timeout", "30"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains(&format!("port {port} is already in use")), "{}", run.stderr);
    assert!(
        run.stderr.contains("skysync login --manual") && run.stderr.contains("SKYSYNC_REDIRECT_URI"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("http")),
        "no URL to a consent that cannot return: {}",
        run.stderr
    );
    assert_eq!(s.sim.stats().token_calls, 0);
}

/// `localhost` may resolve to `::1` first in the browser: the listener answers there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_listens_on_both_loopback_families_for_localhost() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        skysync_tests::tier::not_checked("IPv6 loopback");
        return;
    }
    let s = Skysync::start().await;
    s.set_env("SKYSYNC_REDIRECT_URI", Some("http://localhost:0/callback"));
    let (child, authorize, stderr) = s.start_login(&["login", "--no-browser", "--timeout", "30"]).await;
    let callback = s.consent(&authorize).await;
    assert_eq!(callback.host_str(), Some("localhost"));
    assert_ne!(callback.port(), Some(0), "{callback}");
    let mut v6 = callback.clone();
    v6.set_host(Some("[::1]")).unwrap();
    let page = reqwest::get(v6).await.expect("the callback answers on [::1]");
    assert_eq!(page.status().as_u16(), 200);
    let run = s.finish_login(child, stderr).await;
    run.expect_code(0);
    assert_eq!(s.sim.stats().token_authorization_code, 1);
}
