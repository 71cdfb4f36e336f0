//! The loopback listeners (issue 9): both loopback addresses or none, the `Host` header against
//! DNS rebinding, the callback page's headers, and no symlinks out of the consent page directory.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use skysync_cli::sim::SimConfig;
use skysync_tests::cli::Skysync;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw HTTP/1.1 GET with this `Host` header: the lower-cased head and the body.
async fn raw_get(addr: SocketAddr, target: &str, host: &str) -> (String, String) {
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    conn.read_to_end(&mut reply).await.unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").expect("a complete head");
    (head.to_ascii_lowercase(), body.to_owned())
}

fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

async fn sim_for_any_loopback() -> Skysync {
    Skysync::with_sim(SimConfig { records: 10, allow_any_loopback_redirect: true, ..SimConfig::default() }).await
}

#[tokio::test]
async fn login_stops_at_once_when_either_loopback_address_is_taken() {
    assert!(has_ipv6_loopback(), "this test needs ::1 (the test machine has IPv6 on loopback)");
    let s = sim_for_any_loopback().await;
    for squat in [SocketAddr::from((Ipv6Addr::LOCALHOST, 0)), SocketAddr::from((Ipv4Addr::LOCALHOST, 0))] {
        // Another local user listening on one of the two addresses `localhost` may mean.
        let squatter = std::net::TcpListener::bind(squat).unwrap();
        let port = squatter.local_addr().unwrap().port();
        s.set_env("SKYSYNC_REDIRECT_URI", Some(&format!("http://localhost:{port}/callback")));
        let run = s.run(&["login", "--timeout", "30"]).await;
        run.expect_code(1);
        let addr = SocketAddr::new(squat.ip(), port).to_string();
        assert!(run.stderr.contains(&addr) && run.stderr.contains("in use"), "{squat}: {}", run.stderr);
        assert!(run.stderr.contains("--manual") && run.stderr.contains(&format!("port {port}")), "{}", run.stderr);
        assert!(!run.stderr.contains("timed out"), "it waited instead of stopping: {}", run.stderr);
    }
}

#[tokio::test]
async fn login_answers_only_its_own_host_names_and_its_page_sends_no_referrer() {
    let s = sim_for_any_loopback().await;
    s.set_env("SKYSYNC_REDIRECT_URI", Some("http://localhost:0/callback"));
    let (child, authorize, stderr) = s.start_login(&["login", "--timeout", "60"]).await;
    let port = Skysync::redirect_of(&authorize).port().expect("the bound port");
    let redirect = s.consent(&authorize).await;
    let target = format!("{}?{}", redirect.path(), redirect.query().unwrap());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));

    // A page on another site, rebinding its name to 127.0.0.1, gets nothing, and the login goes on.
    for host in [format!("evil.example:{port}"), format!("localhost:{}", port + 1), "localhost".into()] {
        let (head, body) = raw_get(addr, &target, &host).await;
        assert!(head.starts_with("http/1.1 421"), "{host}: {head}");
        assert!(!body.contains("connected"), "{host}: {body}");
    }
    let (head, body) = raw_get(addr, &target, &format!("localhost:{port}")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.contains("skysync is connected"), "{body}");
    for h in ["content-security-policy: default-src 'none'", "cache-control: no-store", "referrer-policy: no-referrer"]
    {
        assert!(head.contains(h), "{h} missing: {head}");
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = stderr.await.unwrap();
    assert!(out.status.success(), "login failed: {stderr}");
    assert!(s.token_file().exists());
}

fn consent_page_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("dist");
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>page</title>").unwrap();
    std::fs::write(dir.join("pkg").join("skysync_web_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    dir
}

#[tokio::test]
async fn consent_page_follows_no_symlink_out_of_its_directory_and_checks_the_host() {
    let root = tempfile::tempdir().unwrap();
    let dir = consent_page_dir(root.path());
    std::fs::write(root.path().join("outside.txt"), "outside secret").unwrap();
    std::fs::write(dir.join("real.js"), "export {};").unwrap();
    std::os::unix::fs::symlink(root.path().join("outside.txt"), dir.join("leak.js")).unwrap();
    std::os::unix::fs::symlink(root.path(), dir.join("up")).unwrap();
    std::os::unix::fs::symlink(dir.join("real.js"), dir.join("alias.js")).unwrap();
    let (addr, server) = skysync_cli::consent_page::serve(&dir, 0).await.unwrap();
    let host = format!("localhost:{}", addr.port());

    for target in ["/leak.js", "/up/outside.txt"] {
        let (head, body) = raw_get(addr, target, &host).await;
        assert!(head.starts_with("http/1.1 404"), "{target}: {head}");
        assert!(!body.contains("secret"), "{target} leaked: {body}");
    }
    // A link that stays inside the page is fine.
    let (head, body) = raw_get(addr, "/alias.js", &host).await;
    assert!(head.starts_with("http/1.1 200") && body.contains("export"), "{head}");

    let (head, _) = raw_get(addr, "/callback", &format!("rebound.example:{}", addr.port())).await;
    assert!(head.starts_with("http/1.1 421"), "{head}");
    for ok in [host.clone(), format!("127.0.0.1:{}", addr.port()), format!("[::1]:{}", addr.port())] {
        let (head, _) = raw_get(addr, "/callback", &ok).await;
        assert!(head.starts_with("http/1.1 200"), "{ok}: {head}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn consent_page_refuses_to_serve_when_ipv6_loopback_is_taken() {
    assert!(has_ipv6_loopback(), "this test needs ::1 (the test machine has IPv6 on loopback)");
    let root = tempfile::tempdir().unwrap();
    let dir = consent_page_dir(root.path());
    let squatter = std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    let port = squatter.local_addr().unwrap().port();
    let err = skysync_cli::consent_page::serve(&dir, port).await.expect_err("must not serve on half of localhost");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("[::1]:{port}")) && msg.contains("in use"), "{msg}");
}
