//! Running a partitioned scan: the probes core asks for, then its chains side by side. Every
//! decision (whether to split, where the cuts are, what a chain keeps, when it ends, the final
//! bookmark) is core's ([`skysync_core::sync::partition`]).
//!
//! Each page is committed together with the whole chain table as the entity's bookmark (the
//! staging bookmark in a `--full` resync). The table is only changed while the sink is held, and
//! only after the commit succeeded, so the stored table always says exactly which pages of every
//! chain are in the database.

use std::sync::Mutex as StdMutex;

use skysync_core::sync::partition::{ChainScan, Pace, PartitionTable, Split, probe_count, split};
use skysync_core::sync::{Entity, Phase, Step};

use super::{Engine, EntityError, EntityReport, FetchedAhead, row};
use crate::sink::{Row, Target};

impl Engine<'_> {
    /// Asks core whether to split the rest of a scan after its first page (the page's
    /// bookmark it committed: its list `count` and the records it had, fetched in `latency`).
    pub(super) fn split_of(
        &self,
        entity: &'static Entity,
        bookmark: &str,
        (expected, read): (Option<u64>, u64),
        latency: std::time::Duration,
    ) -> Option<Split> {
        let pace = Pace { rate: self.options.rate_limit, latency };
        let cap = self.options.partitions;
        split(entity, &self.base, &self.sync, bookmark, expected, read, pace, cap, self.clock.now())
    }

    /// Runs the probes of `split` side by side and lays out its chains (`None` keeps one
    /// chain); with the HTTP calls the probes took, answered or not.
    pub(super) async fn probe(&self, split: Split) -> (Result<Option<PartitionTable>, EntityError>, u64) {
        let probes = split.probe_urls();
        let answers = futures::future::join_all(probes.iter().map(|url| self.fetch_counted(url))).await;
        let calls = answers.iter().map(|(_, calls)| calls).sum();
        let counts = probes
            .iter()
            .zip(answers)
            .map(|(url, (answer, _))| Ok(probe_count(url, &answer?).map_err(skysync_core::sync::PlanError::from)?))
            .collect::<Result<Vec<_>, EntityError>>();
        (counts.map(|counts| split.finish(&counts)), calls)
    }

    /// Runs every open chain of `table` to its end, side by side; returns the final bookmark.
    /// `expected` is the scan's record count for progress, when known.
    pub(super) async fn run_chains(
        &self,
        entity: &'static Entity,
        table: PartitionTable,
        target: Target,
        expected: Option<u64>,
        report: &mut EntityReport,
    ) -> Result<String, EntityError> {
        let shared = StdMutex::new(report);
        let mut table = table;
        loop {
            let last = table.partitions.len() - 1;
            let scans = table.open_chains(entity, &self.base, &self.sync);
            let shared_table = StdMutex::new(table);
            let ends = futures::future::join_all(
                scans.into_iter().map(|scan| self.chain(entity, scan, &shared_table, target, expected, &shared)),
            )
            .await;
            table = shared_table.into_inner().unwrap_or_else(|p| p.into_inner());
            // Every chain ran to its end or its own error; the first error is the entity's.
            let ended = ends.into_iter().collect::<Result<Vec<(usize, bool)>, _>>()?;
            // The open-ended chain must be the last to end (see core's `reopen_last_chain`).
            if ended.contains(&(last, true)) {
                return Ok(table.final_bookmark());
            }
            table.reopen_last_chain();
        }
    }

    /// One chain: fetch, keep its range, commit the rows with the updated table. Returns the
    /// chain's index and whether it was the last of the table to end.
    async fn chain(
        &self,
        entity: &'static Entity,
        mut scan: ChainScan,
        table: &StdMutex<PartitionTable>,
        target: Target,
        expected: Option<u64>,
        report: &StdMutex<&mut EntityReport>,
    ) -> Result<(usize, bool), EntityError> {
        let phase = if target == Target::Staging { Phase::Full } else { Phase::Sync };
        // The chain's next page, fetched while the last one was committed.
        let mut ahead: Option<FetchedAhead> = None;
        loop {
            self.check_stop()?;
            if !lock(table).runs(&scan) {
                // The list was met out of date order and the table folded into one chain.
                return Ok((scan.index(), false));
            }
            let url = scan.request_url()?;
            let answer = match ahead.take().filter(|a| a.url == url) {
                Some(a) => a.answer,
                None => {
                    let (answer, calls) = self.fetch_counted(&url).await;
                    lock(report).requests += calls;
                    answer
                }
            };
            let (records, step) = scan.page(&url, &answer?)?;
            let rows: Vec<Row> = records.into_iter().map(row).collect();
            // Chains share one sink: while this page waits for it and is written, the chain's
            // next page is on its way (pages are still committed in order, each with the table).
            let next_url = if step == Step::Done { None } else { Some(scan.request_url()?) };
            let commit = async {
                let mut sink = self.sink.lock().await;
                let mut next = lock(table).clone();
                next.record(&scan);
                let commit = sink.commit_page(entity.name, target, &rows, &next.to_json(), self.clock.now()).await?;
                let all_ended = next.finished();
                *lock(table) = next;
                drop(sink);
                // Reported as soon as it is in, not after the page fetched meanwhile.
                let (records, pages) = {
                    let mut r = lock(report);
                    r.committed(target, commit, rows.len());
                    (r.records, r.pages)
                };
                self.progress.page(entity, phase, records, pages, expected);
                Ok::<_, EntityError>(all_ended)
            };
            let (all_ended, fetched) = futures::join!(commit, self.fetch_ahead(next_url));
            if let Some(a) = &fetched {
                lock(report).requests += a.calls;
            }
            let all_ended = all_ended?;
            ahead = fetched;
            if step == Step::Done {
                return Ok((scan.index(), all_ended));
            }
        }
    }

    /// Stores the end of a finished partitioned scan: the live bookmark, or the swap of a `--full`
    /// resync's staging rows.
    pub(super) async fn finish_chains(
        &self,
        entity: &'static Entity,
        target: Target,
        bookmark: &str,
        report: &mut EntityReport,
    ) -> Result<(), EntityError> {
        match target {
            Target::Live => self.save_bookmark(entity, bookmark).await,
            Target::Staging => self.swap_staging(entity, bookmark, report).await,
        }
    }
}

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
