//! Process helpers for the reliability tests: signals, polling, and the token file's state.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// Sends signal `name` (`TERM`, `INT`, `HUP`, `KILL`) to process `pid` with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status =
        std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("running kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Polls `check` every 5 ms until it returns true; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let polled = tokio::time::timeout(limit, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out after {limit:?} waiting until {what}");
}

/// Whether another process holds the exclusive lock on `path` (tries it without waiting).
pub fn is_locked(path: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(path) else { return false };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(e)) => panic!("try_lock {}: {e}", path.display()),
    }
}

/// Parses a token file (or rescue file) the way a reader must always be able to: a complete
/// skysync envelope with a refresh token. Returns the envelope.
pub fn parse_token_file(path: &Path) -> Result<serde_json::Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not JSON ({e})", path.display()))?;
    if v["format"] != "skysync-tokens" || !v["tokens"]["refresh_token"].is_string() || !v["generation"].is_u64() {
        return Err(format!("{} is not a complete token file", path.display()));
    }
    Ok(v)
}

/// Files in `dir` whose names start with `prefix`.
pub fn files_starting_with(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The permission bits of `path`.
#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// A small seeded generator for kill delays and command choice (reproducible from the seed).
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}
