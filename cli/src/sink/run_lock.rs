//! One sync per database at a time.
//!
//! Two overlapping runs on one database (a cron run and a manual `--full`, say) would interleave
//! their pages, bookmarks and staging tables. So a run first takes a per-database lock:
//! - SQLite: an advisory lock (`flock`) on `<db file>.lock` beside the database;
//! - JSONL into a directory: the same on `DIR/sync.lock`;
//! - PostgreSQL: `pg_try_advisory_lock` on a key derived from the database and schema, held by a
//!   session of its own for the whole run.
//!
//! The holder writes who it is (pid, host, since) into the lock file or the `skysync_sync_lock`
//! table, so a run that finds the lock taken can say who has it. A crashed holder never blocks
//! forever: the OS drops a file lock when its process dies, and PostgreSQL drops an advisory lock
//! when its session ends. JSON lines on stdout keep no state and take no lock.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::OffsetDateTime;

use super::{JsonlOut, PgSink, SinkError, SinkSpec, format_ts};

/// Name of the lock file in a JSONL output directory.
pub const JSONL_LOCK_FILE: &str = "sync.lock";

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(200);

/// Who holds (or last held) the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder.
    pub host: String,
    /// When it took the lock (UTC).
    pub since: String,
}

impl LockHolder {
    /// This process, taking the lock at `now`.
    pub fn me(now: OffsetDateTime) -> Self {
        LockHolder { pid: std::process::id(), host: host_name(), since: format_ts(now).unwrap_or_default() }
    }

    fn to_text(&self) -> String {
        format!("pid={}\nhost={}\nsince={}\n", self.pid, self.host, self.since)
    }

    fn from_text(text: &str) -> Option<Self> {
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('='))).map(str::trim)
        };
        Some(LockHolder {
            pid: field("pid")?.parse().ok()?,
            host: field("host")?.to_owned(),
            since: field("since")?.to_owned(),
        })
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}, host {}, since {}", self.pid, self.host, self.since)
    }
}

/// The host name, for the holder record (no libc call: `unsafe` is forbidden here).
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _held: Held,
}

#[derive(Debug)]
enum Held {
    /// The open, locked file (closing it releases the lock).
    File { _file: File },
    /// The session holding the advisory lock (ending it releases the lock).
    Postgres { _session: Box<PgSink> },
    /// Nothing to lock (JSON lines on stdout).
    Nothing,
}

/// Where the lock of a sink lives, for messages.
pub fn lock_location(spec: &SinkSpec) -> Option<String> {
    match spec {
        SinkSpec::Sqlite(db) => Some(sqlite_lock_path(db).display().to_string()),
        SinkSpec::Jsonl(JsonlOut::Dir(dir)) => Some(dir.join(JSONL_LOCK_FILE).display().to_string()),
        SinkSpec::Postgres { .. } => Some("a PostgreSQL advisory lock".to_owned()),
        SinkSpec::Jsonl(JsonlOut::Stdout) => None,
    }
}

/// `<db file>.lock`.
pub fn sqlite_lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

/// Takes the sync lock of `spec`, trying again for up to `wait` while another run holds it; then
/// fails with [`SinkError::Busy`] naming the holder. `now` is recorded as when the lock was taken.
pub async fn acquire(spec: &SinkSpec, wait: Duration, now: OffsetDateTime) -> Result<RunLock, SinkError> {
    let deadline = tokio::time::Instant::now() + wait;
    let me = LockHolder::me(now);
    match spec {
        SinkSpec::Sqlite(db) => file_lock(sqlite_lock_path(db), spec, deadline, &me).await,
        SinkSpec::Jsonl(JsonlOut::Dir(dir)) => file_lock(dir.join(JSONL_LOCK_FILE), spec, deadline, &me).await,
        SinkSpec::Jsonl(JsonlOut::Stdout) => Ok(RunLock { _held: Held::Nothing }),
        SinkSpec::Postgres { url, password_file } => {
            let session = PgSink::connect(url, password_file.as_deref()).await?;
            loop {
                match session.try_sync_lock(&me).await? {
                    Ok(()) => return Ok(RunLock { _held: Held::Postgres { _session: Box::new(session) } }),
                    Err(holder) if tokio::time::Instant::now() >= deadline => {
                        return Err(SinkError::Busy { target: spec.describe(), holder });
                    }
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
        }
    }
}

async fn file_lock(
    path: PathBuf,
    spec: &SinkSpec,
    deadline: tokio::time::Instant,
    me: &LockHolder,
) -> Result<RunLock, SinkError> {
    let io = |action: &str| {
        let path = path.clone();
        let action = action.to_owned();
        move |source| SinkError::Io { path, action, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The lock may be the first thing a run creates beside donor data: private, like the data.
        super::file_mode::private_umask();
        std::fs::create_dir_all(parent).map_err(io("creating the directory of the lock file"))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io("opening the sync lock file"))?;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(SinkError::Busy { target: spec.describe(), holder: read_holder(&mut file) });
                }
                tokio::time::sleep(POLL).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("locking the sync lock file")(e)),
        }
    }
    // Holder info is advisory (the lock is the flock): a reader racing this write sees no holder.
    let me = me.to_text();
    file.set_len(0).map_err(io("writing the sync lock file"))?;
    file.rewind().map_err(io("writing the sync lock file"))?;
    file.write_all(me.as_bytes()).map_err(io("writing the sync lock file"))?;
    file.flush().map_err(io("writing the sync lock file"))?;
    Ok(RunLock { _held: Held::File { _file: file } })
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    LockHolder::from_text(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_text_round_trips() {
        let h = LockHolder { pid: 42, host: "db-host".into(), since: "2026-01-01T00:00:00.000000Z".into() };
        assert_eq!(LockHolder::from_text(&h.to_text()), Some(h.clone()));
        assert_eq!(h.to_string(), "pid 42, host db-host, since 2026-01-01T00:00:00.000000Z");
        assert_eq!(LockHolder::from_text(""), None);
    }

    #[test]
    fn sqlite_lock_file_sits_beside_the_database() {
        assert_eq!(sqlite_lock_path(Path::new("/d/skysync.db")), Path::new("/d/skysync.db.lock"));
    }

    #[tokio::test]
    async fn a_second_lock_on_the_same_file_waits_then_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SinkSpec::Sqlite(dir.path().join("x.db"));
        let now = OffsetDateTime::UNIX_EPOCH;
        let held = acquire(&spec, Duration::ZERO, now).await.unwrap();
        match acquire(&spec, Duration::from_millis(300), now).await {
            Err(SinkError::Busy { holder: Some(h), .. }) => assert_eq!(h.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        drop(held);
        acquire(&spec, Duration::ZERO, now).await.unwrap();
    }
}
