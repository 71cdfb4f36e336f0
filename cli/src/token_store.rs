//! The token file: one profile's [`TokenSet`] in `<data_dir>/tokens.json`.
//!
//! - The directory is 0700 and the file 0600; either being open to other users is refused with
//!   the `chmod` that fixes it, as ssh does for private keys.
//! - Writes happen under the exclusive lock on `tokens.lock` (callers take it with
//!   [`TokenStore::lock`] first; the session does, and so do `login` and `import`). Each write
//!   re-reads the file to check the generation, keeps the current file as `tokens.json.bak`
//!   (a hard link, so it costs nothing), writes a temp file in the same directory, fsyncs it,
//!   renames it over `tokens.json` and fsyncs the directory. A crash or a full disk at any point
//!   leaves a complete old or new file.
//! - The backup is read only when the main file is unreadable, with a warning. A corrupt file is
//!   an error naming both files, never an empty store.
//! - With a key configured, every file's bytes go through [`AtRest`] (see
//!   [`crate::token_crypto`]): sealed on write, opened on read. A missing or wrong key is
//!   [`StoreError::Key`], never "corrupt", and never falls back to the backup.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skysync_core::env::{Clock, SystemClock};
use skysync_core::secret::redact_quoted;
use skysync_core::store::{StoreError, StoreLock, TokenStore, Versioned};
use skysync_core::token_set::TokenSet;
use time::OffsetDateTime;

use crate::token_crypto::{AtRest, OpenError};

/// The token file's name.
pub const TOKENS_FILE: &str = "tokens.json";
/// The previous token file.
pub const BACKUP_FILE: &str = "tokens.json.bak";
/// The lock file.
pub const LOCK_FILE: &str = "tokens.lock";
/// The `format` marker of the token file.
pub const STORE_FORMAT: &str = "skysync-tokens";
/// The token file version this build writes.
pub const STORE_VERSION: u32 = 1;
/// A token file is a few KiB; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u32,
    generation: u64,
    #[serde(with = "time::serde::rfc3339")]
    saved_at: OffsetDateTime,
    tokens: TokenSet,
}

/// Why one file could not be read.
enum ReadError {
    Insecure(String),
    Unreadable(String),
    Key(String),
}

/// A [`TokenStore`] in a private directory. See the module docs.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    dir: PathBuf,
    at_rest: AtRest,
}

impl FileTokenStore {
    /// A store in `dir` (created 0700 on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, at_rest: AtRest::Plaintext }
    }

    /// The same store, its files kept as `at_rest` says (encrypted with a key, or plaintext).
    pub fn with_at_rest(self, at_rest: AtRest) -> Self {
        Self { at_rest, ..self }
    }

    /// How the files are kept at rest.
    pub fn at_rest(&self) -> &AtRest {
        &self.at_rest
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `tokens.json`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(TOKENS_FILE)
    }

    /// `tokens.json.bak`.
    pub fn backup_path(&self) -> PathBuf {
        self.dir.join(BACKUP_FILE)
    }

    /// `tokens.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    fn check_dir(&self) -> Result<bool, StoreError> {
        match std::fs::metadata(&self.dir) {
            Ok(meta) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = meta.permissions().mode() & 0o777;
                    if mode & 0o077 != 0 {
                        return Err(StoreError::Insecure(format!(
                            "the token directory {} is accessible by other users (mode {mode:o}); run `chmod 700 {}`",
                            self.dir.display(),
                            self.dir.display()
                        )));
                    }
                }
                let _ = meta;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Io(format!("cannot read the token directory {}: {e}", self.dir.display()))),
        }
    }

    fn ensure_dir(&self) -> Result<(), StoreError> {
        if self.check_dir()? {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(|e| StoreError::Io(format!("cannot create the token directory {}: {e}", self.dir.display())))?;
        self.check_dir().map(|_| ())
    }

    fn read_file(&self, path: &Path) -> Result<Option<Envelope>, ReadError> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ReadError::Unreadable(format!("cannot open it: {e}"))),
        };
        let meta = file.metadata().map_err(|e| ReadError::Unreadable(format!("cannot stat it: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(ReadError::Insecure(format!(
                    "the token file {} is accessible by other users (mode {mode:o}); run `chmod 600 {}` (and consider `skysync renew` if others may have read it)",
                    path.display(),
                    path.display()
                )));
            }
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(ReadError::Unreadable(format!("it is {} bytes, too large to be a token file", meta.len())));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| ReadError::Unreadable(format!("cannot read it: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ReadError::Unreadable("it is empty (truncated)".into()));
        }
        let bytes = self.at_rest.open(path, bytes).map_err(|e| match e {
            OpenError::Key(m) => ReadError::Key(m),
            OpenError::Unreadable(m) => ReadError::Unreadable(m),
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ReadError::Unreadable(format!("it is not valid JSON ({})", redact_quoted(&e.to_string()))))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(STORE_FORMAT) {
            return Err(ReadError::Unreadable(format!(
                "it is not a skysync token file (no \"format\": \"{STORE_FORMAT}\")"
            )));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(STORE_VERSION) => {}
            Some(v) => {
                return Err(ReadError::Unreadable(format!(
                    "it has version {v}, and this skysync reads version {STORE_VERSION}; upgrade skysync"
                )));
            }
            None => return Err(ReadError::Unreadable("it has no numeric \"version\"".into())),
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| ReadError::Unreadable(format!("it is incomplete ({})", redact_quoted(&e.to_string()))))
    }

    /// The current envelope and whether it came from the backup.
    fn read_current(&self) -> Result<Option<(Envelope, bool)>, StoreError> {
        if !self.check_dir()? {
            return Ok(None);
        }
        let main = self.path();
        let backup = self.backup_path();
        let main_problem = match self.read_file(&main) {
            Ok(Some(env)) => return Ok(Some((env, false))),
            Ok(None) => None,
            Err(ReadError::Insecure(m)) => return Err(StoreError::Insecure(m)),
            Err(ReadError::Key(m)) => return Err(StoreError::Key(m)),
            Err(ReadError::Unreadable(m)) => Some(m),
        };
        match self.read_file(&backup) {
            Ok(Some(env)) => {
                tracing::warn!(
                    "the token file {} is {}; using the backup {} (saved {})",
                    main.display(),
                    main_problem.as_deref().unwrap_or("missing"),
                    backup.display(),
                    crate::output::timestamp(env.saved_at)
                );
                Ok(Some((env, true)))
            }
            Ok(None) => match main_problem {
                None => Ok(None),
                Some(m) => Err(StoreError::Corrupt(format!(
                    "the token file {} is unreadable: {m}; there is no backup ({}). Restore the file, or run `skysync login` to consent again",
                    main.display(),
                    backup.display()
                ))),
            },
            Err(ReadError::Insecure(m)) => Err(StoreError::Insecure(m)),
            Err(ReadError::Key(m)) => Err(StoreError::Key(m)),
            Err(ReadError::Unreadable(b)) => Err(StoreError::Corrupt(format!(
                "the token file {} is {}, and the backup {} is unreadable too: {b}. Restore one of them, or run `skysync login` to consent again",
                main.display(),
                main_problem.map(|m| format!("unreadable: {m}")).unwrap_or_else(|| "missing".into()),
                backup.display()
            ))),
        }
    }

    fn write_failed(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io(format!(
            "could not write the token file {} ({what}: {e}); the previous token file is unchanged",
            self.path().display()
        ))
    }

    /// Writes `tokens` as `generation`, first keeping the current file as the backup when
    /// `keep_backup`. The caller holds the lock.
    fn write(&self, tokens: &TokenSet, generation: u64, keep_backup: bool) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let envelope = Envelope {
            format: STORE_FORMAT.into(),
            version: STORE_VERSION,
            generation,
            saved_at: SystemClock.now(),
            tokens: tokens.clone(),
        };
        let mut json = serde_json::to_vec_pretty(&envelope).map_err(|e| self.write_failed("serializing", e))?;
        json.push(b'\n');
        let json = self.at_rest.seal(json).map_err(StoreError::Key)?;
        let main = self.path();
        if keep_backup {
            self.keep_backup(&main).map_err(|e| self.write_failed("keeping the backup", e))?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".tokens.")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| self.write_failed("creating a temporary file", e))?;
        tmp.write_all(&json).map_err(|e| self.write_failed("writing", e))?;
        tmp.as_file().sync_all().map_err(|e| self.write_failed("syncing", e))?;
        tmp.persist(&main).map_err(|e| self.write_failed("renaming", e.error))?;
        sync_dir(&self.dir).map_err(|e| self.write_failed("syncing the directory", e))?;
        tracing::debug!(generation, file = %main.display(), "saved tokens");
        Ok(())
    }

    fn keep_backup(&self, main: &Path) -> std::io::Result<()> {
        let staging = self.dir.join(".tokens.json.bak.tmp");
        let _ = std::fs::remove_file(&staging);
        if std::fs::hard_link(main, &staging).is_err() {
            // No hard links on this file system: copy and sync instead.
            let copied = (|| {
                let mut f = OpenOptions::new().write(true).create_new(true).mode_private().open(&staging)?;
                f.write_all(&std::fs::read(main)?)?;
                f.sync_all()
            })();
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&staging);
                return Err(e);
            }
        }
        let renamed = std::fs::rename(&staging, self.backup_path());
        // rename(2) does nothing when both names already link the same file (a retried save):
        // the staging name must not linger either way.
        let _ = std::fs::remove_file(&staging);
        renamed
    }

    /// Saves `tokens` whatever is stored (a fresh consent), keeping a readable current file as the
    /// backup and moving an unreadable one aside. The caller holds [`TokenStore::lock`].
    pub async fn replace(&self, tokens: &TokenSet) -> Result<u64, StoreError> {
        let (found, keep) = match self.read_current() {
            Ok(Some((env, from_backup))) => (env.generation, !from_backup),
            Ok(None) => (0, false),
            Err(StoreError::Corrupt(m)) => {
                let aside = self.dir.join("tokens.json.corrupt");
                if std::fs::rename(self.path(), &aside).is_ok() {
                    tracing::warn!("moved the unreadable token file to {} ({m})", aside.display());
                }
                (0, false)
            }
            Err(e) => return Err(e),
        };
        let generation = found + 1;
        self.write(tokens, generation, keep)?;
        Ok(generation)
    }

    /// Removes the token file and its backup. Returns whether there was anything to remove.
    pub async fn remove(&self) -> Result<bool, StoreError> {
        let mut removed = false;
        for path in [self.path(), self.backup_path(), self.dir.join(".tokens.json.bak.tmp")] {
            match std::fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io(format!("cannot remove {}: {e}", path.display()))),
            }
        }
        if removed {
            let _ = sync_dir(&self.dir);
        }
        Ok(removed)
    }
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600);
        self
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    let _ = dir;
    Ok(())
}

#[async_trait::async_trait]
impl TokenStore for FileTokenStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        Ok(self.read_current()?.map(|(env, _)| Versioned { tokens: env.tokens, generation: env.generation }))
    }

    /// The caller holds the lock (see the module docs).
    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        let current = self.read_current()?;
        let found = current.as_ref().map(|(env, _)| env.generation);
        if found != expected {
            return Err(StoreError::Conflict { expected, found });
        }
        let keep = current.as_ref().is_some_and(|(_, from_backup)| !from_backup);
        let generation = found.unwrap_or(0) + 1;
        self.write(tokens, generation, keep)?;
        Ok(generation)
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        self.ensure_dir()?;
        let path = self.lock_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode_private()
            .open(&path)
            .map_err(|e| StoreError::Io(format!("cannot open the lock file {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => return Ok(StoreLock::new(Box::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::debug!(file = %path.display(), "waiting for another skysync process to release the token lock");
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io(format!("cannot lock {}: {e}", path.display())));
            }
        }
        let locked = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| StoreError::Io(format!("lock task failed: {e}")))?
            .map_err(|e| StoreError::Io(format!("cannot lock {}: {e}", path.display())))?;
        Ok(StoreLock::new(Box::new(locked)))
    }
}
