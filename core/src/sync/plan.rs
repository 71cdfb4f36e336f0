//! One entity's sync as a plan the caller runs step by step: no I/O, no async, no clock.
//!
//! [`EntityPlan::new`] takes the entity, what the sink has stored for it, the options and `now`.
//! The caller then loops on [`EntityPlan::next`]: it fetches a page when asked ([`Next::Fetch`]:
//! GET [`EntityPlan::request_url`], hand the response to [`EntityPlan::page`] and commit what
//! comes back), or does the sink step asked for and reports it done. The plan decides everything
//! else: which URL, what a page commits and under which bookmark, when a `--full` resync swaps in,
//! when deletes are reconciled, and whether an id scan was complete enough to act on.
//!
//! ```text
//! incremental: Fetch… [StartReconcile Fetch… FinishReconcile] Done
//! full:        OpenStaging Fetch… SwapStaging Done
//! ```

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use super::bookmark::Bookmark;
use super::catalog::Entity;
use super::cursor::{Cursor, CursorOptions, DEFAULT_OVERLAP, Step};
use super::page::{PageError, Record, into_records, parse_keyed_page};
use super::schedule::reconcile_due;
use crate::http::HttpResponse;

/// How a run treats each entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
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
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self { page_size: None, overlap: DEFAULT_OVERLAP, full: false, reconcile: false, reconcile_every: None }
    }
}

impl SyncOptions {
    /// The options of each list scan.
    pub fn cursor(&self) -> CursorOptions {
        CursorOptions { page_size: self.page_size, overlap: self.overlap }
    }
}

/// What a sink has stored about an entity that the plan needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// The stored [`Bookmark`] (JSON), where the next incremental run starts.
    pub bookmark: Option<String>,
    /// A delete reconciliation was begun and not finished.
    pub reconcile_in_progress: bool,
    /// End of the last finished delete reconciliation.
    pub last_reconcile_at: Option<OffsetDateTime>,
}

/// What a run of one entity does.
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
    /// The mode a run with `options` takes for an entity with `stored` state. A stored chain
    /// table is an initial scan that was split and interrupted: the run resumes that scan, so it
    /// is still the initial one.
    pub fn of(options: &SyncOptions, stored: Option<&StoredState>) -> Self {
        let resumes_split_scan = |b: &str| super::partition::PartitionTable::from_json(b).is_some();
        match stored {
            _ if options.full => RunMode::Full,
            Some(s) if s.bookmark.as_deref().is_some_and(resumes_split_scan) => RunMode::Initial,
            Some(s) if s.bookmark.is_some() => RunMode::Incremental,
            _ => RunMode::Initial,
        }
    }

    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            RunMode::Incremental => "incremental",
            RunMode::Initial => "initial",
            RunMode::Full => "full",
        }
    }
}

/// What a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Changed records into the live table.
    Sync,
    /// A `--full` resync into staging.
    Full,
    /// The id scan of a delete reconciliation.
    Reconcile,
}

impl Phase {
    /// Short label for progress lines.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Sync => "sync",
            Phase::Full => "full resync",
            Phase::Reconcile => "id scan",
        }
    }
}

/// What the caller does next: the steps of an [`EntityPlan`] and of a per-parent
/// [`ChildPlan`](crate::sync::ChildPlan) alike. After each step the caller tells the plan, by the
/// method of the same name (`staging_opened`, `page`, `saved`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Open (or resume) the `--full` resync's staging table, then call `staging_opened` with the
    /// staging bookmark it had, if any.
    OpenStaging,
    /// GET `request_url` and hand the response to `page`.
    Fetch,
    /// Store `bookmark` with no rows, then call `saved`. Only a per-parent plan asks for it (when
    /// no parent needed a visit); an entity's bookmarks always come with a page.
    SaveBookmark {
        /// The bookmark the next run starts from.
        bookmark: String,
    },
    /// Swap the staging rows in with `bookmark` as the live bookmark, then call `staging_swapped`.
    SwapStaging {
        /// The bookmark the next incremental run starts from.
        bookmark: String,
    },
    /// Start collecting the ids seen, then call `reconcile_started`.
    StartReconcile,
    /// Mark or remove the rows whose id was not seen, then call `reconcile_finished`.
    FinishReconcile,
    /// Nothing more for this entity this run.
    Done,
}

/// What one page commits.
#[derive(Debug)]
pub enum Commit {
    /// Upsert `records` and store `bookmark` in the same transaction: into the live table in
    /// [`Phase::Sync`], into staging in [`Phase::Full`].
    Records {
        /// The page's records.
        records: Vec<Record>,
        /// The bookmark that covers them.
        bookmark: String,
    },
    /// Add these ids to the reconciliation's set of ids seen.
    SeenIds(Vec<String>),
}

/// A page taken in: what to commit, and how far the phase has come.
#[derive(Debug)]
pub struct PageOutcome {
    /// What the page belongs to.
    pub phase: Phase,
    /// What to commit.
    pub commit: Commit,
    /// Records (or ids) read so far in this phase.
    pub done: u64,
    /// Records the phase will read, from the list's `count`, when known.
    pub expected: Option<u64>,
}

/// Why an entity's plan cannot go on.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// A page or a stored link could not be read.
    #[error(transparent)]
    Page(#[from] PageError),
    /// The stored bookmark is not readable.
    #[error("{entity}: {problem}")]
    Bookmark {
        /// Catalog name.
        entity: &'static str,
        /// What was wrong.
        problem: String,
    },
    /// A record has no usable id.
    #[error("{entity}: {problem}")]
    Record {
        /// Catalog name.
        entity: &'static str,
        /// What was wrong.
        problem: String,
    },
    /// The id scan saw fewer ids than the list promised, so deleting on its basis could drop live
    /// rows; the reconciliation is retried next run.
    #[error(
        "{entity}: the list changed during the id scan ({seen} ids seen, {expected} expected); deletes will be reconciled next run"
    )]
    ScanIncomplete {
        /// Catalog name.
        entity: &'static str,
        /// Ids read.
        seen: u64,
        /// The list's `count`.
        expected: u64,
    },
    /// The caller reported a step the plan did not ask for.
    #[error("{entity}: {step} was not the plan's next step")]
    OutOfOrder {
        /// Catalog name.
        entity: &'static str,
        /// The step reported.
        step: &'static str,
    },
}

/// One list scan in progress.
#[derive(Debug)]
struct Scan {
    phase: Phase,
    cursor: Cursor,
    /// Progress total: the first `count` a page gave (never below that page's rows); for an id
    /// scan the latest `count`.
    expected: Option<u64>,
}

#[derive(Debug)]
enum Stage {
    OpenStaging,
    /// Boxed: a cursor is large next to the other stages.
    Scan(Box<Scan>),
    SwapStaging {
        bookmark: String,
    },
    StartReconcile,
    FinishReconcile,
    Incomplete {
        seen: u64,
        expected: u64,
    },
    Done,
}

/// One entity's sync this run. See the module docs for the loop that runs it.
#[derive(Debug)]
pub struct EntityPlan {
    entity: &'static Entity,
    base: Url,
    cursor_options: CursorOptions,
    mode: RunMode,
    reconcile: bool,
    stage: Stage,
}

impl EntityPlan {
    /// Plans `entity`'s run against the API at `base`, from what the sink has `stored`.
    pub fn new(
        entity: &'static Entity,
        base: &Url,
        stored: Option<&StoredState>,
        options: &SyncOptions,
        now: OffsetDateTime,
    ) -> Result<Self, PlanError> {
        let cursor_options = options.cursor();
        let stage = if options.full {
            Stage::OpenStaging
        } else {
            let bookmark = parse_bookmark(entity, stored.and_then(|s| s.bookmark.as_deref()))?;
            Stage::Scan(Box::new(Scan::new(Phase::Sync, Cursor::resume(entity, base, bookmark, cursor_options, now))))
        };
        Ok(Self {
            entity,
            base: base.clone(),
            cursor_options,
            mode: RunMode::of(options, stored),
            reconcile: reconcile_due(options, stored, now),
            stage,
        })
    }

    /// The entity planned.
    pub fn entity(&self) -> &'static Entity {
        self.entity
    }

    /// What this run does.
    pub fn mode(&self) -> RunMode {
        self.mode
    }

    /// Whether this run reconciles deletes after its pages.
    pub fn reconciles(&self) -> bool {
        self.reconcile
    }

    /// What to do next. An id scan that was not complete ends the plan with an error here, after
    /// its last page was committed.
    pub fn next(&self) -> Result<Next, PlanError> {
        Ok(match &self.stage {
            Stage::OpenStaging => Next::OpenStaging,
            Stage::Scan(_) => Next::Fetch,
            Stage::SwapStaging { bookmark } => Next::SwapStaging { bookmark: bookmark.clone() },
            Stage::StartReconcile => Next::StartReconcile,
            Stage::FinishReconcile => Next::FinishReconcile,
            &Stage::Incomplete { seen, expected } => {
                return Err(PlanError::ScanIncomplete { entity: self.entity.name, seen, expected });
            }
            Stage::Done => Next::Done,
        })
    }

    /// The URL of the page to fetch ([`Next::Fetch`]).
    pub fn request_url(&self) -> Result<Url, PlanError> {
        match &self.stage {
            Stage::Scan(scan) => Ok(scan.cursor.request_url()?),
            _ => Err(self.out_of_order("request_url")),
        }
    }

    /// Takes in the response to [`EntityPlan::request_url`] (`url` is the URL requested).
    pub fn page(&mut self, url: &Url, response: &HttpResponse) -> Result<PageOutcome, PlanError> {
        let (entity, reconcile) = (self.entity.name, self.reconcile);
        let Stage::Scan(scan) = &mut self.stage else { return Err(PlanError::OutOfOrder { entity, step: "page" }) };
        let (mut page, keys) = parse_keyed_page(url, response, self.entity.key)?
            .map_err(|problem| PlanError::Record { entity, problem })?;
        let step = scan.cursor.advance(&page, &keys);
        let commit = match scan.phase {
            Phase::Reconcile => {
                scan.expected = scan.cursor.counts().last_count;
                Commit::SeenIds(keys.into_iter().map(|k| k.id).collect())
            }
            Phase::Sync | Phase::Full => {
                let records = into_records(&mut page, keys);
                if scan.expected.is_none() {
                    scan.expected = page.count.map(|c| c.max(records.len() as u64));
                }
                Commit::Records { records, bookmark: scan.cursor.bookmark().to_json() }
            }
        };
        let outcome =
            PageOutcome { phase: scan.phase, commit, done: scan.cursor.counts().read, expected: scan.expected };
        if step == Step::Done {
            self.stage = match scan.phase {
                Phase::Sync => after_pages(reconcile),
                Phase::Full => Stage::SwapStaging { bookmark: scan.cursor.bookmark().to_json() },
                Phase::Reconcile if scan.cursor.saw_everything() => Stage::FinishReconcile,
                Phase::Reconcile => {
                    let counts = scan.cursor.counts();
                    Stage::Incomplete { seen: counts.read, expected: counts.last_count.unwrap_or_default() }
                }
            };
        }
        Ok(outcome)
    }

    /// The staging table is open ([`Next::OpenStaging`]); `resume` is the bookmark of an
    /// interrupted `--full` resync, if one was left.
    pub fn staging_opened(&mut self, resume: Option<&str>, now: OffsetDateTime) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::OpenStaging) {
            return Err(self.out_of_order("staging_opened"));
        }
        let bookmark = parse_bookmark(self.entity, resume)?;
        // The staging chain runs to its end; its end is where the next incremental run starts.
        let cursor = Cursor::resume(self.entity, &self.base, bookmark, self.cursor_options, now);
        self.stage = Stage::Scan(Box::new(Scan::new(Phase::Full, cursor)));
        Ok(())
    }

    /// The staging rows were swapped in ([`Next::SwapStaging`]).
    pub fn staging_swapped(&mut self) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::SwapStaging { .. }) {
            return Err(self.out_of_order("staging_swapped"));
        }
        self.stage = after_pages(self.reconcile);
        Ok(())
    }

    /// The set of ids seen is ready to fill ([`Next::StartReconcile`]).
    pub fn reconcile_started(&mut self, now: OffsetDateTime) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::StartReconcile) {
            return Err(self.out_of_order("reconcile_started"));
        }
        let cursor = Cursor::id_scan(self.entity, &self.base, self.cursor_options, now);
        self.stage = Stage::Scan(Box::new(Scan::new(Phase::Reconcile, cursor)));
        Ok(())
    }

    /// Rows not seen were marked or removed ([`Next::FinishReconcile`]).
    pub fn reconcile_finished(&mut self) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::FinishReconcile) {
            return Err(self.out_of_order("reconcile_finished"));
        }
        self.stage = Stage::Done;
        Ok(())
    }

    fn out_of_order(&self, step: &'static str) -> PlanError {
        PlanError::OutOfOrder { entity: self.entity.name, step }
    }
}

impl Scan {
    fn new(phase: Phase, cursor: Cursor) -> Self {
        Self { phase, cursor, expected: None }
    }
}

/// After the pages of the sync or the full resync: the reconciliation if due, else the end.
fn after_pages(reconcile: bool) -> Stage {
    if reconcile { Stage::StartReconcile } else { Stage::Done }
}

fn parse_bookmark(entity: &'static Entity, stored: Option<&str>) -> Result<Option<Bookmark>, PlanError> {
    stored.map(Bookmark::from_json).transpose().map_err(|problem| PlanError::Bookmark { entity: entity.name, problem })
}
