//! JSON lines sink: `DIR/<entity>.jsonl` plus `DIR/sync_state.json`, or plain stdout.
//!
//! Each page is appended and fsynced, then the state file is replaced atomically (temp file, fsync,
//! rename). A crash between the two can therefore duplicate the page's lines on the next run, but
//! never lose them: consumers must deduplicate by `id` (the last line of an id wins).
//!
//! Limits: added vs changed cannot be told apart (every row counts as added), delete
//! reconciliation is not supported, and a full resync is not compared with the file it replaces
//! (that would need memory or a scan per old id): it reports every line of the new file as added,
//! and 0 changed and 0 removed. On stdout nothing is saved, so every run starts from the beginning.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use skysync_core::catalog::Entity;
use skysync_core::sync::quota::QuotaLedger;
use time::OffsetDateTime;

use super::{
    DeleteMode, EntityState, FullSwap, JsonlOut, PageCommit, RecordJson, Row, RunOutcome, Sink, SinkError, Target,
    entity, to_micros,
};

/// What `describe` says for stdout.
pub(crate) const STDOUT_DESCRIPTION: &str =
    "JSON lines on stdout (no saved state: every run starts from the beginning)";

const STATE_FILE: &str = "sync_state.json";

/// JSON lines in a directory or on stdout.
#[derive(Debug)]
pub struct JsonlSink {
    out: JsonlOut,
    states: BTreeMap<String, EntityState>,
    /// On stdout, lines of each entity's `--full` resync written so far (nothing is saved there).
    staged_stdout: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct Line<'a> {
    entity: &'a str,
    id: &'a str,
    date_modified: Option<&'a str>,
    data: &'a RecordJson,
}

fn io(path: &Path, action: &str) -> impl FnOnce(std::io::Error) -> SinkError {
    let path = path.to_owned();
    let action = action.to_owned();
    move |source| SinkError::Io { path, action, source }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SinkError::Worker(e.to_string()))?
}

/// Appends `bytes` to `path` (creating it) and fsyncs.
fn append(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut f = OpenOptions::new().create(true).append(true).open(path).map_err(io(path, "opening for append"))?;
    f.write_all(bytes).map_err(io(path, "appending"))?;
    f.sync_data().map_err(io(path, "fsync"))
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    // Directory fsync makes a rename durable on Unix; Windows cannot open directories this way.
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir, "fsync of the directory"))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, directory fsync.
fn replace_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir, "creating a temp file"))?;
    tmp.write_all(bytes).map_err(io(tmp.path(), "writing"))?;
    super::file_mode::keep_mode_of(path, tmp.as_file()).map_err(io(path, "copying the file mode"))?;
    tmp.as_file().sync_all().map_err(io(path, "fsync"))?;
    tmp.persist(path).map_err(|e| io(path, "renaming into place")(e.error))?;
    sync_dir(dir)
}

fn count_lines(path: &Path) -> Result<u64, SinkError> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(path, "opening")(e)),
    };
    let mut n = 0;
    let mut r = BufReader::new(f);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf).map_err(io(path, "reading"))? == 0 {
            return Ok(n);
        }
        n += 1;
    }
}

impl JsonlSink {
    /// Opens the directory (created if missing) and loads its saved state.
    pub fn open(out: JsonlOut) -> Result<Self, SinkError> {
        super::file_mode::private_umask();
        let mut states = BTreeMap::new();
        if let JsonlOut::Dir(dir) = &out {
            std::fs::create_dir_all(dir).map_err(io(dir, "creating the output directory"))?;
            let path = dir.join(STATE_FILE);
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let list: Vec<EntityState> =
                        serde_json::from_slice(&bytes).map_err(|source| SinkError::CorruptState { path, source })?;
                    states = list.into_iter().map(|s| (s.entity.clone(), s)).collect();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, "reading saved state")(e)),
            }
        }
        Ok(JsonlSink { out, states, staged_stdout: BTreeMap::new() })
    }

    fn dir(&self) -> Option<&Path> {
        match &self.out {
            JsonlOut::Dir(d) => Some(d),
            JsonlOut::Stdout => None,
        }
    }

    fn state_mut(&mut self, name: &str) -> &mut EntityState {
        self.states.entry(name.to_owned()).or_insert_with(|| EntityState::new(name))
    }

    fn state_bytes(&self) -> Vec<u8> {
        let list: Vec<&EntityState> = self.states.values().collect();
        // Serializing plain data into a Vec cannot fail.
        serde_json::to_vec_pretty(&list).unwrap_or_default()
    }

    async fn save_state(&self) -> Result<(), SinkError> {
        let Some(dir) = self.dir().map(Path::to_owned) else {
            return Ok(());
        };
        let bytes = self.state_bytes();
        blocking(move || replace_file(&dir, &dir.join(STATE_FILE), &bytes)).await
    }

    /// Every profile's quota bookkeeping in the directory (none on stdout).
    fn quota_ledgers(&self) -> Result<BTreeMap<String, QuotaLedger>, SinkError> {
        let Some(path) = self.dir().map(|d| d.join(super::quota::JSONL_FILE)) else { return Ok(BTreeMap::new()) };
        match std::fs::read(&path) {
            Ok(bytes) => super::quota::jsonl_parse(&bytes).map_err(|source| SinkError::CorruptState { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io(&path, "reading the quota bookkeeping")(e)),
        }
    }

    fn unsupported(&self, what: &str) -> SinkError {
        SinkError::Unsupported { sink: self.describe(), what: what.to_owned() }
    }
}

fn live_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.jsonl"))
}

fn staging_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.jsonl.staging"))
}

#[async_trait::async_trait]
impl Sink for JsonlSink {
    fn describe(&self) -> String {
        match &self.out {
            JsonlOut::Dir(d) => format!("JSON lines in {}", d.display()),
            JsonlOut::Stdout => STDOUT_DESCRIPTION.to_owned(),
        }
    }

    async fn prepare(&mut self, entities: &[&'static Entity]) -> Result<(), SinkError> {
        for e in entities {
            entity(e.name)?;
        }
        Ok(())
    }

    async fn state(&mut self, name: &str) -> Result<Option<EntityState>, SinkError> {
        let e = entity(name)?;
        Ok(self.states.get(e.name).cloned())
    }

    async fn states(&mut self) -> Result<Vec<EntityState>, SinkError> {
        Ok(self.states.values().cloned().collect())
    }

    async fn commit_page(
        &mut self,
        name: &str,
        target: Target,
        rows: &[Row],
        bookmark: &str,
        _now: OffsetDateTime,
    ) -> Result<PageCommit, SinkError> {
        let e = entity(name)?;
        let mut bytes = Vec::new();
        for r in rows {
            let line = Line { entity: e.name, id: &r.id, date_modified: r.date_modified.as_deref(), data: &r.data };
            serde_json::to_writer(&mut bytes, &line).map_err(|source| SinkError::Io {
                path: PathBuf::from("-"),
                action: "encoding a JSON line".into(),
                source: source.into(),
            })?;
            bytes.push(b'\n');
        }
        let n = rows.len() as u64;
        let Some(dir) = self.dir().map(Path::to_owned) else {
            blocking(move || {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes).and_then(|()| out.flush()).map_err(|e| {
                    // `… | head -1` closed the reader's end: the run ends quietly (exit 0).
                    crate::output::note_write_error(&e);
                    io(Path::new("<stdout>"), "writing")(e)
                })
            })
            .await?;
            if target == Target::Staging {
                *self.staged_stdout.entry(e.name.to_owned()).or_default() += n;
            }
            return Ok(PageCommit { added: n, changed: 0 });
        };
        let path = match target {
            Target::Live => live_file(&dir, e.name),
            Target::Staging => {
                let p = staging_file(&dir, e.name);
                if !p.exists() {
                    return Err(SinkError::NoFullResync { entity: e.name.to_owned() });
                }
                p
            }
        };
        blocking(move || append(&path, &bytes)).await?;
        let st = self.state_mut(e.name);
        match target {
            Target::Live => {
                st.bookmark = Some(bookmark.to_owned());
                st.row_count += n;
            }
            Target::Staging => st.staging_bookmark = Some(bookmark.to_owned()),
        }
        self.save_state().await?;
        Ok(PageCommit { added: n, changed: 0 })
    }

    async fn begin_full(&mut self, name: &str) -> Result<Option<String>, SinkError> {
        let e = entity(name)?;
        let Some(dir) = self.dir().map(Path::to_owned) else {
            self.staged_stdout.insert(e.name.to_owned(), 0);
            return Ok(None);
        };
        let staging = staging_file(&dir, e.name);
        let st = self.state_mut(e.name);
        if let Some(b) = &st.staging_bookmark
            && staging.exists()
        {
            return Ok(Some(b.clone()));
        }
        st.staging_bookmark = None;
        blocking(move || File::create(&staging).and_then(|f| f.sync_all()).map_err(io(&staging, "creating"))).await?;
        self.save_state().await?;
        Ok(None)
    }

    async fn finish_full(&mut self, name: &str, bookmark: &str) -> Result<FullSwap, SinkError> {
        let e = entity(name)?;
        let Some(dir) = self.dir().map(Path::to_owned) else {
            // Stdout has no staging to swap: the lines were written as they came.
            let n = self.staged_stdout.remove(e.name).unwrap_or(0);
            return Ok(FullSwap { added: n, changed: 0, removed: 0, row_count: n });
        };
        let staging = staging_file(&dir, e.name);
        let live = live_file(&dir, e.name);
        let count = blocking(move || {
            if !staging.exists() {
                return Ok(None);
            }
            std::fs::rename(&staging, &live).map_err(io(&live, "renaming the staging file"))?;
            sync_dir(&dir)?;
            count_lines(&live).map(Some)
        })
        .await?
        .ok_or_else(|| SinkError::NoFullResync { entity: e.name.to_owned() })?;
        let st = self.state_mut(e.name);
        st.bookmark = Some(bookmark.to_owned());
        st.staging_bookmark = None;
        st.row_count = count;
        self.save_state().await?;
        Ok(FullSwap { added: count, changed: 0, removed: 0, row_count: count })
    }

    async fn begin_reconcile(&mut self, name: &str) -> Result<(), SinkError> {
        entity(name)?;
        Err(self.unsupported("delete reconciliation (use --format db)"))
    }

    async fn add_seen_ids(&mut self, name: &str, _ids: &[String]) -> Result<(), SinkError> {
        entity(name)?;
        Err(self.unsupported("delete reconciliation (use --format db)"))
    }

    async fn finish_reconcile(
        &mut self,
        name: &str,
        _mode: DeleteMode,
        _now: OffsetDateTime,
    ) -> Result<u64, SinkError> {
        entity(name)?;
        Err(self.unsupported("delete reconciliation (use --format db)"))
    }

    async fn quota_ledger(&mut self, scope: &str) -> Result<Option<QuotaLedger>, SinkError> {
        Ok(self.quota_ledgers()?.remove(scope))
    }

    async fn save_quota_ledger(&mut self, scope: &str, ledger: &QuotaLedger) -> Result<(), SinkError> {
        let Some(dir) = self.dir().map(Path::to_owned) else { return Ok(()) };
        let mut all = self.quota_ledgers()?;
        all.insert(scope.to_owned(), ledger.clone());
        let bytes = serde_json::to_vec_pretty(&all).unwrap_or_default();
        blocking(move || replace_file(&dir, &dir.join(super::quota::JSONL_FILE), &bytes)).await
    }

    async fn finish_run(&mut self, name: &str, outcome: &RunOutcome, now: OffsetDateTime) -> Result<(), SinkError> {
        let e = entity(name)?;
        if self.dir().is_none() {
            return Ok(());
        }
        let t = to_micros(now);
        let st = self.state_mut(e.name);
        st.last_run_at = Some(t);
        match outcome {
            RunOutcome::Success => {
                st.last_success_at = Some(t);
                st.last_error = None;
            }
            RunOutcome::Failed(m) => st.last_error = Some(m.clone()),
        }
        self.save_state().await
    }
}
