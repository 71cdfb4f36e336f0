//! Credentials never leave for another host through `skysync sync`, black-box: a page whose
//! `next_link` names another host, and an API call answered with a redirect to another host. A
//! second listener on 127.0.0.1 stands for the other host and records whatever reaches it; the run
//! fails with exit code 1 and the database keeps the bookmark it had.

use std::sync::{Arc, Mutex};

use skysync_cli::sim::{Fault, SimConfig};
use skysync_cli::sink::SinkSpec;
use skysync_core::sync::Bookmark;
use skysync_tests::cli::Skysync;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::sync::Fixture;

/// Another host: a listener that records each request's head and answers an empty list page (so
/// a client that wrongly followed a link finishes instead of hanging).
struct OtherHost {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl OtherHost {
    async fn start() -> OtherHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                let body = r#"{"count":0,"value":[]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        OtherHost { port, seen }
    }

    /// Every request that reached this host since the last call. The child has exited, so any connection it opened
    /// has been accepted; wait for the accept loop to have logged it through a fresh connection
    /// of our own (served in order, after any earlier one).
    async fn requests(&self) -> Vec<String> {
        let mut probe = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        probe.write_all(b"GET /probe HTTP/1.1\r\nhost: probe\r\n\r\n").await.unwrap();
        let mut answer = Vec::new();
        probe.read_to_end(&mut answer).await.unwrap();
        let mut seen = std::mem::take(&mut *self.seen.lock().unwrap());
        assert!(seen.pop().is_some_and(|r| r.starts_with("GET /probe")), "the probe is logged last");
        seen
    }
}

/// A world with one finished sync of `gifts`, and that sync's bookmark.
async fn synced_world() -> (Skysync, Fixture, Bookmark) {
    let sk = Skysync::with_sim(SimConfig { records: 5, ..SimConfig::default() }).await;
    sk.seed(sk.minted_tokens(|_| {})).await;
    sk.run(&["sync", "gifts", "--page-size", "50"]).await.expect_code(0);
    let db = Fixture::at(SinkSpec::Sqlite(sk.data_dir().join("skysync.db")));
    let bookmark = db.bookmark("gifts").await.expect("a bookmark after the first sync");
    (sk, db, bookmark)
}

fn secrets(sk: &Skysync) -> Vec<String> {
    let mut s = vec![sk.stored_access_token()];
    s.extend(sk.env_value("SKYSYNC_SUBSCRIPTION_KEY"));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_a_next_link_to_another_host_and_keeps_its_bookmark() {
    // An empty page (the chain's end, whose link the next run would start from) and a page with
    // a record (whose link this run would follow at once).
    let pages = [
        serde_json::json!({"count": 0, "value": []}),
        serde_json::json!({"count": 1, "value": [{"id": "9001", "date_modified": "2030-01-01T00:00:00Z"}]}),
    ];
    for mut page in pages {
        let (sk, db, before) = synced_world().await;
        let other = OtherHost::start().await;
        let foreign = format!("http://127.0.0.1:{}/gift/v1/gifts?limit=50&sort_token=stolen", other.port);
        page["next_link"] = foreign.clone().into();
        let body = page.to_string();
        sk.sim.fail_next_api(1, Fault::Raw { status: 200, content_type: "application/json".into(), body });
        let run = sk.run(&["sync", "gifts", "--page-size", "50"]).await;
        run.expect_code(1);
        let shown = format!("127.0.0.1:{}", other.port);
        assert!(run.stderr.contains(&shown), "names the other host ({page}): {}", run.stderr);
        assert!(!run.stderr.contains("stolen"), "query values are not echoed: {}", run.stderr);
        let reached = other.requests().await;
        assert!(reached.is_empty(), "nothing reached the other host ({page}): {reached:?}");
        assert_eq!(db.bookmark("gifts").await.as_ref(), Some(&before), "the bookmark is unchanged ({page})");
        // The next run does not start from a foreign link either: it succeeds from the old bookmark.
        sk.run(&["sync", "gifts", "--page-size", "50"]).await.expect_code(0);
        assert!(other.requests().await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_does_not_follow_a_redirect_to_another_host() {
    for status in [301, 302, 307, 308] {
        let (sk, db, before) = synced_world().await;
        let other = OtherHost::start().await;
        let location = format!("http://127.0.0.1:{}/gift/v1/gifts?limit=50", other.port);
        sk.sim.fail_next_api(1, Fault::Redirect { status, location });
        let run = sk.run(&["sync", "gifts", "--page-size", "50"]).await;
        run.expect_code(1);
        assert!(run.stderr.contains(&status.to_string()), "names the status: {}", run.stderr);
        let reached = other.requests().await;
        assert!(reached.is_empty(), "HTTP {status}: nothing reached the other host: {reached:?}");
        for secret in secrets(&sk) {
            assert!(!reached.iter().any(|r| r.contains(&secret)));
        }
        assert_eq!(db.bookmark("gifts").await.as_ref(), Some(&before), "HTTP {status}: the bookmark is unchanged");
    }
}
