//! Per-parent lists (event participants): one offset scan per parent record, as a plan the
//! caller runs step by step like an [`EntityPlan`](super::EntityPlan).
//!
//! A child entity ([`Entity::parent`]) has no list of its own: Blackbaud lists it per parent
//! (`/event/v1/events/{event_id}/participants`). The sink already holds the parent's rows (the
//! parent is synced first in the same run, or was synced before), so the caller hands the plan
//! the live parents ([`ParentRow`]) and the plan decides which parents to visit and how.
//!
//! # Which parents a run visits
//! - A first run, and `--full`: every live parent, without a `last_modified` filter.
//! - Later runs: the parents whose row the sink *wrote* since the child's previous run listed the
//!   parents (`written_at`, the row's `synced_at`, against [`ChildBookmark::visit_since`]). The
//!   sink's own write time is used, not the parent's `date_modified`: both are stamped by the same
//!   clock as `visit_since`, so a parent listed late by Blackbaud (its ~30-minute latency), or one
//!   that came back from a `--full` resync with an old `date_modified`, is still visited. Parent
//!   rows re-read in the parent's overlap window are visited again (a call each, never a miss).
//! - Each visited parent's list is filtered by `last_modified` = the newest `date_modified` among
//!   the child rows already filed under that parent, minus the overlap (no filter when it has
//!   none). Per parent, not per run: a parent skipped by some runs still gets every change since
//!   its own last visit when it is next visited.
//!
//! **Trade-off.** Blackbaud does not document whether a participant change bumps the event's
//! `date_modified`. If it does not, a participant change on an event that did not change is not
//! seen until the event changes, or a `--full` run visits every event (the simulator's knob
//! `participant_changes_bump_parent` tests both). Visiting every parent each run would see it,
//! at one call per parent per run against the daily quota; skysync leaves that to `--full`
//! (e.g. weekly) and documents it.
//!
//! # Rows and bookmarks
//! Participant records carry no event id, so a child row's id is `{parent_id}:{record key}`
//! ([`child_row_id`]): the rows of one parent stay together, views split the parent id out, and
//! the sink can tell each parent's child rows apart. The child's bookmark ([`ChildBookmark`])
//! records the run in progress (which parents are done, the current parent's offset bookmark)
//! and is committed with each page's rows, so a killed run resumes at the page it was on.
//!
//! # Deletes
//! A delete reconciliation of the child scans the ids of every live parent's list (`fields=id`)
//! and marks or removes the child rows not seen: children of parents that were deleted (no longer
//! live in the sink) are not seen, so they go too. A `--full` run replaces the child table by
//! what every live parent lists, with the same effect.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use super::bookmark::{Bookmark, parse_time, restart_point, rfc3339};
use super::catalog::Entity;
use super::cursor::{Cursor, CursorOptions, Step};
use super::page::{into_records, parse_page, record_keys};
use super::plan::{Commit, Next, PageOutcome, Phase, PlanError, RunMode, StoredState, SyncOptions};
use super::schedule::reconcile_due;
use crate::http::HttpResponse;

/// The separator between the parent id and the record key in a child row's id.
pub const CHILD_ID_SEPARATOR: char = ':';

/// A child row's id: `{parent_id}:{key}`.
pub fn child_row_id(parent_id: &str, key: &str) -> String {
    format!("{parent_id}{CHILD_ID_SEPARATOR}{key}")
}

/// One live parent row, as the sink reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRow {
    /// The parent's id.
    pub id: String,
    /// When the sink last wrote the row (RFC 3339), if known.
    pub written_at: Option<String>,
    /// The newest `date_modified` among the child rows filed under this parent, if any.
    pub child_high_water: Option<String>,
}

/// A child entity's bookmark, stored as its `sync_state` bookmark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildBookmark {
    /// Parents written at or after this time are visited by the next run; `None`: every parent.
    #[serde(default)]
    pub visit_since: Option<String>,
    /// The run in progress, if one was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<ChildRun>,
}

/// A per-parent run in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRun {
    /// This run visits the parents written at or after this time (`None`: every parent).
    #[serde(default)]
    pub since: Option<String>,
    /// When this run listed the parents: the next run's [`ChildBookmark::visit_since`].
    pub listed_at: String,
    /// Every parent up to this id (in id order) is done.
    #[serde(default)]
    pub done_through: Option<String>,
    /// The parent whose list was being read, and where.
    #[serde(default)]
    pub current: Option<ParentChain>,
}

/// One parent's scan in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentChain {
    /// The parent's id.
    pub parent: String,
    /// The offset scan's bookmark.
    pub bookmark: Bookmark,
}

impl ChildBookmark {
    /// Parses a stored bookmark.
    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("unreadable per-parent bookmark: {e}"))
    }
    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bookmarks serialize")
    }
}

#[derive(Debug)]
struct Walk {
    phase: Phase,
    /// The parents to visit, in id order, and the one being read.
    parents: Vec<ParentRow>,
    pos: usize,
    cursor: Box<Cursor>,
    done: u64,
}

#[derive(Debug)]
enum Stage {
    OpenStaging,
    Walk(Walk),
    SaveBookmark(String),
    SwapStaging(String),
    StartReconcile,
    FinishReconcile,
    Incomplete { seen: u64, expected: u64 },
    Done,
}

/// One child entity's run. Loop on [`ChildPlan::next`] as with an [`EntityPlan`](super::EntityPlan).
#[derive(Debug)]
pub struct ChildPlan {
    entity: &'static Entity,
    base: Url,
    cursor_options: CursorOptions,
    mode: RunMode,
    reconcile: bool,
    /// Every live parent, in id order.
    parents: Vec<ParentRow>,
    /// The bookmark the run started from (`visit_since` is kept until the run ends).
    visit_since: Option<String>,
    run: Option<ChildRun>,
    chains: usize,
    /// The caller's `now` at the latest step that passed one (scans' `started_at`).
    now: OffsetDateTime,
    stage: Stage,
}

impl ChildPlan {
    /// Plans `entity`'s run (an entity with a parent) over the live `parents`.
    pub fn new(
        entity: &'static Entity,
        base: &Url,
        stored: Option<&StoredState>,
        mut parents: Vec<ParentRow>,
        options: &SyncOptions,
        now: OffsetDateTime,
    ) -> Result<Self, PlanError> {
        parents.sort_by(|a, b| a.id.cmp(&b.id));
        let mode = if options.full {
            RunMode::Full
        } else if stored.and_then(|s| s.bookmark.as_ref()).is_some() {
            RunMode::Incremental
        } else {
            RunMode::Initial
        };
        let mut plan = Self {
            entity,
            base: base.clone(),
            cursor_options: options.cursor(),
            mode,
            reconcile: reconcile_due(options, stored, now),
            chains: parents.len(),
            parents,
            visit_since: None,
            run: None,
            now,
            stage: Stage::OpenStaging,
        };
        if !options.full {
            let bookmark = plan.parse(stored.and_then(|s| s.bookmark.as_deref()))?;
            plan.start_walk(bookmark, Phase::Sync, now);
        }
        Ok(plan)
    }

    /// How this run goes.
    pub fn mode(&self) -> RunMode {
        self.mode
    }

    /// Whether this run reconciles deletes after its pages.
    pub fn reconciles(&self) -> bool {
        self.reconcile
    }

    /// The parents this run visits (one chain each), and the live parents there are.
    pub fn chains(&self) -> (usize, usize) {
        (self.chains, self.parents.len())
    }

    /// What to do next.
    pub fn next(&self) -> Result<Next, PlanError> {
        Ok(match &self.stage {
            Stage::OpenStaging => Next::OpenStaging,
            Stage::Walk(_) => Next::Fetch,
            Stage::SaveBookmark(b) => Next::SaveBookmark { bookmark: b.clone() },
            Stage::SwapStaging(b) => Next::SwapStaging { bookmark: b.clone() },
            Stage::StartReconcile => Next::StartReconcile,
            Stage::FinishReconcile => Next::FinishReconcile,
            &Stage::Incomplete { seen, expected } => {
                return Err(PlanError::ScanIncomplete { entity: self.entity.name, seen, expected });
            }
            Stage::Done => Next::Done,
        })
    }

    /// The parent whose list is being read, if any.
    pub fn current_parent(&self) -> Option<&str> {
        match &self.stage {
            Stage::Walk(w) => w.parents.get(w.pos).map(|p| p.id.as_str()),
            _ => None,
        }
    }

    /// The URL of the page to fetch ([`Next::Fetch`]).
    pub fn request_url(&self) -> Result<Url, PlanError> {
        match &self.stage {
            Stage::Walk(w) => Ok(w.cursor.request_url()?),
            _ => Err(self.out_of_order("request_url")),
        }
    }

    /// Takes in the response to [`ChildPlan::request_url`].
    pub fn page(&mut self, url: &Url, response: &HttpResponse) -> Result<PageOutcome, PlanError> {
        let entity = self.entity.name;
        let Stage::Walk(walk) = &mut self.stage else { return Err(PlanError::OutOfOrder { entity, step: "page" }) };
        let mut page = parse_page(url, response)?;
        let keys = record_keys(&page, self.entity.key).map_err(|problem| PlanError::Record { entity, problem })?;
        let step = walk.cursor.advance(&page, &keys);
        let parent = walk.parents[walk.pos].id.clone();
        walk.done += keys.len() as u64;
        let phase = walk.phase;
        let finished = step == Step::Done;
        let incomplete = (finished && phase == Phase::Reconcile && !walk.cursor.saw_everything()).then(|| {
            let c = walk.cursor.counts();
            (c.read, c.last_count.unwrap_or_default())
        });
        let bookmark = walk.cursor.bookmark().clone();
        let done = walk.done;
        let commit = match phase {
            Phase::Reconcile => Commit::SeenIds(keys.into_iter().map(|k| child_row_id(&parent, &k.id)).collect()),
            Phase::Sync | Phase::Full => {
                let mut records = into_records(&mut page, keys);
                for r in &mut records {
                    r.id = child_row_id(&parent, &r.id);
                }
                let run = self.run.as_mut().expect("a walk has a run");
                if finished {
                    run.done_through = Some(parent.clone());
                    run.current = None;
                } else {
                    run.current = Some(ParentChain { parent: parent.clone(), bookmark });
                }
                Commit::Records { records, bookmark: String::new() }
            }
        };
        if let Some((seen, expected)) = incomplete {
            self.stage = Stage::Incomplete { seen, expected };
        } else if finished {
            self.next_parent();
        }
        // A page's bookmark is taken after the walk moved on: the last page of the last parent
        // commits the finished run, so a run killed right after it does not redo anything.
        let commit = match commit {
            Commit::Records { records, .. } => Commit::Records { records, bookmark: self.bookmark_now() },
            other => other,
        };
        Ok(PageOutcome { phase, commit, done, expected: None })
    }

    /// The bookmark with no rows was stored ([`Next::SaveBookmark`]).
    pub fn saved(&mut self) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::SaveBookmark(_)) {
            return Err(self.out_of_order("saved"));
        }
        self.stage = if self.reconcile { Stage::StartReconcile } else { Stage::Done };
        Ok(())
    }

    /// The staging table is open ([`Next::OpenStaging`]); `resume` is the staging bookmark
    /// of an interrupted `--full` run.
    pub fn staging_opened(&mut self, resume: Option<&str>, now: OffsetDateTime) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::OpenStaging) {
            return Err(self.out_of_order("staging_opened"));
        }
        let bookmark = self.parse(resume)?;
        self.now = now;
        self.start_walk(bookmark, Phase::Full, now);
        Ok(())
    }

    /// The staging rows were swapped in ([`Next::SwapStaging`]).
    pub fn staging_swapped(&mut self) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::SwapStaging(_)) {
            return Err(self.out_of_order("staging_swapped"));
        }
        self.stage = if self.reconcile { Stage::StartReconcile } else { Stage::Done };
        Ok(())
    }

    /// The set of ids seen is ready ([`Next::StartReconcile`]): every live parent's ids
    /// are scanned next.
    pub fn reconcile_started(&mut self, now: OffsetDateTime) -> Result<(), PlanError> {
        if !matches!(self.stage, Stage::StartReconcile) {
            return Err(self.out_of_order("reconcile_started"));
        }
        self.now = now;
        let parents = self.parents.clone();
        self.stage = match parents.first() {
            None => Stage::FinishReconcile,
            Some(first) => {
                let cursor = Cursor::id_scan(self.entity, &self.base, self.cursor_options, now).under_parent(&first.id);
                Stage::Walk(Walk { phase: Phase::Reconcile, parents, pos: 0, cursor: Box::new(cursor), done: 0 })
            }
        };
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

    fn parse(&self, stored: Option<&str>) -> Result<Option<ChildBookmark>, PlanError> {
        stored
            .map(ChildBookmark::from_json)
            .transpose()
            .map_err(|problem| PlanError::Bookmark { entity: self.entity.name, problem })
    }

    /// Starts (or resumes) the walk over the parents to visit.
    fn start_walk(&mut self, bookmark: Option<ChildBookmark>, phase: Phase, now: OffsetDateTime) {
        let full = phase == Phase::Full;
        let (visit_since, run) = match bookmark {
            Some(b) => (b.visit_since, b.run),
            None => (None, None),
        };
        let run = run.unwrap_or_else(|| ChildRun {
            since: if full { None } else { visit_since.clone() },
            listed_at: rfc3339(now),
            done_through: None,
            current: None,
        });
        let to_visit: Vec<ParentRow> = self
            .parents
            .iter()
            .filter(|p| written_since(p, run.since.as_deref()))
            .filter(|p| run.done_through.as_ref().is_none_or(|d| p.id > *d))
            .cloned()
            .collect();
        self.chains = to_visit.len();
        self.visit_since = visit_since;
        self.run = Some(run);
        match to_visit.first() {
            Some(first) => {
                let cursor = Box::new(self.parent_cursor(first, full, now));
                self.stage = Stage::Walk(Walk { phase, parents: to_visit, pos: 0, cursor, done: 0 });
            }
            None => self.stage = self.after_walk(phase),
        }
    }

    /// The scan of one parent's list: resumed where an interrupted run left it, else filtered
    /// from the newest child change already held (see the module docs).
    fn parent_cursor(&self, parent: &ParentRow, full: bool, now: OffsetDateTime) -> Cursor {
        let resume = self.run.as_ref().and_then(|r| r.current.as_ref()).filter(|c| c.parent == parent.id);
        let bookmark = match resume {
            Some(c) => c.bookmark.clone(),
            None => {
                let since = match (&parent.child_high_water, full) {
                    (Some(hw), false) => Some(restart_point(Some(hw), self.cursor_options.overlap)),
                    _ => None,
                };
                Bookmark::Offset { since, offset: 0, started_at: rfc3339(now), high_water: None }
            }
        };
        Cursor::resume(self.entity, &self.base, Some(bookmark), self.cursor_options, now).under_parent(&parent.id)
    }

    fn next_parent(&mut self) {
        let Stage::Walk(walk) = &mut self.stage else { return };
        walk.pos += 1;
        let phase = walk.phase;
        match walk.parents.get(walk.pos).cloned() {
            Some(next) => {
                let cursor = match phase {
                    Phase::Reconcile => {
                        Cursor::id_scan(self.entity, &self.base, self.cursor_options, self.now).under_parent(&next.id)
                    }
                    _ => self.parent_cursor(&next, phase == Phase::Full, self.now),
                };
                if let Stage::Walk(walk) = &mut self.stage {
                    *walk.cursor = cursor;
                }
            }
            None => self.stage = self.after_walk(phase),
        }
    }

    /// What follows the last parent of a phase.
    fn after_walk(&self, phase: Phase) -> Stage {
        match phase {
            Phase::Sync => Stage::SaveBookmark(self.finished_bookmark()),
            Phase::Full => Stage::SwapStaging(self.finished_bookmark()),
            Phase::Reconcile => Stage::FinishReconcile,
        }
    }

    /// The bookmark to commit now: the run in progress, or the finished run's.
    fn bookmark_now(&mut self) -> String {
        match &self.stage {
            Stage::Walk(_) => ChildBookmark { visit_since: self.visit_since.clone(), run: self.run.clone() }.to_json(),
            Stage::SaveBookmark(b) | Stage::SwapStaging(b) => {
                let b = b.clone();
                // The last page carries the finished bookmark: nothing is left to save.
                if matches!(self.stage, Stage::SaveBookmark(_)) {
                    self.stage = if self.reconcile { Stage::StartReconcile } else { Stage::Done };
                }
                b
            }
            _ => self.finished_bookmark(),
        }
    }

    fn finished_bookmark(&self) -> String {
        let listed_at = self.run.as_ref().map(|r| r.listed_at.clone());
        ChildBookmark { visit_since: listed_at, run: None }.to_json()
    }

    fn out_of_order(&self, step: &'static str) -> PlanError {
        PlanError::OutOfOrder { entity: self.entity.name, step }
    }
}

/// Whether `parent` was written at or after `since` (every parent without a `since`; a write
/// time that does not parse counts as written).
fn written_since(parent: &ParentRow, since: Option<&str>) -> bool {
    let Some(since) = since.and_then(parse_time) else { return true };
    match parent.written_at.as_deref().and_then(parse_time) {
        Some(written) => written >= since,
        None => true,
    }
}
