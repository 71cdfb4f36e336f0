//! The file backend (the default): one profile's [`TokenSet`] in `<data_dir>/tokens.json`.
//!
//! - The directory is 0700 and the file 0600; either being open to other users is refused with
//!   the `chmod` that fixes it, as ssh does for private keys.
//! - A token file that is a symbolic link (opened with `O_NOFOLLOW`) or owned by another user is
//!   refused, like one that others can read: whoever controls it controls the refresh token.
//! - Writes happen under the exclusive lock on `tokens.lock` (callers take it with
//!   [`TokenStore::lock`] first; the session does, and so do `login` and `import`). Each write
//!   re-reads the file to check the generation, keeps the last three files as `tokens.json.bak`,
//!   `tokens.json.bak.2` and `tokens.json.bak.3` (the newest is a hard link, so it costs
//!   nothing), writes a temp file in the same directory, fsyncs it, renames it over
//!   `tokens.json` and fsyncs the directory. A crash or a full disk at any point leaves a complete
//!   old or new file, and two imports in a row cannot remove the only working refresh token.
//! - The newest backup is read only when the main file is unreadable, with a warning. A corrupt
//!   file is an error naming both files, never an empty store.
//! - When a rotated token set cannot be saved, [`TokenStore::rescue`] writes it to
//!   `tokens.rescue-<time>-<pid>.json` beside the store (0600, `O_EXCL`, fsynced). The next
//!   process to take the lock adopts it when it is newer than the stored set (and removes it);
//!   until then [`TokenStore::load`] returns it in place of the stale stored set.
//! - Holding the lock opens a [`CriticalSection`]: SIGINT, SIGTERM and SIGHUP wait until the
//!   token call and its save are done.
//! - `exchanged-codes.json` remembers the SHA-256 of every authorization code `import` has sent,
//!   so a bundle is never exchanged twice (a server may revoke the whole grant on a replayed code).
//!
//! For tests, `SKYSYNC_TEST_SAVE_FAULT=KIND:N` lets the first `N` writes of `tokens.json` in a
//! process succeed and fails the later ones as a full (`enospc`) or read-only (`erofs`) disk
//! would; `enospc-all` fails rescue files too.
//! - `handed-over.json` (written by `skysync export` under the lock) says the tokens went to
//!   another holder: [`TokenStore::load`] and [`TokenStore::save`] then fail with
//!   [`StoreError::HandedOver`] naming where and when, so no process here refreshes them again.
//!   [`FileTokenStore::replace`] (a new consent or import) removes it.
//! - With a key configured, every file's bytes (the token file, its backups and rescue files) go
//!   through [`AtRest`] (see [`crate::token_crypto`]): sealed on write, opened on read. A missing
//!   or wrong key is [`StoreError::Key`], never "corrupt", and never falls back to the backup.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use skysync_core::host::{Clock, SystemClock};
use skysync_core::secret::redact_quoted;
use skysync_core::store::{StoreError, StoreLock, TokenStore, Versioned};
use skysync_core::token_set::TokenSet;
use time::OffsetDateTime;

use super::{Envelope, decode_envelope, encode_envelope, is_newer};
use crate::runtime::CriticalSection;
use crate::token_crypto::{AtRest, OpenError};

/// The token file's name.
pub const TOKENS_FILE: &str = "tokens.json";
/// The previous token file (older ones are `tokens.json.bak.2` and `tokens.json.bak.3`).
pub const BACKUP_FILE: &str = "tokens.json.bak";
/// How many previous token files are kept.
pub const BACKUP_GENERATIONS: usize = 3;
/// Rescue files are `tokens.rescue-<time>-<pid>.json`.
const RESCUE_PREFIX: &str = "tokens.rescue-";
const RESCUE_SUFFIX: &str = ".json";
/// The hashes of authorization codes already sent.
pub const USED_CODES_FILE: &str = "exchanged-codes.json";
/// How many code hashes are remembered.
const USED_CODES_KEPT: usize = 100;
/// The hand-over mark of `skysync export`.
pub const HANDED_OVER_FILE: &str = "handed-over.json";
/// The lock file.
pub const LOCK_FILE: &str = "tokens.lock";
/// A token file is a few KiB; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where `skysync export` sent this profile's tokens, and when (no secrets: kept in plain text).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HandedOver {
    /// The bundle's path, or `stdout`.
    pub to: String,
    /// When the bundle was written.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl HandedOver {
    /// The refusal every later use of the store gets.
    pub fn refusal(&self) -> StoreError {
        StoreError::HandedOver(format!(
            "this profile's tokens were handed over to {} at {} (`skysync export`), so they are no longer used or refreshed here: two holders refreshing one grant destroy each other's rotations. To take them back, import a bundle from their holder (`skysync import FILE`), or consent again (`skysync login`)",
            self.to,
            crate::output::timestamp(self.at)
        ))
    }
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

    /// `tokens.json.bak`, the newest backup.
    pub fn backup_path(&self) -> PathBuf {
        self.dir.join(BACKUP_FILE)
    }

    /// Every backup, newest first: `tokens.json.bak`, `tokens.json.bak.2`, `tokens.json.bak.3`.
    pub fn backup_paths(&self) -> Vec<PathBuf> {
        (1..=BACKUP_GENERATIONS)
            .map(|n| if n == 1 { self.backup_path() } else { self.dir.join(format!("{BACKUP_FILE}.{n}")) })
            .collect()
    }

    /// `tokens.lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// `exchanged-codes.json`.
    pub fn used_codes_path(&self) -> PathBuf {
        self.dir.join(USED_CODES_FILE)
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
                    if let Some(m) = foreign_owner(&self.dir, &meta, "token directory") {
                        return Err(StoreError::Insecure(m));
                    }
                }
                let _ = meta;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::Io(format!("cannot read the token directory {}: {e}", self.dir.display()))),
        }
    }

    pub(super) fn ensure_dir(&self) -> Result<(), StoreError> {
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
        let mut file = match OpenOptions::new().read(true).no_follow().open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_symlink_refusal(path, &e) => {
                return Err(ReadError::Insecure(format!(
                    "the token file {} is a symbolic link, which skysync refuses to follow (whoever can change the link controls the tokens); replace it with the file itself",
                    path.display()
                )));
            }
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
            if let Some(m) = foreign_owner(path, &meta, "token file") {
                return Err(ReadError::Insecure(m));
            }
        }
        if !meta.is_file() {
            return Err(ReadError::Unreadable("it is not a regular file".into()));
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
        decode_envelope(&bytes).map(Some).map_err(ReadError::Unreadable)
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

    /// Writes `tokens` as `generation`, first keeping the current file as the newest backup when
    /// `keep_backup`. The caller holds the lock.
    fn write(&self, tokens: &TokenSet, generation: u64, keep_backup: bool) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let json = encode_envelope(tokens, generation).map_err(|e| self.write_failed("serializing", e))?;
        if let Some(e) = injected_fault(FaultSite::TokenFile) {
            return Err(self.write_failed("writing", e));
        }
        let json = self.at_rest.seal(json).map_err(StoreError::Key)?;
        let main = self.path();
        if keep_backup {
            self.keep_backups(&main).map_err(|e| self.write_failed("keeping the backup", e))?;
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

    /// Shifts the backups one generation down (the oldest goes) and links the current file in
    /// as the newest.
    fn keep_backups(&self, main: &Path) -> std::io::Result<()> {
        let backups = self.backup_paths();
        for pair in backups.windows(2).rev() {
            match std::fs::rename(&pair[0], &pair[1]) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
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
        // A new consent supersedes whatever a failed save left behind, and takes back tokens
        // handed over with `skysync export`.
        for (path, _) in self.rescues() {
            let _ = std::fs::remove_file(path);
        }
        self.clear_handed_over()?;
        Ok(generation)
    }

    /// Removes the token file, its backups and any rescue file. Returns whether there was
    /// anything to remove.
    pub async fn remove(&self) -> Result<bool, StoreError> {
        let mut removed = false;
        let rescues = self.rescues().into_iter().map(|(p, _)| p);
        let files = [self.path(), self.dir.join(".tokens.json.bak.tmp")].into_iter().chain(self.backup_paths());
        for path in files.chain(rescues) {
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

    /// Whether any token file (current, backup or rescue) exists.
    pub fn has_files(&self) -> bool {
        self.path().exists() || self.backup_paths().iter().any(|p| p.exists()) || !self.rescues().is_empty()
    }

    /// Every file that can hold tokens: the token file, its backups and any rescue files (what
    /// `token-store rekey` must re-encrypt).
    pub fn token_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path()];
        files.extend(self.backup_paths());
        files.extend(self.rescue_paths());
        files
    }

    /// Rescue files beside the store, oldest first.
    fn rescue_paths(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(RESCUE_PREFIX) && n.ends_with(RESCUE_SUFFIX))
            })
            .collect();
        paths.sort();
        paths
    }

    /// Rescue files beside the store, oldest first, with what each holds (`None`: unreadable).
    pub(super) fn rescues(&self) -> Vec<(PathBuf, Option<Envelope>)> {
        self.rescue_paths()
            .into_iter()
            .map(|p| {
                let env = match self.read_file(&p) {
                    Ok(env) => env,
                    Err(ReadError::Insecure(m) | ReadError::Unreadable(m) | ReadError::Key(m)) => {
                        tracing::warn!("ignoring the rescue file {}: {m}", p.display());
                        None
                    }
                };
                (p, env)
            })
            .collect()
    }

    /// The newest rescue file that holds a newer token set than `current`.
    pub(super) fn newer_rescue(&self, current: Option<&TokenSet>) -> Option<(PathBuf, Envelope)> {
        self.rescues()
            .into_iter()
            .filter_map(|(p, env)| env.map(|e| (p, e)))
            .filter(|(_, env)| current.is_none_or(|c| is_newer(&env.tokens, c)))
            .max_by_key(|(_, env)| (env.tokens.last_refreshed_at, env.tokens.refresh_obtained_at))
    }

    /// A rescue file that waits to be adopted, if any (for `status`).
    pub fn pending_rescue(&self) -> Option<PathBuf> {
        let current = self.read_current().ok().flatten().map(|(env, _)| env.tokens);
        self.newer_rescue(current.as_ref()).map(|(p, _)| p)
    }

    /// Under the lock: moves a newer rescued token set into `tokens.json` and removes rescue
    /// files that are adopted or stale. A store that is still not writable keeps the file (and
    /// [`TokenStore::load`] keeps returning its tokens).
    fn adopt_rescues(&self) -> Result<(), StoreError> {
        let all = self.rescues();
        if all.is_empty() {
            return Ok(());
        }
        let current = self.read_current()?;
        let tokens = current.as_ref().map(|(env, _)| &env.tokens);
        if let Some((path, env)) = self.newer_rescue(tokens) {
            let generation = current.as_ref().map_or(0, |(env, _)| env.generation) + 1;
            let keep = current.as_ref().is_some_and(|(_, from_backup)| !from_backup);
            if let Err(e) = self.write(&env.tokens, generation, keep) {
                tracing::warn!("the rescued tokens in {} are still not saved: {e}", path.display());
                return Ok(());
            }
            eprintln!(
                "skysync: adopted the tokens rescued in {} into {} (generation {generation})",
                path.display(),
                self.path().display()
            );
        }
        for (path, env) in all {
            // Unreadable ones stay for a person to look at.
            if env.is_some() {
                let _ = std::fs::remove_file(&path);
            }
        }
        let _ = sync_dir(&self.dir);
        Ok(())
    }

    /// Removes temporary files a killed writer left behind. Only the lock holder writes them, so
    /// under the lock every one is stale.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tokens.") && name.ends_with(".tmp")
                || name == ".exchanged-codes.tmp"
                || name == ".handed-over.tmp"
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// `handed-over.json`.
    pub fn handed_over_path(&self) -> PathBuf {
        self.dir.join(HANDED_OVER_FILE)
    }

    /// Where the tokens were handed over to, if `skysync export` did.
    pub fn handed_over(&self) -> Result<Option<HandedOver>, StoreError> {
        let path = self.handed_over_path();
        let Some(bytes) = read_if_present(&path)? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreError::Corrupt(format!(
                "{} is unreadable ({e}); the tokens were handed over with `skysync export`: import a bundle to take them back",
                path.display()
            ))
        })
    }

    /// Marks the tokens handed over to `to` (durably: temp file, fsync, rename). The caller holds
    /// the lock.
    pub fn mark_handed_over(&self, mark: &HandedOver) -> Result<(), StoreError> {
        let path = self.handed_over_path();
        let failed = |e: &dyn std::fmt::Display| StoreError::Io(format!("could not write {} ({e})", path.display()));
        let json = serde_json::to_vec_pretty(mark).map_err(|e| failed(&e))?;
        self.write_private(".handed-over.tmp", &path, &json).map_err(|e| failed(&e))
    }

    /// Writes `bytes` to `path` durably: a new 0600 file `tmp_name` in the directory, fsync,
    /// rename over `path`, fsync of the directory. A failed write removes its temporary file.
    /// The caller holds the lock (the temporary's name is fixed).
    fn write_private(&self, tmp_name: &str, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(tmp_name);
        let _ = std::fs::remove_file(&tmp);
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode_private().open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            sync_dir(&self.dir)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Removes the hand-over mark (new tokens were stored here). The caller holds the lock.
    fn clear_handed_over(&self) -> Result<(), StoreError> {
        match std::fs::remove_file(self.handed_over_path()) {
            Ok(()) => {
                sync_dir(&self.dir).map_err(|e| StoreError::Io(format!("cannot sync {}: {e}", self.dir.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io(format!(
                "the tokens were stored, but {} could not be removed ({e}); remove it by hand",
                self.handed_over_path().display()
            ))),
        }
    }

    /// Fails when the tokens were handed over.
    fn check_not_handed_over(&self) -> Result<(), StoreError> {
        match self.handed_over()? {
            Some(mark) => Err(mark.refusal()),
            None => Ok(()),
        }
    }

    /// When the authorization code with this SHA-256 (hex) was sent, if it was.
    pub fn code_sent_at(&self, sha256: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self.used_codes()?.codes.into_iter().find(|c| c.sha256 == sha256).map(|c| c.at))
    }

    /// Remembers that the authorization code with this SHA-256 (hex) is being sent. Durable
    /// before the code leaves the machine; the caller holds the lock.
    pub fn remember_code(&self, sha256: &str) -> Result<(), StoreError> {
        self.ensure_dir()?;
        let mut book = self.used_codes()?;
        book.codes.retain(|c| c.sha256 != sha256);
        book.codes.push(UsedCode { sha256: sha256.to_owned(), at: SystemClock.now() });
        let excess = book.codes.len().saturating_sub(USED_CODES_KEPT);
        book.codes.drain(..excess);
        let path = self.used_codes_path();
        let failed = |e: &dyn std::fmt::Display| {
            StoreError::Io(format!("could not write {} ({e}); the code was not sent", path.display()))
        };
        let json = serde_json::to_vec_pretty(&book).map_err(|e| failed(&e))?;
        self.write_private(".exchanged-codes.tmp", &path, &json).map_err(|e| failed(&e))
    }

    fn used_codes(&self) -> Result<UsedCodes, StoreError> {
        let path = self.used_codes_path();
        let Some(bytes) = read_if_present(&path)? else { return Ok(UsedCodes::default()) };
        serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Corrupt(format!(
                "{} is unreadable ({}); remove it to forget which codes were sent",
                path.display(),
                redact_quoted(&e.to_string())
            ))
        })
    }
}

/// The bytes of a small side file of the store (never through a symlink), or `None` when it is
/// not there.
fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match OpenOptions::new().read(true).no_follow().open(path) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| StoreError::Io(format!("cannot read {}: {e}", path.display())))?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io(format!("cannot open {}: {e}", path.display()))),
    }
}

/// Authorization codes already sent, by SHA-256.
#[derive(Default, Serialize, Deserialize)]
struct UsedCodes {
    codes: Vec<UsedCode>,
}

#[derive(Serialize, Deserialize)]
struct UsedCode {
    sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

#[cfg(unix)]
fn foreign_owner(path: &Path, meta: &std::fs::Metadata, what: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    (meta.uid() != me).then(|| {
        format!(
            "the {what} {} is owned by uid {}, not by the user running skysync (uid {me}); whoever owns it controls the tokens. Check who created it, then `chown` it or remove it",
            path.display(),
            meta.uid()
        )
    })
}

/// `O_NOFOLLOW` on a symbolic link fails with `ELOOP`.
fn is_symlink_refusal(path: &Path, e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        return true;
    }
    let _ = e;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultSite {
    TokenFile,
    Rescue,
}

/// The test-only write fault of `SKYSYNC_TEST_SAVE_FAULT` (see the module docs).
pub(super) fn injected_fault(site: FaultSite) -> Option<std::io::Error> {
    static WRITES: AtomicU32 = AtomicU32::new(0);
    let spec = std::env::var("SKYSYNC_TEST_SAVE_FAULT").ok()?;
    let (kind, allowed) = spec.split_once(':').unwrap_or((spec.as_str(), "0"));
    let allowed: u32 = allowed.parse().unwrap_or(0);
    let (errno, rescue_too) = match kind {
        "enospc" => (28, false),
        "enospc-all" => (28, true),
        "erofs" => (30, false),
        _ => return None,
    };
    match site {
        FaultSite::Rescue => rescue_too.then(|| injected(errno)),
        FaultSite::TokenFile => (WRITES.fetch_add(1, Ordering::SeqCst) >= allowed).then(|| injected(errno)),
    }
}

fn injected(errno: i32) -> std::io::Error {
    let e = std::io::Error::from_raw_os_error(errno);
    std::io::Error::new(e.kind(), format!("{e} (injected by SKYSYNC_TEST_SAVE_FAULT)"))
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
    fn no_follow(&mut self) -> &mut Self;
}

impl PrivateMode for OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600);
        self
    }

    fn no_follow(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
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
        self.check_not_handed_over()?;
        let current = self.read_current()?;
        if let Some((env, _)) = &current
            && let Some((path, rescued)) = self.newer_rescue(Some(&env.tokens))
        {
            // Not adopted yet (the store is still not writable): the rescued refresh token is the
            // one that works. Saves still compare against the stored generation.
            tracing::warn!("using the tokens rescued in {} (not yet adopted)", path.display());
            return Ok(Some(Versioned { tokens: rescued.tokens, generation: env.generation }));
        }
        Ok(current.map(|(env, _)| Versioned { tokens: env.tokens, generation: env.generation }))
    }

    /// The caller holds the lock (see the module docs).
    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        self.check_not_handed_over()?;
        let current = self.read_current()?;
        let found = current.as_ref().map(|(env, _)| env.generation);
        if found != expected {
            return Err(StoreError::Conflict { expected, found });
        }
        let keep = current.as_ref().is_some_and(|(_, from_backup)| !from_backup);
        let generation = found.unwrap_or(0) + 1;
        self.write(tokens, generation, keep)?;
        // Whatever a rescue file held is older than what was just saved.
        for (path, env) in self.rescues() {
            if env.is_some_and(|env| !is_newer(&env.tokens, tokens)) {
                let _ = std::fs::remove_file(path);
            }
        }
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
            .no_follow()
            .open(&path)
            .map_err(|e| StoreError::Io(format!("cannot open the lock file {}: {e}", path.display())))?;
        let file = match file.try_lock() {
            Ok(()) => file,
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::debug!(file = %path.display(), "waiting for another skysync process to release the token lock");
                tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                    .await
                    .map_err(|e| StoreError::Io(format!("lock task failed: {e}")))?
                    .map_err(|e| StoreError::Io(format!("cannot lock {}: {e}", path.display())))?
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io(format!("cannot lock {}: {e}", path.display())));
            }
        };
        // From here until the guard drops, termination signals wait for the save.
        let critical = CriticalSection::enter();
        self.remove_stale_temporaries();
        self.adopt_rescues()?;
        Ok(StoreLock::new(Box::new((file, critical))))
    }

    async fn rescue(&self, tokens: &TokenSet) -> Result<String, StoreError> {
        let now = SystemClock.now();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.nanosecond()
        );
        let path = self.dir.join(format!("{RESCUE_PREFIX}{stamp}-{}{RESCUE_SUFFIX}", std::process::id()));
        let failed = |e: &dyn std::fmt::Display| StoreError::Io(format!("cannot write {}: {e}", path.display()));
        let json = encode_envelope(tokens, 0).map_err(|e| failed(&e))?;
        let json = self.at_rest.seal(json).map_err(StoreError::Key)?;
        if let Some(e) = injected_fault(FaultSite::Rescue) {
            return Err(failed(&e));
        }
        let written = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode_private().open(&path)?;
            f.write_all(&json)?;
            f.sync_all()?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(failed(&e));
        }
        Ok(path.display().to_string())
    }
}
