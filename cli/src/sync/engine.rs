//! The sync engine: per entity, page through a SKY list and commit each page's rows together with
//! the bookmark that covers them; entities run concurrently through one shared [`ApiClient`]
//! (whose pacer is the one rate limiter) and one sink (serialized behind a mutex, so at most one
//! page per running entity is held in memory).

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use skysync_core::api::{ApiClient, ApiCounters, ApiError, CallStats};
use skysync_core::catalog::{Entity, Incremental};
use skysync_core::env::Clock;
use skysync_core::http::Method;
use skysync_core::paging::{Bookmark, Cursor, CursorOptions, Page, PageError, RecordKey, Step, parse_page, record_key};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;
use url::Url;

use super::progress::{Phase, Progress};
use crate::sink::{DeleteMode, EntityState, PageCommit, Row, RunOutcome, Sink, SinkError, Target};

/// How a run treats each entity.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Page size; `None` = the endpoint's maximum (fewest calls).
    pub page_size: Option<u32>,
    /// Overlap for Blackbaud's list latency when a scan restarts from a time.
    pub overlap: Duration,
    /// Re-sync every entity from scratch (old rows stay visible until the new set is complete).
    pub full: bool,
    /// Reconcile deletes this run.
    pub reconcile: bool,
    /// Reconcile automatically when this long has passed since the last reconciliation.
    pub reconcile_every: Option<Duration>,
    /// What reconciliation does with rows the source no longer has.
    pub deletes: DeleteMode,
    /// Entities synced at the same time.
    pub concurrency: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            page_size: None,
            overlap: Duration::from_secs(30 * 60),
            full: false,
            reconcile: false,
            reconcile_every: None,
            deletes: DeleteMode::Mark,
            concurrency: 4,
        }
    }
}

impl EngineOptions {
    fn cursor(&self) -> CursorOptions {
        CursorOptions { page_size: self.page_size, overlap: self.overlap }
    }

    /// Whether `state` calls for a delete reconciliation this run.
    pub fn reconcile_due(&self, state: Option<&EntityState>, now: OffsetDateTime) -> bool {
        if self.full {
            // A full resync replaces the whole table: deletes are handled by the swap.
            return false;
        }
        let Some(state) = state else { return self.reconcile };
        if self.reconcile || state.reconcile_in_progress {
            return true;
        }
        match (self.reconcile_every, state.last_reconcile_at, state.bookmark.is_some()) {
            (Some(every), Some(last), _) => now - last >= every,
            // Never reconciled, but synced before: the first scheduled reconciliation is due.
            (Some(_), None, true) => true,
            _ => false,
        }
    }
}

/// What a run of one entity did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Continued from the stored bookmark.
    Incremental,
    /// No bookmark yet: everything from the beginning.
    Initial,
    /// `--full`: re-synced into staging and swapped in.
    Full,
}

impl RunMode {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            RunMode::Incremental => "incremental",
            RunMode::Initial => "initial",
            RunMode::Full => "full",
        }
    }
}

/// Counts and outcome of one entity's run.
#[derive(Debug, Clone, Serialize)]
pub struct EntityReport {
    /// Catalog name.
    pub entity: &'static str,
    /// How it ran.
    pub mode: RunMode,
    /// Records with an id new to the table. After `--full`: ids readers did not see before the
    /// swap (see [`FullSwap`](crate::sink::FullSwap)).
    pub added: u64,
    /// Records that replaced an existing row. After `--full`: ids readers saw before whose data
    /// differs in the new set (unchanged records count nowhere).
    pub changed: u64,
    /// Rows marked deleted or removed (reconciliation or a full resync).
    pub removed: u64,
    /// Records received.
    pub records: u64,
    /// Pages committed (id-scan pages of a reconciliation included).
    pub pages: u64,
    /// API calls made for this entity: every attempt, so retries after 5xx and dropped
    /// connections, 429s and the re-try after a 401 count too. The entities of a run add up to the
    /// run's `api.calls` (token endpoint calls are counted apart, in `token_calls`).
    pub requests: u64,
    /// Whether a delete reconciliation finished.
    pub reconciled: bool,
    /// Live rows after the run, as the sink reports it.
    pub row_count: Option<u64>,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Why the run did not finish.
    pub error: Option<String>,
    /// Whether it stopped because the whole run stopped (quota, budget, consent), not on its own.
    pub halted: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl EntityReport {
    fn new(entity: &'static Entity, mode: RunMode) -> Self {
        Self {
            entity: entity.name,
            mode,
            added: 0,
            changed: 0,
            removed: 0,
            records: 0,
            pages: 0,
            requests: 0,
            reconciled: false,
            row_count: None,
            duration: Duration::ZERO,
            error: None,
            halted: false,
        }
    }

    fn committed(&mut self, target: Target, c: PageCommit, records: usize) {
        // Staging counts are against the staging table: a `--full` resync takes its added and
        // changed from the swap instead.
        if target == Target::Live {
            self.added += c.added;
            self.changed += c.changed;
        }
        self.records += records as u64;
        self.pages += 1;
    }
}

/// The outcome of a whole run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// Where the rows went.
    pub sink: String,
    /// One report per entity, in the order requested.
    pub entities: Vec<EntityReport>,
    /// API counters of the run (every attempt counts as a call).
    pub api: ApiCounters,
    /// Token endpoint calls made during the run.
    pub token_calls: u64,
    /// Wall time of the run.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// Why every entity was stopped early (quota, budget, rate limit, consent).
    #[serde(serialize_with = "opt_error")]
    pub stopped: Option<ApiError>,
}

fn opt_error<S: serde::Serializer>(e: &Option<ApiError>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(&e.to_string()),
        None => s.serialize_none(),
    }
}

impl RunReport {
    /// Whether every entity finished.
    pub fn ok(&self) -> bool {
        self.stopped.is_none() && self.entities.iter().all(|e| e.error.is_none())
    }
}

/// Why one entity stopped.
#[derive(Debug, thiserror::Error)]
enum EntityError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Page(#[from] PageError),
    #[error("{0}")]
    Data(String),
    #[error("stopped: {0}")]
    Stopped(String),
}

impl EntityError {
    /// Whether this is the whole run stopping rather than this entity failing.
    fn is_run_wide(&self) -> bool {
        match self {
            EntityError::Stopped(_) => true,
            EntityError::Api(e) => stops_everything(e),
            _ => false,
        }
    }
}

/// Errors that stop every entity, not just the one that met them: they would hit all of them.
fn stops_everything(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::QuotaExhausted { .. }
            | ApiError::BudgetSpent { .. }
            | ApiError::RateLimited { .. }
            | ApiError::Session(_)
            | ApiError::SubscriptionKey { .. }
            | ApiError::Unauthorized { .. }
    )
}

struct Fetched {
    page: Page,
    keys: Vec<RecordKey>,
}

/// Runs one sync over `entities`. Sink failures on one entity are reported with it; the run
/// continues with the others. The caller decides the exit status from [`RunReport`].
pub async fn run(
    api: &ApiClient,
    sink: &mut dyn Sink,
    entities: &[&'static Entity],
    options: &EngineOptions,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<RunReport, SinkError> {
    let started = clock.now();
    let counters_before = api.counters();
    let tokens_before = api.session().token_calls();
    let describe = sink.describe();
    sink.prepare(entities).await?;
    let base = api.resolve("/").map_err(|e| SinkError::InvalidSpec(e.to_string()))?;
    let engine = Engine { api, sink: Mutex::new(sink), options, clock, progress, base, stop: StdMutex::new(None) };
    let mut reports: Vec<(usize, EntityReport)> = futures::stream::iter(entities.iter().copied().enumerate())
        .map(|(i, e)| {
            let engine = &engine;
            async move { (i, engine.entity(e).await) }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    reports.sort_by_key(|(i, _)| *i);
    let after = api.counters();
    Ok(RunReport {
        sink: describe,
        entities: reports.into_iter().map(|(_, r)| r).collect(),
        api: ApiCounters {
            calls: after.calls - counters_before.calls,
            rate_limited: after.rate_limited - counters_before.rate_limited,
            retries: after.retries - counters_before.retries,
            unauthorized: after.unauthorized - counters_before.unauthorized,
        },
        token_calls: api.session().token_calls() - tokens_before,
        duration: elapsed(started, clock.now()),
        stopped: engine.stop.into_inner().unwrap_or_else(|p| p.into_inner()),
    })
}

fn elapsed(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    let d = to - from;
    if d.is_positive() { d.unsigned_abs() } else { Duration::ZERO }
}

struct Engine<'a> {
    api: &'a ApiClient,
    sink: Mutex<&'a mut dyn Sink>,
    options: &'a EngineOptions,
    clock: &'a dyn Clock,
    progress: &'a dyn Progress,
    base: Url,
    stop: StdMutex<Option<ApiError>>,
}

impl Engine<'_> {
    async fn entity(&self, entity: &'static Entity) -> EntityReport {
        let started = self.clock.now();
        let state = self.sink.lock().await.state(entity.name).await;
        let mode = match &state {
            _ if self.options.full => RunMode::Full,
            Ok(Some(s)) if s.bookmark.is_some() => RunMode::Incremental,
            _ => RunMode::Initial,
        };
        let mut report = EntityReport::new(entity, mode);
        self.progress.started(entity, mode);
        let result = match state {
            Ok(state) => self.sync_entity(entity, state, &mut report).await,
            Err(e) => Err(e.into()),
        };
        let outcome = match &result {
            Ok(()) => RunOutcome::Success,
            Err(e) => RunOutcome::Failed(e.to_string()),
        };
        {
            let mut sink = self.sink.lock().await;
            if let Err(e) = sink.finish_run(entity.name, &outcome, self.clock.now()).await
                && result.is_ok()
            {
                report.error = Some(e.to_string());
            }
            report.row_count = sink.state(entity.name).await.ok().flatten().map(|s| s.row_count);
        }
        if let Err(e) = result {
            report.halted = e.is_run_wide();
            report.error = Some(e.to_string());
        }
        report.duration = elapsed(started, self.clock.now());
        self.progress.finished(entity, &report);
        report
    }

    async fn sync_entity(
        &self,
        entity: &'static Entity,
        state: Option<EntityState>,
        report: &mut EntityReport,
    ) -> Result<(), EntityError> {
        let now = self.clock.now();
        let reconcile = self.options.reconcile_due(state.as_ref(), now);
        if self.options.full {
            self.full(entity, report).await?;
        } else {
            let bookmark = match state.as_ref().and_then(|s| s.bookmark.as_deref()) {
                Some(b) => {
                    Some(Bookmark::from_json(b).map_err(|e| EntityError::Data(format!("{}: {e}", entity.name)))?)
                }
                None => None,
            };
            let mut cursor = Cursor::resume(entity, &self.base, bookmark, self.options.cursor(), now);
            self.pages(&mut cursor, Target::Live, report).await?;
        }
        if reconcile {
            self.reconcile(entity, report).await?;
        }
        Ok(())
    }

    /// Follows `cursor` to its end, committing every page with its bookmark.
    async fn pages(&self, cursor: &mut Cursor, target: Target, report: &mut EntityReport) -> Result<(), EntityError> {
        let entity = cursor.entity();
        let phase = if target == Target::Staging { Phase::Full } else { Phase::Sync };
        let mut expected: Option<u64> = None;
        loop {
            let Fetched { mut page, keys } = self.fetch(cursor, report).await?;
            let hw = high_water(&keys);
            let step = cursor.advance(&page, hw.as_deref(), self.clock.now());
            let rows = into_rows(&mut page, keys);
            let bookmark = cursor.bookmark().to_json();
            let commit =
                self.sink.lock().await.commit_page(entity.name, target, &rows, &bookmark, self.clock.now()).await?;
            report.committed(target, commit, rows.len());
            if expected.is_none() {
                expected = page.count.map(|c| c.max(rows.len() as u64));
            }
            self.progress.page(entity, phase, report.records, report.pages, expected);
            if step == Step::Done {
                return Ok(());
            }
        }
    }

    async fn full(&self, entity: &'static Entity, report: &mut EntityReport) -> Result<(), EntityError> {
        let resume = self.sink.lock().await.begin_full(entity.name).await?;
        let bookmark = match resume {
            Some(b) => Some(Bookmark::from_json(&b).map_err(|e| EntityError::Data(format!("{}: {e}", entity.name)))?),
            None => None,
        };
        let mut cursor = Cursor::resume(entity, &self.base, bookmark, self.options.cursor(), self.clock.now());
        // Walk the staging chain to its end, then swap it in; the chain's end is where the next
        // incremental run starts.
        self.pages(&mut cursor, Target::Staging, report).await?;
        let swap = self.sink.lock().await.finish_full(entity.name, &cursor.bookmark().to_json()).await?;
        report.added += swap.added;
        report.changed += swap.changed;
        report.removed += swap.removed;
        Ok(())
    }

    async fn reconcile(&self, entity: &'static Entity, report: &mut EntityReport) -> Result<(), EntityError> {
        self.sink.lock().await.begin_reconcile(entity.name).await?;
        let mut cursor = Cursor::id_scan(entity, &self.base, self.options.cursor(), self.clock.now());
        let mut seen = 0u64;
        let mut last_count = None;
        let mut first_count = None;
        loop {
            let Fetched { page, keys } = self.fetch(&cursor, report).await?;
            let step = cursor.advance(&page, None, self.clock.now());
            first_count = first_count.or(page.count);
            last_count = page.count.or(last_count);
            drop(page);
            let ids: Vec<String> = keys.into_iter().map(|k| k.id).collect();
            seen += ids.len() as u64;
            self.sink.lock().await.add_seen_ids(entity.name, &ids).await?;
            report.pages += 1;
            self.progress.page(entity, Phase::Reconcile, seen, report.pages, last_count);
            if step == Step::Done {
                break;
            }
        }
        let offset_scan = entity.incremental != Incremental::SortToken;
        if let Some(count) = last_count
            && (seen < count || (offset_scan && first_count != last_count))
        {
            // Offset paging over a list that changed during the scan can skip ids (a delete behind
            // the scan shifts the later pages); deleting on that basis would drop live rows. The
            // scan is retried next run.
            return Err(EntityError::Data(format!(
                "{}: the list changed during the id scan ({seen} ids seen, {count} expected); deletes will be reconciled next run",
                entity.name
            )));
        }
        report.removed +=
            self.sink.lock().await.finish_reconcile(entity.name, self.options.deletes, self.clock.now()).await?;
        report.reconciled = true;
        Ok(())
    }

    fn check_stop(&self) -> Result<(), EntityError> {
        match &*self.stop.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(EntityError::Stopped(e.to_string())),
            None => Ok(()),
        }
    }

    async fn fetch(&self, cursor: &Cursor, report: &mut EntityReport) -> Result<Fetched, EntityError> {
        self.check_stop()?;
        let url = cursor.request_url()?;
        let stats = CallStats::new();
        let sent = self.api.send_with(Method::Get, url.as_str(), None, &stats).await;
        report.requests += stats.snapshot().calls;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                if stops_everything(&e) {
                    let mut stop = self.stop.lock().unwrap_or_else(|p| p.into_inner());
                    if stop.is_none() {
                        *stop = Some(e.clone());
                    }
                }
                return Err(e.into());
            }
        };
        let page = parse_page(&url, &response)?;
        drop(response);
        let keys = page
            .value
            .iter()
            .map(|v| record_key(v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EntityError::Data(format!("{}: {e}", cursor.entity().name)))?;
        Ok(Fetched { page, keys })
    }
}

/// Moves a page's records into sink rows.
fn into_rows(page: &mut Page, keys: Vec<RecordKey>) -> Vec<Row> {
    std::mem::take(&mut page.value)
        .into_iter()
        .zip(keys)
        .map(|(data, key)| Row { id: key.id, date_modified: key.date_modified, data })
        .collect()
}

/// The newest `date_modified` of a page.
fn high_water(keys: &[RecordKey]) -> Option<String> {
    let mut best: Option<(OffsetDateTime, &str)> = None;
    for k in keys {
        let Some(dm) = k.date_modified.as_deref() else { continue };
        let Ok(t) = OffsetDateTime::parse(dm, &Rfc3339) else { continue };
        if best.is_none_or(|(b, _)| t > b) {
            best = Some((t, dm));
        }
    }
    best.map(|(_, s)| s.to_owned())
}
