//! Running a per-parent list (event participants): core's [`ChildPlan`] against the API and the
//! sink, one chain per parent it chooses to visit. Each page's rows are committed with the
//! child's bookmark (which parents are done, where the current one stands), so a killed run
//! resumes at the page it was on. Every decision (which parents, which filter, what a page
//! commits) is core's ([`skysync_core::sync::parent`]).

use skysync_core::catalog::find;
use skysync_core::sync::{ChildPlan, Commit, Entity, Next, Phase, StoredState};

use super::{Engine, EntityError, EntityReport, row};
use crate::sink::{Row, Target};

/// Why a per-parent list cannot run: its parent entity was never synced into this sink.
pub(crate) fn parent_missing(entity: &Entity, parent: &str) -> String {
    format!(
        "{}: its parent entity {parent} was never synced into this database; sync {parent} first, or both \
         together (`skysync sync {parent} {}`)",
        entity.name, entity.name
    )
}

impl Engine<'_> {
    /// Runs `entity`'s per-parent plan to its end.
    pub(super) async fn sync_children(
        &self,
        entity: &'static Entity,
        stored: Option<StoredState>,
        report: &mut EntityReport,
    ) -> Result<(), EntityError> {
        let parent = entity.parent.and_then(|p| find(p.entity)).expect("a child entity names a catalog parent");
        let parents = {
            let mut sink = self.sink.lock().await;
            if sink.state(parent.name).await?.is_none_or(|s| s.last_run_at.is_none()) {
                return Err(EntityError::NoParent(parent_missing(entity, parent.name)));
            }
            sink.parent_rows(parent.name, entity.name).await?
        };
        let mut plan = ChildPlan::new(entity, &self.base, stored.as_ref(), parents, &self.sync, self.clock.now())?;
        report.parent_chains = Some(plan.chains());
        loop {
            match plan.next()? {
                Next::OpenStaging => {
                    let resume = self.sink.lock().await.begin_full(entity.name).await?;
                    plan.staging_opened(resume.as_deref(), self.clock.now())?;
                    report.parent_chains = Some(plan.chains());
                }
                Next::Fetch => {
                    self.check_stop()?;
                    let url = plan.request_url()?;
                    let response = self.fetch(&url, report).await?;
                    let outcome = plan.page(&url, &response)?;
                    drop(response);
                    match outcome.commit {
                        Commit::Records { records, bookmark } => {
                            let target = if outcome.phase == Phase::Full { Target::Staging } else { Target::Live };
                            let rows: Vec<Row> = records.into_iter().map(row).collect();
                            let mut sink = self.sink.lock().await;
                            let commit =
                                sink.commit_page(entity.name, target, &rows, &bookmark, self.clock.now()).await?;
                            report.committed(target, commit, rows.len());
                        }
                        Commit::SeenIds(ids) => {
                            self.sink.lock().await.add_seen_ids(entity.name, &ids).await?;
                            report.pages += 1;
                        }
                    }
                    self.progress.page(entity, outcome.phase, outcome.done, report.pages, outcome.expected);
                }
                Next::SaveBookmark { bookmark } => {
                    self.save_bookmark(entity, &bookmark).await?;
                    plan.saved()?;
                }
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
}
