//! Where a profile's tokens live: a private file (the default, [`FileTokenStore`]) or a row in a
//! PostgreSQL table that many hosts share ([`PgTokenStore`], chosen with
//! `token_store = "postgres://…"` in the profile or `SKYSYNC_TOKEN_STORE`).
//!
//! The policy is not per backend. When to refresh or rotate, the rotation intent saved before the
//! token call, the rescue of a rotated set whose save failed, lost rotations and
//! `grant_refused_at` are the session's ([`skysync_core::session`]), written once against the
//! [`TokenStore`] contract: `load`, a compare-and-swap `save` on a generation number, an exclusive
//! `lock` held across the token call, and `rescue`. What both backends share here:
//! - the envelope (`format`, `version`, `generation`, `saved_at`, `tokens`), so encryption at rest
//!   ([`crate::token_crypto`]) seals the same bytes in a file or a `bytea` column, and
//!   `token-store migrate` moves a set between them unchanged;
//! - which rescued set is newer than the stored one (`is_newer`);
//! - [`ProfileStore`], the one type commands use, whichever backend the profile names.

mod file;
mod postgres;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use skysync_core::host::{Clock, SystemClock};
use skysync_core::secret::redact_quoted;
use skysync_core::store::{StoreError, StoreLock, TokenStore, Versioned};
use skysync_core::token_set::TokenSet;
use time::OffsetDateTime;

use crate::token_crypto::AtRest;
pub use file::{
    BACKUP_FILE, BACKUP_GENERATIONS, FileTokenStore, HANDED_OVER_FILE, HandedOver, LOCK_FILE, TOKENS_FILE,
    USED_CODES_FILE,
};
pub use postgres::{DEFAULT_LOCK_WAIT, LOCK_WAIT_ENV, PgTokenStore, TOKEN_TABLE};

/// The `format` marker of a stored token set.
pub const STORE_FORMAT: &str = "skysync-tokens";
/// The envelope version this build writes.
pub const STORE_VERSION: u32 = 1;

/// One stored token set, as both backends keep it (before encryption at rest).
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) generation: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) saved_at: OffsetDateTime,
    pub(crate) tokens: TokenSet,
}

/// The JSON of `tokens` saved as `generation`, before encryption at rest.
pub(crate) fn encode_envelope(tokens: &TokenSet, generation: u64) -> Result<Vec<u8>, serde_json::Error> {
    let envelope = Envelope {
        format: STORE_FORMAT.into(),
        version: STORE_VERSION,
        generation,
        saved_at: SystemClock.now(),
        tokens: tokens.clone(),
    };
    let mut json = serde_json::to_vec_pretty(&envelope)?;
    json.push(b'\n');
    Ok(json)
}

/// Parses an envelope (after decryption); the error says what is wrong, never a token.
pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<Envelope, String> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("it is not valid JSON ({})", redact_quoted(&e.to_string())))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(STORE_FORMAT) {
        return Err(format!("it is not a skysync token set (no \"format\": \"{STORE_FORMAT}\")"));
    }
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(STORE_VERSION) => {}
        Some(v) => {
            return Err(format!("it has version {v}, and this skysync reads version {STORE_VERSION}; upgrade skysync"));
        }
        None => return Err("it has no numeric \"version\"".into()),
    }
    serde_json::from_value(value).map_err(|e| format!("it is incomplete ({})", redact_quoted(&e.to_string())))
}

/// Whether rescued tokens are newer than the stored ones: the same application and consent (a
/// later consent or import supersedes a rescue), refreshed later, and no older refresh token.
pub(crate) fn is_newer(rescued: &TokenSet, stored: &TokenSet) -> bool {
    rescued.client_id == stored.client_id
        && rescued.consented_at >= stored.consented_at
        && rescued.refresh_obtained_at >= stored.refresh_obtained_at
        && rescued.last_refreshed_at > stored.last_refreshed_at
}

/// Where a store keeps its tokens, for messages and `--json` (a path, or a URL without password
/// plus the profile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Location(String);

impl Location {
    /// The text to show.
    pub fn display(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a profile's `token_store` setting names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The token file in the profile's data directory.
    File,
    /// A PostgreSQL database (the URL may hold a password: never show it unredacted).
    Postgres(String),
}

impl StoreSpec {
    /// Parses a `token_store` value: unset, empty or `file` is the file; `postgres://` or
    /// `postgresql://` a database.
    pub fn parse(value: Option<&str>) -> Result<StoreSpec, String> {
        match value.map(str::trim) {
            None | Some("") | Some("file") => Ok(StoreSpec::File),
            Some(v) if v.starts_with("postgres://") || v.starts_with("postgresql://") => {
                crate::sink::check_pg_url(v).map_err(|e| e.to_string())?;
                Ok(StoreSpec::Postgres(v.to_owned()))
            }
            Some(v) => Err(format!("{:?} is neither `file` nor a postgres:// URL", crate::sink::redact_url(v))),
        }
    }
}

/// A profile's token store, whichever backend its settings name. Commands use this.
#[derive(Debug)]
pub enum ProfileStore {
    /// `<data_dir>/tokens.json`.
    File(FileTokenStore),
    /// A row of [`TOKEN_TABLE`].
    Postgres(Box<PgTokenStore>),
}

impl ProfileStore {
    /// The store `spec` names for `profile`, keeping local files (the token file, or a rescue
    /// file of the database store) in `data_dir`, sealed as `at_rest` says.
    /// `password_file` is the profile's `db_password_file`, used by the PostgreSQL store.
    pub fn open(
        profile: &str,
        data_dir: PathBuf,
        spec: &StoreSpec,
        at_rest: AtRest,
        password_file: Option<PathBuf>,
    ) -> ProfileStore {
        match spec {
            StoreSpec::File => ProfileStore::File(FileTokenStore::new(data_dir).with_at_rest(at_rest)),
            StoreSpec::Postgres(url) => ProfileStore::Postgres(Box::new(
                PgTokenStore::new(url, profile, data_dir, at_rest).with_password_file(password_file),
            )),
        }
    }

    /// How the tokens are kept at rest (the key, or plaintext).
    pub fn at_rest(&self) -> &AtRest {
        match self {
            ProfileStore::File(f) => f.at_rest(),
            ProfileStore::Postgres(p) => p.at_rest(),
        }
    }

    /// `file` or `postgres`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProfileStore::File(_) => "file",
            ProfileStore::Postgres(_) => "postgres",
        }
    }

    /// Where the tokens are.
    pub fn path(&self) -> Location {
        match self {
            ProfileStore::File(f) => Location(f.path().display().to_string()),
            ProfileStore::Postgres(p) => Location(p.describe()),
        }
    }

    /// Where the previous token set is kept (the file store's newest backup; the database row's
    /// `previous` column).
    pub fn backup_path(&self) -> Location {
        match self {
            ProfileStore::File(f) => Location(f.backup_path().display().to_string()),
            ProfileStore::Postgres(p) => Location(format!("the previous set in {}", p.describe())),
        }
    }

    /// A rescue file that waits to be adopted, if any (for `status`).
    pub async fn pending_rescue(&self) -> Option<PathBuf> {
        match self {
            ProfileStore::File(f) => f.pending_rescue(),
            ProfileStore::Postgres(p) => p.pending_rescue().await,
        }
    }

    /// Saves `tokens` whatever is stored (a fresh consent), keeping the current set as the
    /// previous one. The caller holds [`TokenStore::lock`].
    pub async fn replace(&self, tokens: &TokenSet) -> Result<u64, StoreError> {
        match self {
            ProfileStore::File(f) => f.replace(tokens).await,
            ProfileStore::Postgres(p) => p.replace(tokens).await,
        }
    }

    /// Removes the tokens, the previous set and any rescue file. Returns whether there was
    /// anything to remove. The caller holds [`TokenStore::lock`].
    pub async fn remove(&self) -> Result<bool, StoreError> {
        match self {
            ProfileStore::File(f) => f.remove().await,
            ProfileStore::Postgres(p) => p.remove().await,
        }
    }

    /// Whether anything (tokens, a previous set, a rescue file) is stored.
    pub async fn has_tokens(&self) -> Result<bool, StoreError> {
        match self {
            ProfileStore::File(f) => Ok(f.has_files()),
            ProfileStore::Postgres(p) => p.has_tokens().await,
        }
    }

    /// When the authorization code with this SHA-256 (hex) was sent, if it was.
    pub async fn code_sent_at(&self, sha256: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        match self {
            ProfileStore::File(f) => f.code_sent_at(sha256),
            ProfileStore::Postgres(p) => p.code_sent_at(sha256).await,
        }
    }

    /// Remembers, durably and before the code is sent, that this code is being sent. The caller
    /// holds the lock.
    pub async fn remember_code(&self, sha256: &str) -> Result<(), StoreError> {
        match self {
            ProfileStore::File(f) => f.remember_code(sha256),
            ProfileStore::Postgres(p) => p.remember_code(sha256).await,
        }
    }

    fn backend(&self) -> &dyn TokenStore {
        match self {
            ProfileStore::File(f) => f,
            ProfileStore::Postgres(p) => p.as_ref(),
        }
    }
}

#[async_trait::async_trait]
impl TokenStore for ProfileStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        self.backend().load().await
    }

    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        self.backend().save(tokens, expected).await
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        self.backend().lock().await
    }

    async fn rescue(&self, tokens: &TokenSet) -> Result<String, StoreError> {
        self.backend().rescue(tokens).await
    }
}
