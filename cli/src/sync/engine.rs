//! The sync engine: the async shell around core's [`EntityPlan`]. Per entity it runs the plan
//! against the API and the sink (each page's rows committed together with the bookmark that
//! covers them); entities run concurrently through one shared [`ApiClient`] (whose pacer is the
//! one rate limiter) and one sink (serialized behind a mutex). A scan's next page is fetched
//! while its last one is committed, so at most two pages per running entity are held in memory.
//! Every decision (which request, what to commit, when to reconcile, when the run stops) is
//! core's ([`skysync_core::sync`]).
//!
//! # Stopping a run
//!
//! A page is reported ([`Progress::page`], the report's counts) as soon as its commit is in, not
//! when the page fetched meanwhile arrives, and a page is never committed before the one before
//! it. So at any moment the reported pages are exactly the committed ones, give or take the one
//! commit in flight. Dropping a run's future (a caller giving up on it) can leave that one commit
//! running: the sink's call is already out (SQLite's on the blocking pool, PostgreSQL's statements
//! sent). It is one transaction (rows and bookmark), so it lands whole or not at all, and the sink
//! orders it before anything later: every later operation through the same sink sees it, and
//! dropping a SQLite sink waits for it (`sink/blocking.rs`). A new run resumes from the last
//! bookmark stored; at most that page is fetched again, and its rows are upserts.
//!
//! SIGINT, SIGTERM and SIGHUP stop a run the same way a run-wide API error does
//! (`runtime::GracefulStop`): no request is sent after the signal, a page already on its way
//! (fetched ahead) is still committed, each entity's state records the stop, and the report
//! counts exactly the pages committed; `skysync sync` prints it and exits with the signal's
//! status. A second signal ends the process at once: the transaction in flight lands whole or
//! not at all, and the next run resumes from the last committed page.
//!
//! An initial or `--full` scan of a long `sort_token` list may be split into chains that run side
//! by side (`engine/partitioned.rs`); `concurrency` bounds the requests in flight over the whole run.

mod children;
pub(crate) use children::parent_missing;
mod partitioned;

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use futures::StreamExt;
use skysync_core::api::{ApiClient, ApiCounters, ApiError, CallStats};
use skysync_core::host::Clock;
use skysync_core::http::{HttpResponse, Method};
use skysync_core::sync::partition::{PartitionTable, in_date_order};
use skysync_core::sync::{
    Commit, DEFAULT_OVERLAP, Entity, EntityPlan, Next, Phase, PlanError, Record, RunStop, StoredState, SyncOptions,
    reconcile_due,
};
use time::OffsetDateTime;
use tokio::sync::{Mutex, Semaphore};
use url::Url;

use super::progress::Progress;
pub use super::report::{EntityReport, RunReport};
use crate::sink::{DeleteMode, EntityState, Row, RunOutcome, Sink, SinkError, Target};
pub use skysync_core::sync::RunMode;

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
    /// Entities synced at the same time, and the most requests in flight over the whole run.
    pub concurrency: usize,
    /// Most chains one initial or full scan is split into (`1`: never split).
    pub partitions: usize,
    /// The client's pace in calls per second (`0` = unpaced), for choosing how many chains.
    pub rate_limit: f64,
    /// Keep every replaced version in `<entity>_history` (`--history`; databases only).
    pub history: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            page_size: None,
            overlap: DEFAULT_OVERLAP,
            full: false,
            reconcile: false,
            reconcile_every: None,
            deletes: DeleteMode::Mark,
            concurrency: 4,
            partitions: 1,
            rate_limit: 0.0,
            history: false,
        }
    }
}

impl EngineOptions {
    /// The options core's planner reads.
    pub fn sync(&self) -> SyncOptions {
        SyncOptions {
            page_size: self.page_size,
            overlap: self.overlap,
            full: self.full,
            reconcile: self.reconcile,
            reconcile_every: self.reconcile_every,
        }
    }
}

/// What the planner needs of a sink's saved state.
pub(crate) fn stored_state(state: &EntityState) -> StoredState {
    StoredState {
        bookmark: state.bookmark.clone(),
        reconcile_in_progress: state.reconcile_in_progress,
        last_reconcile_at: state.last_reconcile_at,
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
    Plan(#[from] PlanError),
    /// A per-parent list whose parent entity was never synced.
    #[error("{0}")]
    NoParent(String),
    /// Another entity met an error that stops the whole run.
    #[error("stopped: {0}")]
    Stopped(String),
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
    if options.history {
        sink.keep_history(started).await?;
    }
    sink.prepare(entities).await?;
    let base = api.resolve("/").map_err(|e| SinkError::InvalidSpec(e.to_string()))?;
    // A signal now stops the run between requests (see the module docs).
    let _graceful = crate::runtime::GracefulStop::enter();
    let engine = Engine {
        api,
        sink: Mutex::new(sink),
        options,
        sync: options.sync(),
        clock,
        progress,
        base,
        stop: StdMutex::default(),
        in_flight: Semaphore::new(options.concurrency.max(1)),
    };
    // Per-parent lists run after every other entity: their parents' rows must be in first.
    let mut reports = Vec::with_capacity(entities.len());
    for children in [false, true] {
        let wave = entities.iter().copied().enumerate().filter(|(_, e)| e.parent.is_some() == children);
        let done: Vec<(usize, EntityReport)> = futures::stream::iter(wave)
            .map(|(i, e)| {
                let engine = &engine;
                async move { (i, engine.entity(e).await) }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        reports.extend(done);
    }
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
        stopped: engine.stop.into_inner().unwrap_or_else(|p| p.into_inner()).into_reason(),
        quota: None,
        signal: crate::runtime::stop_signal(),
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
    sync: SyncOptions,
    clock: &'a dyn Clock,
    progress: &'a dyn Progress,
    base: Url,
    stop: StdMutex<RunStop>,
    /// One permit per request in flight.
    in_flight: Semaphore,
}

impl Engine<'_> {
    async fn entity(&self, entity: &'static Entity) -> EntityReport {
        let started = self.clock.now();
        let state = self.sink.lock().await.state(entity.name).await.map(|s| s.as_ref().map(stored_state));
        let mode = RunMode::of(&self.sync, state.as_ref().ok().and_then(Option::as_ref));
        let mut report = EntityReport::new(entity, mode);
        self.progress.started(entity, mode);
        let result = match state {
            Ok(state) if entity.parent.is_some() => self.sync_children(entity, state, &mut report).await,
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
            report.halted = match &e {
                EntityError::Stopped(_) => true,
                EntityError::Api(e) => skysync_core::sync::stops_run(e),
                _ => false,
            };
            report.error = Some(e.to_string());
        }
        report.duration = elapsed(started, self.clock.now());
        self.progress.finished(entity, &report);
        report
    }

    /// Runs `entity`'s plan to its end: each step is the sink's or the API's, decided by the plan.
    async fn sync_entity(
        &self,
        entity: &'static Entity,
        mut stored: Option<StoredState>,
        report: &mut EntityReport,
    ) -> Result<(), EntityError> {
        // An interrupted partitioned scan resumes every chain first.
        let live_table = stored.as_ref().and_then(|s| s.bookmark.as_deref()).and_then(PartitionTable::from_json);
        if let Some(table) = live_table.filter(|_| !self.sync.full) {
            let done = self.run_chains(entity, table, Target::Live, None, report).await?;
            self.finish_chains(entity, Target::Live, &done, report).await?;
            if !reconcile_due(&self.sync, stored.as_ref(), self.clock.now()) {
                return Ok(());
            }
            // Deletes are due: go on as an incremental run from the scan's end, then reconcile.
            stored.as_mut().expect("a stored table").bookmark = Some(done);
        }
        let mut plan = EntityPlan::new(entity, &self.base, stored.as_ref(), &self.sync, self.clock.now())?;
        let mut first_page = true;
        // The next page of the scan, fetched while the last one was committed.
        let mut ahead: Option<FetchedAhead> = None;
        loop {
            match plan.next()? {
                Next::OpenStaging => {
                    let resume = self.sink.lock().await.begin_full(entity.name).await?;
                    if let Some(table) = resume.as_deref().and_then(PartitionTable::from_json) {
                        let done = self.run_chains(entity, table, Target::Staging, None, report).await?;
                        self.finish_chains(entity, Target::Staging, &done, report).await?;
                        return Ok(());
                    }
                    plan.staging_opened(resume.as_deref(), self.clock.now())?;
                }
                Next::Fetch => {
                    let url = plan.request_url()?;
                    let (response, latency) = match ahead.take().filter(|a| a.url == url) {
                        Some(a) => (a.answer?, a.latency),
                        None => {
                            self.check_stop()?;
                            let sent = self.clock.now();
                            let response = self.fetch(&url, report).await?;
                            (response, elapsed(sent, self.clock.now()))
                        }
                    };
                    let outcome = plan.page(&url, &response)?;
                    drop(response);
                    match outcome.commit {
                        Commit::Records { records, bookmark } => {
                            let target = if outcome.phase == Phase::Full { Target::Staging } else { Target::Live };
                            let rows: Vec<Row> = records.into_iter().map(row).collect();
                            // After the first page of an initial or full scan: split the rest? Not
                            // when the page shows the list out of date order (chains rely on it).
                            let split = match std::mem::take(&mut first_page)
                                && plan.mode() != RunMode::Incremental
                                && !plan.reconciles()
                                && in_date_order(None, rows.iter().map(|r| r.date_modified.as_deref()))
                                && plan.next()? == Next::Fetch
                            {
                                true => self.split_of(entity, &bookmark, (outcome.expected, outcome.done), latency),
                                false => None,
                            };
                            // While this page is committed, the next one is fetched (it is
                            // committed before the next one is), or the split's probes are sent.
                            let next_url = match plan.next() {
                                Ok(Next::Fetch) if split.is_none() => Some(plan.request_url()?),
                                _ => None,
                            };
                            // A commit is reported as soon as it is in: it does not wait for the
                            // page fetched meanwhile (which may be slow, or never come).
                            let commit = async {
                                let mut sink = self.sink.lock().await;
                                let commit =
                                    sink.commit_page(entity.name, target, &rows, &bookmark, self.clock.now()).await?;
                                drop(sink);
                                report.committed(target, commit, rows.len());
                                self.progress.page(entity, outcome.phase, outcome.done, report.pages, outcome.expected);
                                Ok::<_, EntityError>(())
                            };
                            let meanwhile = async {
                                match split {
                                    Some(split) => (None, Some(self.probe(split).await)),
                                    None => (self.fetch_ahead(next_url).await, None),
                                }
                            };
                            let (commit, (fetched, probed)) = futures::join!(commit, meanwhile);
                            if let Some(a) = &fetched {
                                report.requests += a.calls;
                            }
                            let probed = probed.map(|(table, calls)| {
                                report.requests += calls;
                                table
                            });
                            commit?;
                            ahead = fetched;
                            if let Some(table) = probed.transpose()?.flatten() {
                                let done = self.run_chains(entity, table, target, outcome.expected, report).await?;
                                return self.finish_chains(entity, target, &done, report).await;
                            }
                        }
                        Commit::SeenIds(ids) => {
                            self.sink.lock().await.add_seen_ids(entity.name, &ids).await?;
                            report.pages += 1;
                            self.progress.page(entity, outcome.phase, outcome.done, report.pages, outcome.expected);
                        }
                    }
                }
                Next::SaveBookmark { .. } => unreachable!("an entity's plan stores its bookmarks with pages"),
                Next::SwapStaging { bookmark } => {
                    self.swap_staging(entity, &bookmark, report).await?;
                    plan.staging_swapped()?;
                }
                Next::StartReconcile => {
                    self.sink.lock().await.begin_reconcile(entity.name).await?;
                    plan.reconcile_started(self.clock.now())?;
                }
                Next::FinishReconcile => {
                    self.finish_reconcile(entity, report).await?;
                    plan.reconcile_finished()?;
                }
                Next::Done => return Ok(()),
            }
        }
    }

    /// Stores `bookmark` as the live bookmark, with no rows.
    async fn save_bookmark(&self, entity: &Entity, bookmark: &str) -> Result<(), EntityError> {
        let now = self.clock.now();
        self.sink.lock().await.commit_page(entity.name, Target::Live, &[], bookmark, now).await?;
        Ok(())
    }

    /// The end of a `--full` run: the staging rows replace the live ones, with `bookmark`.
    async fn swap_staging(
        &self,
        entity: &Entity,
        bookmark: &str,
        report: &mut EntityReport,
    ) -> Result<(), EntityError> {
        let swap = self.sink.lock().await.finish_full(entity.name, bookmark).await?;
        report.added += swap.added;
        report.changed += swap.changed;
        report.removed += swap.removed;
        Ok(())
    }

    /// The end of a reconcile: the rows whose id was not seen are marked or removed.
    async fn finish_reconcile(&self, entity: &Entity, report: &mut EntityReport) -> Result<(), EntityError> {
        let now = self.clock.now();
        report.removed += self.sink.lock().await.finish_reconcile(entity.name, self.options.deletes, now).await?;
        report.reconciled = true;
        Ok(())
    }

    fn check_stop(&self) -> Result<(), EntityError> {
        if let Some((_, name)) = crate::runtime::stop_signal() {
            return Err(EntityError::Stopped(format!("{name} received")));
        }
        match self.stop.lock().unwrap_or_else(|p| p.into_inner()).reason() {
            Some(e) => Err(EntityError::Stopped(e.to_string())),
            None => Ok(()),
        }
    }

    /// One GET; an error that stops the whole run is noted for the other entities.
    async fn fetch(&self, url: &Url, report: &mut EntityReport) -> Result<HttpResponse, EntityError> {
        let (sent, calls) = self.fetch_counted(url).await;
        report.requests += calls;
        sent
    }

    /// GETs `url`, if any, unless the run is stopping: the next page, while the last is committed.
    async fn fetch_ahead(&self, url: Option<Url>) -> Option<FetchedAhead> {
        let url = url.filter(|_| self.check_stop().is_ok())?;
        let sent = self.clock.now();
        let (answer, calls) = self.fetch_counted(&url).await;
        Some(FetchedAhead { url, answer, calls, latency: elapsed(sent, self.clock.now()) })
    }

    /// One GET (waiting for a request slot) and the HTTP calls it took, retries included.
    async fn fetch_counted(&self, url: &Url) -> (Result<HttpResponse, EntityError>, u64) {
        let _slot = self.in_flight.acquire().await.expect("the request semaphore is never closed");
        let stats = CallStats::new();
        let sent = self.api.send_with(Method::Get, url.as_str(), None, &stats).await;
        let sent = sent.map_err(|e| {
            self.stop.lock().unwrap_or_else(|p| p.into_inner()).note(&e);
            e.into()
        });
        (sent, stats.snapshot().calls)
    }
}

/// A page fetched while the one before it was committed.
struct FetchedAhead {
    url: Url,
    answer: Result<HttpResponse, EntityError>,
    /// HTTP calls it took (the caller adds them to the entity's report).
    calls: u64,
    /// How long it took to answer.
    latency: Duration,
}

/// A core record as a sink row.
fn row(r: Record) -> Row {
    Row { id: r.id, date_modified: r.date_modified, data: r.data }
}
