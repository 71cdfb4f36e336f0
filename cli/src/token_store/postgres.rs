//! The PostgreSQL backend: one row per profile in [`TOKEN_TABLE`], shared by every host that
//! names the same database, for containers and CI runners whose disk does not last and for jobs
//! that run on more than one host.
//!
//! - The row holds the envelope (see [`super`]) sealed as the file would be (encrypted when a key
//!   is configured: a shared database is read by more people), its `generation`, and the
//!   previous envelope (what the file store's newest backup is). `environment_id` is a plain
//!   column for people looking at the table; the key is the profile name, so profiles of
//!   different environments that share a database need different names.
//! - `save` is a compare-and-swap on `generation` (`UPDATE … WHERE generation = $expected`).
//! - `lock` opens a connection of its own and takes the session advisory lock
//!   `pg_advisory_lock(LOCK_SPACE, hashtext(profile))` on it, waiting at most
//!   [`LOCK_WAIT_ENV`] seconds ([`DEFAULT_LOCK_WAIT`]) through `lock_timeout`; a longer wait is
//!   [`StoreError::Busy`] (exit code 6). The lock lives as long as that connection, so a holder
//!   that is killed releases it when the server sees the connection close. The session re-reads
//!   the row under it and keeps it across the token call: one refresh per expiry, whatever the
//!   number of processes and hosts.
//! - A rotated set whose save fails is rescued into a local file in the profile's data directory
//!   ([`FileTokenStore::rescue`], sealed like the token file), which the next `lock` on that host
//!   adopts into the table. Until then the other hosts see the stale row, so run the job again on
//!   the host that printed the rescue message.
//! - `exchanged-codes` is a table too, so a code bundle is never exchanged twice on any host.
//!
//! The connection, TLS and password handling are the sink's ([`crate::sink::connect_client`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use skysync_core::store::{StoreError, StoreLock, TokenStore, Versioned};
use skysync_core::token_set::TokenSet;
use time::OffsetDateTime;
use tokio::sync::OnceCell;
use tokio_postgres::Client;

use super::file::{FaultSite, injected_fault};
use super::{FileTokenStore, decode_envelope, encode_envelope, is_newer};
use crate::runtime::CriticalSection;
use crate::sink::{Connected, SinkError, connect_client, driver_message};
use crate::token_crypto::{AtRest, OpenError};

/// The table of token sets.
pub const TOKEN_TABLE: &str = "skysync_token_sets";
/// The first key of skysync's advisory locks ("skys").
const LOCK_SPACE: i32 = 0x736b_7973;
/// How long `lock` waits for another holder, in seconds, unless [`LOCK_WAIT_ENV`] says otherwise.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(120);
/// Overrides [`DEFAULT_LOCK_WAIT`] (whole seconds).
pub const LOCK_WAIT_ENV: &str = "SKYSYNC_TOKEN_LOCK_WAIT";
/// SQLSTATE `lock_not_available`: `lock_timeout` expired.
const LOCK_NOT_AVAILABLE: &str = "55P03";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS skysync_token_sets (
    profile text PRIMARY KEY,
    generation bigint NOT NULL,
    environment_id text,
    saved_at timestamptz NOT NULL,
    envelope bytea NOT NULL,
    previous bytea
);
CREATE TABLE IF NOT EXISTS skysync_exchanged_codes (
    profile text NOT NULL,
    sha256 text NOT NULL,
    sent_at timestamptz NOT NULL,
    PRIMARY KEY (profile, sha256)
);";

/// A [`TokenStore`] in a PostgreSQL table. See the module docs.
pub struct PgTokenStore {
    /// May hold a password: never shown (see [`PgTokenStore::describe`]).
    url: String,
    profile: String,
    at_rest: AtRest,
    /// The profile's data directory, for rescue files.
    local: FileTokenStore,
    client: OnceCell<Connected>,
    /// The profile's PostgreSQL password file (`db_password_file`), shared with the sink.
    password_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTokenStore").field("location", &self.describe()).finish_non_exhaustive()
    }
}

/// A stored row, before the envelope is opened.
struct Row {
    generation: u64,
    envelope: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl PgTokenStore {
    /// The store of `profile` in the database at `url`; rescue files go to `data_dir`.
    pub fn new(url: &str, profile: &str, data_dir: PathBuf, at_rest: AtRest) -> Self {
        Self {
            url: url.to_owned(),
            profile: profile.to_owned(),
            local: FileTokenStore::new(data_dir).with_at_rest(at_rest.clone()),
            at_rest,
            client: OnceCell::new(),
            password_file: None,
        }
    }

    /// Reads the PostgreSQL password from `file` (the profile's `db_password_file`).
    pub fn with_password_file(mut self, file: Option<PathBuf>) -> Self {
        self.password_file = file;
        self
    }

    /// How the tokens are kept at rest.
    pub fn at_rest(&self) -> &AtRest {
        &self.at_rest
    }

    /// `profile P in TABLE at URL` (the URL without its password).
    pub fn describe(&self) -> String {
        format!("profile `{}` in {TOKEN_TABLE} at {}", self.profile, crate::sink::redact_url(&self.url))
    }

    fn io(&self, action: &str, e: &tokio_postgres::Error) -> StoreError {
        let secrets = self.client.get().map(|c| c.secrets.clone()).unwrap_or_default();
        StoreError::Io(format!("token store {}: {action}: {}", self.describe(), driver_message(e, &secrets)))
    }

    fn connect_failed(&self, e: SinkError) -> StoreError {
        match e {
            SinkError::InvalidSpec(m) => StoreError::Io(format!("token store {}: {m}", self.describe())),
            other => StoreError::Io(format!("token store: {other}")),
        }
    }

    /// The shared connection (made on first use, with the tables).
    async fn client(&self) -> Result<&Client, StoreError> {
        let connected = self
            .client
            .get_or_try_init(|| async {
                let c = connect_client(&self.url, self.password_file.as_deref())
                    .await
                    .map_err(|e| self.connect_failed(e))?;
                ensure_schema(&c.client).await.map_err(|e| {
                    StoreError::Io(format!(
                        "token store {}: creating the tables: {}",
                        self.describe(),
                        driver_message(&e, &c.secrets)
                    ))
                })?;
                Ok::<_, StoreError>(c)
            })
            .await?;
        Ok(&connected.client)
    }

    async fn row(&self) -> Result<Option<Row>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT generation, envelope, previous FROM skysync_token_sets WHERE profile = $1",
                &[&self.profile],
            )
            .await
            .map_err(|e| self.io("reading", &e))?;
        Ok(row.map(|r| Row {
            generation: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            envelope: r.get(1),
            previous: r.get(2),
        }))
    }

    /// Opens one sealed envelope; `which` names it in messages.
    fn open(&self, which: &str, bytes: Vec<u8>) -> Result<TokenSet, (bool, String)> {
        let label = format!("the {which} token set of {}", self.describe());
        let plain = self.at_rest.open(Path::new(&label), bytes).map_err(|e| match e {
            OpenError::Key(m) => (true, m),
            OpenError::Unreadable(m) => (false, m),
        })?;
        decode_envelope(&plain).map(|env| env.tokens).map_err(|m| (false, format!("{label} is unreadable: {m}")))
    }

    /// The stored set (falling back to the previous one, with a warning, when it is unreadable).
    async fn stored(&self) -> Result<Option<Versioned>, StoreError> {
        let Some(row) = self.row().await? else { return Ok(None) };
        match self.open("current", row.envelope) {
            Ok(tokens) => Ok(Some(Versioned { tokens, generation: row.generation })),
            Err((true, m)) => Err(StoreError::Key(m)),
            Err((false, m)) => match row.previous.map(|p| self.open("previous", p)) {
                Some(Ok(tokens)) => {
                    tracing::warn!("{m}; using the previous token set");
                    Ok(Some(Versioned { tokens, generation: row.generation }))
                }
                Some(Err((true, k))) => Err(StoreError::Key(k)),
                Some(Err((false, p))) => Err(StoreError::Corrupt(format!(
                    "{m}, and {p}. Run `skysync login` (or `skysync import`) to consent again"
                ))),
                None => Err(StoreError::Corrupt(format!(
                    "{m}; there is no previous set. Run `skysync login` (or `skysync import`) to consent again"
                ))),
            },
        }
    }

    fn seal(&self, tokens: &TokenSet, generation: u64) -> Result<Vec<u8>, StoreError> {
        let json = encode_envelope(tokens, generation)
            .map_err(|e| StoreError::Io(format!("token store {}: serializing: {e}", self.describe())))?;
        self.at_rest.seal(json).map_err(StoreError::Key)
    }

    /// The stored generation, without opening the envelope (a corrupt or foreign-key row can
    /// still be replaced).
    async fn generation(&self) -> Result<Option<u64>, StoreError> {
        Ok(self.row().await?.map(|r| r.generation))
    }

    /// See [`super::ProfileStore::replace`].
    pub async fn replace(&self, tokens: &TokenSet) -> Result<u64, StoreError> {
        let found = self.generation().await?;
        let generation = self.save(tokens, found).await?;
        // A new consent supersedes whatever a failed save left behind on this host.
        for (path, _) in self.local.rescues() {
            let _ = std::fs::remove_file(path);
        }
        Ok(generation)
    }

    /// See [`super::ProfileStore::remove`].
    pub async fn remove(&self) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM skysync_token_sets WHERE profile = $1", &[&self.profile])
            .await
            .map_err(|e| self.io("removing", &e))?;
        let mut removed = n > 0;
        for (path, _) in self.local.rescues() {
            removed |= std::fs::remove_file(path).is_ok();
        }
        Ok(removed)
    }

    /// Whether a row or a local rescue file exists.
    pub async fn has_tokens(&self) -> Result<bool, StoreError> {
        Ok(self.generation().await?.is_some() || !self.local.rescues().is_empty())
    }

    /// A local rescue file newer than the stored set.
    pub async fn pending_rescue(&self) -> Option<PathBuf> {
        let current = self.stored().await.ok().flatten().map(|v| v.tokens);
        self.local.newer_rescue(current.as_ref()).map(|(p, _)| p)
    }

    /// See [`super::ProfileStore::code_sent_at`].
    pub async fn code_sent_at(&self, sha256: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                 FROM skysync_exchanged_codes WHERE profile = $1 AND sha256 = $2",
                &[&self.profile, &sha256],
            )
            .await
            .map_err(|e| self.io("reading the exchanged codes", &e))?;
        Ok(row.and_then(|r| {
            let text: String = r.get(0);
            OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).ok()
        }))
    }

    /// See [`super::ProfileStore::remember_code`].
    pub async fn remember_code(&self, sha256: &str) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO skysync_exchanged_codes (profile, sha256, sent_at) VALUES ($1, $2, now()) \
             ON CONFLICT (profile, sha256) DO UPDATE SET sent_at = excluded.sent_at",
            &[&self.profile, &sha256],
        )
        .await
        .map_err(|e| {
            StoreError::Io(format!("{}; the code was not sent", self.io("recording the exchanged code", &e)))
        })?;
        Ok(())
    }

    /// Under the lock: saves a newer rescued set from this host's data directory into the table
    /// and removes the rescue files that are adopted or stale.
    async fn adopt_rescues(&self) -> Result<(), StoreError> {
        let all = self.local.rescues();
        if all.is_empty() {
            return Ok(());
        }
        let current = self.stored().await?;
        if let Some((path, env)) = self.local.newer_rescue(current.as_ref().map(|v| &v.tokens)) {
            match self.save(&env.tokens, current.as_ref().map(|v| v.generation)).await {
                Ok(generation) => eprintln!(
                    "skysync: adopted the tokens rescued in {} into {} (generation {generation})",
                    path.display(),
                    self.describe()
                ),
                Err(e) => {
                    tracing::warn!("the rescued tokens in {} are still not saved: {e}", path.display());
                    return Ok(());
                }
            }
        }
        for (path, env) in all {
            if env.is_some() {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    fn lock_wait() -> Duration {
        std::env::var(LOCK_WAIT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_LOCK_WAIT, Duration::from_secs)
    }
}

/// Creates the tables. Concurrent `CREATE TABLE IF NOT EXISTS` can fail on the catalog's unique
/// index, so the first hosts to start take turns under a transaction advisory lock.
async fn ensure_schema(c: &Client) -> Result<(), tokio_postgres::Error> {
    let exists = c
        .query_one("SELECT to_regclass('skysync_token_sets') IS NOT NULL AND to_regclass('skysync_exchanged_codes') IS NOT NULL", &[])
        .await?
        .get::<_, bool>(0);
    if exists {
        return Ok(());
    }
    c.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({LOCK_SPACE}, 0); {SCHEMA} COMMIT;")).await
}

#[async_trait::async_trait]
impl TokenStore for PgTokenStore {
    async fn load(&self) -> Result<Option<Versioned>, StoreError> {
        let current = self.stored().await?;
        if let Some(stored) = &current
            && let Some((path, rescued)) = self.local.newer_rescue(Some(&stored.tokens))
        {
            // Not adopted yet (the table is still not writable): the rescued refresh token is the
            // one that works. Saves still compare against the stored generation.
            tracing::warn!("using the tokens rescued in {} (not yet adopted)", path.display());
            return Ok(Some(Versioned { tokens: rescued.tokens, generation: stored.generation }));
        }
        Ok(current)
    }

    /// The caller holds the lock (see the module docs).
    async fn save(&self, tokens: &TokenSet, expected: Option<u64>) -> Result<u64, StoreError> {
        let generation = expected.unwrap_or(0) + 1;
        let sealed = self.seal(tokens, generation)?;
        if let Some(e) = injected_fault(FaultSite::TokenFile) {
            return Err(StoreError::Io(format!("token store {}: writing: {e}", self.describe())));
        }
        let c = self.client().await?;
        let env = tokens.identity.environment_id.as_deref();
        let (Ok(new), Ok(old)) = (i64::try_from(generation), i64::try_from(expected.unwrap_or(0))) else {
            return Err(StoreError::Io("the token store generation overflowed".into()));
        };
        let written = match expected {
            None => {
                c.execute(
                    "INSERT INTO skysync_token_sets (profile, generation, environment_id, saved_at, envelope) \
                     VALUES ($1, $2, $3, now(), $4) ON CONFLICT (profile) DO NOTHING",
                    &[&self.profile, &new, &env, &sealed],
                )
                .await
            }
            Some(_) => {
                c.execute(
                    "UPDATE skysync_token_sets SET generation = $2, environment_id = $3, saved_at = now(), \
                     previous = envelope, envelope = $4 WHERE profile = $1 AND generation = $5",
                    &[&self.profile, &new, &env, &sealed, &old],
                )
                .await
            }
        }
        .map_err(|e| self.io("writing", &e))?;
        if written != 1 {
            return Err(StoreError::Conflict { expected, found: self.generation().await? });
        }
        tracing::debug!(generation, store = %self.describe(), "saved tokens");
        // Whatever a rescue file on this host held is older than what was just saved.
        for (path, env) in self.local.rescues() {
            if env.is_some_and(|env| !is_newer(&env.tokens, tokens)) {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(generation)
    }

    async fn lock(&self) -> Result<StoreLock, StoreError> {
        // Rescue files (and `import --prepare`'s key) live in the data directory.
        self.local.ensure_dir()?;
        // Tables first, on the shared connection.
        self.client().await?;
        let held =
            connect_client(&self.url, self.password_file.as_deref()).await.map_err(|e| self.connect_failed(e))?;
        let wait = Self::lock_wait();
        let locked = async {
            held.client.batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1))).await?;
            held.client.execute("SELECT pg_advisory_lock($1, hashtext($2))", &[&LOCK_SPACE, &self.profile]).await
        };
        tracing::debug!(store = %self.describe(), "taking the token lock");
        if let Err(e) = locked.await {
            if e.code().is_some_and(|c| c.code() == LOCK_NOT_AVAILABLE) {
                return Err(StoreError::Busy(format!(
                    "another skysync process (on this host or another) held the token lock of {} for more than {} s, \
                     so nothing was read or changed; try again later, or raise {LOCK_WAIT_ENV} (seconds). \
                     `SELECT * FROM pg_locks WHERE locktype = 'advisory'` shows the holder",
                    self.describe(),
                    wait.as_secs()
                )));
            }
            return Err(StoreError::Io(format!(
                "token store {}: taking the lock: {}",
                self.describe(),
                driver_message(&e, &held.secrets)
            )));
        }
        // From here until the guard drops, termination signals wait for the save.
        let critical = CriticalSection::enter();
        self.adopt_rescues().await?;
        Ok(StoreLock::new(Box::new((held, critical))))
    }

    async fn rescue(&self, tokens: &TokenSet) -> Result<String, StoreError> {
        self.local.rescue(tokens).await
    }
}
