//! A time limit around every end-to-end test: a test that hangs (a lost wake-up, a child that
//! never exits, a server that never answers) fails the run with its name instead of stalling CI.
//!
//! The fixtures ([`crate::cli::Skysync`], the sync and sink fixtures, the browser) hold a
//! [`Deadline`] for as long as their test runs. A watchdog thread checks them every second; one
//! that outlives [`limit`] prints the test's name and aborts the test process (a hung thread
//! cannot be cancelled from outside, and every child is `kill_on_drop` or has its own watchdog).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Overrides the limit, in seconds.
pub const LIMIT_ENV: &str = "SKYSYNC_TEST_TIMEOUT_SECS";

/// Ten minutes unless [`LIMIT_ENV`] says otherwise: far above the slowest test on a loaded
/// two-core machine, far below a CI job's limit.
pub fn limit() -> Duration {
    let secs = std::env::var(LIMIT_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    Duration::from_secs(secs)
}

/// Registered running tests: id → (name, started).
fn running() -> &'static Mutex<HashMap<u64, (String, Instant)>> {
    static RUNNING: OnceLock<Mutex<HashMap<u64, (String, Instant)>>> = OnceLock::new();
    RUNNING.get_or_init(|| {
        let limit = limit();
        std::thread::Builder::new()
            .name("test deadline watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    let late: Vec<String> = running()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .values()
                        .filter(|(_, started)| started.elapsed() > limit)
                        .map(|(name, _)| name.clone())
                        .collect();
                    if !late.is_empty() {
                        let _ = writeln!(
                            std::io::stderr(),
                            "TIMEOUT: {late:?} ran longer than {}s ({LIMIT_ENV} changes the limit); aborting",
                            limit.as_secs()
                        );
                        std::process::abort();
                    }
                }
            })
            .expect("the deadline watchdog starts");
        Mutex::new(HashMap::new())
    })
}

/// The current test's time limit, from now until this is dropped.
#[derive(Debug)]
pub struct Deadline {
    id: u64,
}

impl Deadline {
    /// Starts the clock for the test on this thread.
    // A watchdog over real (wall) time by design: no injected clock can stand in for it.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Deadline {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = std::thread::current().name().unwrap_or("an unnamed test").to_owned();
        running().lock().unwrap_or_else(|p| p.into_inner()).insert(id, (name, Instant::now()));
        Deadline { id }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        running().lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}
