//! Partitioned initial and full syncs: one long `sort_token` chain split into K chains that run
//! side by side, as values (no I/O, no clock).
//!
//! When pages are slow (Blackbaud's 5,000-record pages take seconds) one chain leaves the rate
//! limit idle. After the first page of an initial or `--full` scan the caller asks [`split`]
//! whether to split the rest. If so, a few cheap probes (`last_modified=t&limit=1`, read for
//! their `count`) sample the distribution of `date_modified` over the rest, and
//! [`Split::finish`] picks cut points t_1 < … < t_(K-1) near its quantiles:
//!
//! - chain 0 continues the first page's `next_link` and stops before t_1;
//! - chain i starts at `last_modified=t_i`, follows its own `sort_token`, drops rows with
//!   `date_modified >= t_(i+1)` and stops at the first page that reaches t_(i+1);
//! - the last chain is open-ended and ends after every other chain (it reads on from its end if
//!   it finished first: [`PartitionTable::reopen_last_chain`]); its end is the incremental
//!   bookmark, exactly as with one chain ([`PartitionTable::final_bookmark`]).
//!
//! Chains rely on Blackbaud's documented order: a `last_modified` list is "ascending by
//! last-modified", so a chain that meets a row at or past its end has read every row before it (the
//! simulator keeps the same order by default). The client checks that order rather than trusting
//! it: a first page out of order is not split ([`in_date_order`]), and a chain that meets a record
//! older than one before it (in its page, or than its high-water mark) folds the whole table into
//! one chain that reads the scan again from the beginning ([`PartitionTable::record`]). One
//! `sort_token` chain is complete whatever the order; rows read twice are idempotent upserts, so
//! the cost is at most the calls of one more full scan. (A disorder that no chain reads, hidden
//! exactly behind a chain's end, goes unseen: the check covers every page the scan reads.) Nothing is missed: a record changed during the run
//! moves past every cut into the last chain; a record read twice is an idempotent upsert. Cuts are times, so
//! records sharing one `date_modified` always land in one chain: a tie block (a display-name
//! change that bumps thousands of records to one timestamp) that holds several quantiles leaves
//! fewer, larger chains rather than splitting it.
//!
//! Each chain's position is kept in a [`PartitionTable`], stored (as JSON) as the entity's
//! bookmark with every page's rows, so a killed run resumes every chain where it was. The table
//! never parses as a [`Bookmark`] nor a bookmark as a table.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use super::bookmark::{BEGINNING_OF_TIME, Bookmark, parse_time, rfc3339};
use super::catalog::{Entity, Incremental};
use super::cursor::{Cursor, Step};
use super::page::{PageError, Record, into_records, parse_keyed_page, parse_page};
use super::plan::{PlanError, SyncOptions};
use crate::http::HttpResponse;

/// Most chains one entity is split into unless configured otherwise.
pub const DEFAULT_PARTITIONS: usize = 8;
/// The highest cap accepted.
pub const MAX_PARTITIONS: usize = 32;
/// How fast the API can be called, for choosing K.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Client-side pace in calls per second; `0` = unpaced.
    pub rate: f64,
    /// How long the first page took.
    pub latency: Duration,
}

/// How many chains the rest of a scan is split into: enough to keep `rate × latency` calls in
/// flight, at most `cap`, and no more than pay for themselves (`worth_splitting`).
pub fn chains_for(pages_left: u64, pace: Pace, cap: usize) -> usize {
    let by_rate = if pace.rate > 0.0 && pace.rate.is_finite() {
        // Calls the pace allows while one chain waits for a page: a second chain pays off only
        // when a page takes at least two pacing intervals.
        (pace.rate * pace.latency.as_secs_f64()).floor().max(1.0) as usize
    } else {
        usize::MAX
    };
    let most = cap.min(MAX_PARTITIONS).min(by_rate);
    (2..=most).rev().find(|&k| worth_splitting(pages_left, k)).unwrap_or(1)
}

/// Whether `chains` chains over `pages_left` pages save at least one page's wait per call they
/// add. Each chain beyond the first costs about two calls (its probe and the page that overshoots
/// its end); split, the rest takes one round trip (the probes) and then as long as the longest
/// chain, against `pages_left` pages one after another. So five pages left stay one chain (a
/// probe round and three pages would save one page's wait for two calls), eleven go four ways.
fn worth_splitting(pages_left: u64, chains: usize) -> bool {
    let k = chains as u64;
    let split = 1 + pages_left.div_ceil(k);
    pages_left.saturating_sub(split) >= 2 * (k - 1)
}

/// A split decided on, waiting for its probes' counts.
#[derive(Debug, Clone)]
pub struct Split {
    entity: &'static Entity,
    base: Url,
    limit: u32,
    chains: usize,
    /// The first page's chain: where chain 0 continues.
    first: (String, String),
    /// Records after the first page.
    remaining: u64,
    /// Probe times, increasing.
    probes: Vec<String>,
}

/// Whether (and how) to split the rest of a scan after its first page.
///
/// `bookmark` is what the first page committed, `count` its list `count`, `read` its records.
/// Only `sort_token` lists split, and only when the page had a parseable newest `date_modified`
/// and K ([`chains_for`]) is at least 2. `now` bounds the probes.
#[allow(clippy::too_many_arguments)]
pub fn split(
    entity: &'static Entity,
    base: &Url,
    options: &SyncOptions,
    bookmark: &str,
    count: Option<u64>,
    read: u64,
    pace: Pace,
    cap: usize,
    now: OffsetDateTime,
) -> Option<Split> {
    if entity.incremental != Incremental::SortToken || cap < 2 {
        return None;
    }
    let Ok(Bookmark::Chain { next_link, high_water: Some(high_water) }) = Bookmark::from_json(bookmark) else {
        return None;
    };
    let from = parse_time(&high_water)?;
    if from >= now {
        return None;
    }
    let limit = options.page_size.unwrap_or(entity.max_limit).clamp(1, entity.max_limit);
    let remaining = count?.saturating_sub(read);
    let chains = chains_for(remaining.div_ceil(u64::from(limit)), pace, cap);
    if chains < 2 {
        return None;
    }
    // One probe per cut, evenly spaced in time; the counts then move, merge or drop the cuts.
    let m = chains - 1;
    let span = now - from;
    let probes = (1..=m).map(|j| rfc3339(from + span * (j as f64 / (m + 1) as f64))).collect();
    Some(Split { entity, base: base.clone(), limit, chains, first: (next_link, high_water), remaining, probes })
}

impl Split {
    /// Chains wanted (the table may end up with fewer).
    pub fn chains(&self) -> usize {
        self.chains
    }

    /// The probes to GET, in order: each asks for the `count` of records modified on or after
    /// one time (`limit=1`, so each is cheap).
    pub fn probe_urls(&self) -> Vec<Url> {
        self.probes
            .iter()
            .map(|t| Cursor::list_url(self.entity, &self.base, 1, &[("last_modified", t.as_str())]))
            .collect()
    }

    /// Takes in the probes' answers (in [`Split::probe_urls`] order) and lays out the chains;
    /// `None` when the counts leave nothing to split (one chain goes on).
    pub fn finish(self, counts: &[Option<u64>]) -> Option<PartitionTable> {
        let cuts = cut_points(&self.probes, counts, self.remaining, self.chains);
        if cuts.is_empty() {
            return None;
        }
        let (next_link, high_water) = self.first;
        let mut chains = vec![ChainState { next_link, high_water: Some(high_water), until: None, done: false }];
        for cut in cuts {
            chains.last_mut().expect("one chain").until = Some(cut.clone());
            let url = Cursor::list_url(self.entity, &self.base, self.limit, &[("last_modified", cut.as_str())]);
            chains.push(ChainState { next_link: url.to_string(), high_water: None, until: None, done: false });
        }
        Some(PartitionTable { partitions: chains, unordered: false })
    }
}

/// The cut times for `chains` chains over `remaining` records, from probes at `times` that
/// counted records modified on or after each. A cut is the probe nearest each quantile; cuts
/// that would leave an empty chain (a tie block holding several quantiles, no records between two
/// probes, or none before or after) are dropped, so fewer chains remain.
pub fn cut_points(times: &[String], counts: &[Option<u64>], remaining: u64, chains: usize) -> Vec<String> {
    let probes: Vec<(&String, u64)> =
        times.iter().zip(counts).filter_map(|(t, c)| c.map(|c| (t, c.min(remaining)))).collect();
    let mut picked: Vec<usize> = Vec::new();
    for q in 1..chains as u64 {
        let wanted_before = remaining * q / chains as u64;
        let best = probes.iter().enumerate().min_by_key(|(_, (_, c))| (remaining - c).abs_diff(wanted_before));
        if let Some((j, _)) = best {
            picked.push(j);
        }
    }
    picked.sort_unstable();
    picked.dedup();
    let mut cuts = Vec::new();
    let mut before = remaining;
    for j in picked {
        let (t, c) = probes[j];
        // A chain needs records: some before this cut (since the previous one), some after.
        if c < before && c > 0 {
            cuts.push(t.clone());
            before = c;
        }
    }
    cuts
}

/// One chain's position, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainState {
    /// The next URL, verbatim.
    pub next_link: String,
    /// The newest `date_modified` the chain read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water: Option<String>,
    /// Rows modified at or after this belong to a later chain; `None` for the last chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The chain has read its whole range.
    #[serde(default)]
    pub done: bool,
}

/// Every chain of a partitioned scan: the entity's bookmark while the scan runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionTable {
    /// The chains, in time order; the last one is open-ended.
    pub partitions: Vec<ChainState>,
    /// The list was seen out of `date_modified` order and the scan was folded into one chain
    /// from the beginning; chains of the earlier table no longer count.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unordered: bool,
}

/// Whether `dates` (a page's `date_modified` values, in list order) never go back in time, also
/// not behind `after` (the newest one read before them). Values that do not parse are skipped.
pub fn in_date_order<'a>(after: Option<&str>, dates: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    let mut newest = after.and_then(parse_time);
    for t in dates.into_iter().flatten().filter_map(parse_time) {
        if newest.is_some_and(|n| t < n) {
            return false;
        }
        newest = Some(t);
    }
    true
}

impl PartitionTable {
    /// The table stored in `bookmark`, or `None` when it holds a plain [`Bookmark`].
    pub fn from_json(bookmark: &str) -> Option<Self> {
        serde_json::from_str::<Self>(bookmark).ok().filter(|t| !t.partitions.is_empty())
    }

    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("partition tables serialize")
    }

    /// Scans of the chains still to run.
    pub fn open_chains(&self, entity: &'static Entity, base: &Url, options: &SyncOptions) -> Vec<ChainScan> {
        self.partitions
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.done)
            .map(|(index, c)| ChainScan::new(entity, base, options, index, c, self.unordered))
            .collect()
    }

    /// Notes where `scan` stands (after its page was read, before it is committed with the table).
    /// A scan that met its list out of order folds the table into one chain that starts the scan
    /// again from the beginning; scans of the table before the fold are ignored from then on.
    pub fn record(&mut self, scan: &ChainScan) {
        if scan.unordered_table != self.unordered {
            return;
        }
        if scan.out_of_order {
            let url = Cursor::list_url(
                scan.cursor.entity(),
                &scan.base,
                scan.cursor.limit(),
                &[("last_modified", BEGINNING_OF_TIME)],
            );
            self.partitions =
                vec![ChainState { next_link: url.to_string(), high_water: None, until: None, done: false }];
            self.unordered = true;
            return;
        }
        if let Some(c) = self.partitions.get_mut(scan.index) {
            if let Bookmark::Chain { next_link, high_water } = scan.cursor.bookmark() {
                c.next_link.clone_from(next_link);
                c.high_water.clone_from(high_water);
            }
            c.done = scan.done;
        }
    }

    /// Marks the last chain open again. The last chain must end after every other one: a record
    /// changed while a bounded chain runs moves past every cut into the last chain's range, so a
    /// last chain that ended first reads on from its end once the others are done.
    pub fn reopen_last_chain(&mut self) {
        if let Some(last) = self.partitions.last_mut() {
            last.done = false;
        }
    }

    /// Whether every chain has read its range.
    pub fn finished(&self) -> bool {
        self.partitions.iter().all(|c| c.done)
    }

    /// The bookmark the next incremental run starts from: the last chain's, as with one chain.
    /// If that chain read nothing, its start stands in for the newest change seen.
    pub fn final_bookmark(&self) -> String {
        let (last, earlier) = self.partitions.split_last().expect("a table has chains");
        let high_water = last.high_water.clone().or_else(|| earlier.last().and_then(|c| c.until.clone()));
        Bookmark::Chain { next_link: last.next_link.clone(), high_water }.to_json()
    }

    /// Whether `scan` belongs to this table as it stands: `false` once the table was folded into
    /// one chain after the scan started (the scan should stop).
    pub fn runs(&self, scan: &ChainScan) -> bool {
        scan.unordered_table == self.unordered
    }
}

/// One chain of a partitioned scan in progress.
#[derive(Debug, Clone)]
pub struct ChainScan {
    index: usize,
    cursor: Cursor,
    base: Url,
    until: Option<OffsetDateTime>,
    done: bool,
    /// The table it belongs to was already folded into one chain (no `until`, no order check).
    unordered_table: bool,
    /// The last page read went back in `date_modified`.
    out_of_order: bool,
}

impl ChainScan {
    fn new(
        entity: &'static Entity,
        base: &Url,
        options: &SyncOptions,
        index: usize,
        c: &ChainState,
        unordered_table: bool,
    ) -> Self {
        let bookmark = Bookmark::Chain { next_link: c.next_link.clone(), high_water: c.high_water.clone() };
        // `now` only matters to offset scans; a chain ignores it.
        let cursor = Cursor::resume(entity, base, Some(bookmark), options.cursor(), OffsetDateTime::UNIX_EPOCH);
        Self {
            index,
            cursor,
            base: base.clone(),
            until: c.until.as_deref().and_then(parse_time),
            done: false,
            unordered_table,
            out_of_order: false,
        }
    }

    /// The chain's place in its table.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Whether the chain has read its whole range.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Whether the last page went back in `date_modified` (the table is to be folded).
    pub fn out_of_order(&self) -> bool {
        self.out_of_order
    }

    /// The URL of the chain's next page.
    pub fn request_url(&self) -> Result<Url, PlanError> {
        Ok(self.cursor.request_url()?)
    }

    /// Takes in the response to [`ChainScan::request_url`]: the records of the chain's range
    /// (rows at or past its end are dropped: a later chain reads them), and whether it goes on.
    ///
    /// A page that goes back in `date_modified` ends the chain with all its records: the list is
    /// not in the order the cuts rely on, and [`PartitionTable::record`] folds the table.
    pub fn page(&mut self, url: &Url, response: &HttpResponse) -> Result<(Vec<Record>, Step), PlanError> {
        let entity = self.cursor.entity().name;
        let (mut page, keys) = parse_keyed_page(url, response, self.cursor.entity().key)?
            .map_err(|problem| PlanError::Record { entity, problem })?;
        if !self.unordered_table {
            let before = self.cursor.bookmark().high_water();
            if !in_date_order(before, keys.iter().map(|k| k.date_modified.as_deref())) {
                self.out_of_order = true;
                self.done = true;
                return Ok((into_records(&mut page, keys), Step::Done));
            }
        }
        let mut step = self.cursor.advance(&page, &keys);
        let mut records = into_records(&mut page, keys);
        if let Some(until) = self.until {
            let past = |r: &Record| r.date_modified.as_deref().and_then(parse_time).is_some_and(|t| t >= until);
            if records.iter().any(past) {
                records.retain(|r| !past(r));
                step = Step::Done;
            }
        }
        self.done = step == Step::Done;
        Ok((records, step))
    }
}

/// The `count` a probe answered, if any.
pub fn probe_count(url: &Url, response: &HttpResponse) -> Result<Option<u64>, PageError> {
    Ok(parse_page(url, response)?.count)
}
