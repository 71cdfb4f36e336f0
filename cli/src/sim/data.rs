//! The record store: compact per-record state, rendered to JSON only when served.
//!
//! Each entity is a [`Table`], built lazily on first use. Record `n` (1-based) has id `"n"`. A row
//! keeps its change version, `date_modified` (in 100 ns ticks), revision and flags: 24 bytes, so a
//! million constituents cost about 24 MB and no JSON is stored.
//!
//! Versions: the initial rows have versions `1..=n_initial` in id order, and their `date_modified`
//! strictly increases with id (spread over three years before the start day). Every later add or
//! modify takes the next version and the simulator's current time, which never goes backwards. So
//! version order is also `date_modified` order, and "version order from `v`" is the untouched
//! initial rows from `v` (a scan of the row vector) followed by a `BTreeMap` range over the changed
//! rows. `sort_token` paging is therefore a range query, never a full scan.

use std::collections::{BTreeMap, HashMap, HashSet};

use skysync_core::catalog::{CATALOG, Entity};

use super::rng::{SplitMix64, hash};

/// 100 ns ticks per second (Blackbaud timestamps carry 7 fractional digits).
pub(crate) const TICKS_PER_SEC: i64 = 10_000_000;
const DELETED: u8 = 1;
const INACTIVE: u8 = 2;
const DECEASED: u8 = 4;
/// Initial `date_modified` values span this long, ending at the anchor (start day, 00:00 UTC).
const INITIAL_SPAN_TICKS: i64 = 3 * 365 * 86_400 * TICKS_PER_SEC;
/// With [`DateShape::unordered_from`], initial rows are listed in reversed runs of this many.
pub(crate) const UNORDERED_RUN: u64 = 500;

/// How the initial rows' `date_modified` values relate to their list order (knobs; the default
/// is Blackbaud's documented shape: strictly ascending, no two alike).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DateShape {
    /// This many initial rows in the middle of the list share one `date_modified`.
    pub(crate) ties: u64,
    /// From this initial row (0-based) on, the list order is not ascending by `date_modified`:
    /// runs of [`UNORDERED_RUN`] rows are listed newest first.
    pub(crate) unordered_from: Option<u64>,
}

/// How many records each entity starts with, given `records` constituents.
pub(crate) fn initial_count(entity: &str, records: u64) -> u64 {
    let frac = |num: u64, den: u64| (records * num).div_ceil(den);
    let small = |den: u64| if records == 0 { 0 } else { frac(1, den).max(10) };
    match entity {
        "constituents" | "addresses" | "email_addresses" | "phones" | "constituent_custom_fields" => records,
        "gift_custom_fields" => frac(1, 2),
        "gifts" => frac(2, 1),
        "relationships" | "constituent_codes" | "notes" | "actions" => frac(1, 2),
        "online_presences" | "educations" => frac(1, 4),
        "memberships" | "opportunities" => frac(1, 10),
        "appeals" | "campaigns" | "funds" => small(50),
        "packages" => small(25),
        "events" | "projects" => small(100),
        "event_participants" => small(100) * 6,
        "journal_entry_batches" => small(20),
        _ => frac(1, 10),
    }
}

/// The compact state of one record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) version: u64,
    pub(crate) modified: i64,
    pub(crate) revision: u32,
    flags: u8,
}

impl Row {
    pub(crate) fn deleted(&self) -> bool {
        self.flags & DELETED != 0
    }
    pub(crate) fn inactive(&self) -> bool {
        self.flags & INACTIVE != 0
    }
    pub(crate) fn deceased(&self) -> bool {
        self.flags & DECEASED != 0
    }
}

/// Which hidden rows a list includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Visibility {
    pub(crate) include_inactive: bool,
    pub(crate) include_deceased: bool,
}

impl Visibility {
    fn shows(self, row: &Row) -> bool {
        !row.deleted() && (self.include_inactive || !row.inactive()) && (self.include_deceased || !row.deceased())
    }
}

/// One list request, already validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageQuery {
    pub(crate) vis: Visibility,
    /// Order by change version (a `last_modified`/`sort_token` request) instead of by id.
    pub(crate) by_version: bool,
    /// `last_modified`, in ticks: only rows modified on or after it.
    pub(crate) since: Option<i64>,
    /// `sort_token`: only rows with a greater version.
    pub(crate) after_version: Option<u64>,
    pub(crate) offset: u64,
    pub(crate) limit: u64,
    /// List visibility lag: rows modified after this tick are not listed yet.
    pub(crate) hidden_after: Option<i64>,
    /// A per-parent list: only the rows of this parent (see [`parent_index`]).
    pub(crate) parent: Option<ParentFilter>,
}

/// The rows of one parent in a per-parent list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParentFilter {
    /// The parent's row index.
    pub(crate) index: u64,
    /// The parent entity's initial row count.
    pub(crate) parents: u64,
}

/// Which parent row (index) child row `idx` belongs to: child rows are dealt round the parent's
/// initial rows, so every initial parent has children and parents added later have none.
pub(crate) fn parent_index(idx: u64, parents: u64) -> u64 {
    idx % parents.max(1)
}

impl PageQuery {
    fn of_parent(&self, idx: u64) -> bool {
        self.parent.is_none_or(|p| parent_index(idx, p.parents) == p.index)
    }

    fn shows(&self, row: &Row) -> bool {
        self.vis.shows(row)
            && self.hidden_after.is_none_or(|cutoff| row.modified <= cutoff)
            && (!self.by_version || self.since.is_none_or(|since| row.modified >= since))
    }
}

/// One page of rows, plus what the envelope needs.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) count: u64,
    pub(crate) rows: Vec<(u64, Row, i64)>,
    /// Version to put in the next `sort_token` (by-version pages only).
    pub(crate) resume_version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct CursorKey {
    by_version: bool,
    vis: Visibility,
    start: u64,
    offset: u64,
}

/// One entity's records.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) entity: &'static Entity,
    pub(crate) index: usize,
    seed: u64,
    rows: Vec<Row>,
    n_initial: u64,
    /// Rows whose version is above `n_initial` (changed or added since the start): version → index.
    changed: BTreeMap<u64, u32>,
    /// Ticks → first version assigned at that tick, for versions above `n_initial`.
    times: BTreeMap<i64, u64>,
    next_version: u64,
    added_at: HashMap<u32, i64>,
    t_first: i64,
    step: i64,
    shape: DateShape,
    /// Live rows by (inactive, deceased) bits.
    live: [u64; 4],
    generation: u64,
    cursors: HashMap<CursorKey, (u64, u64)>,
    counts: HashMap<(bool, Visibility, u64), (u64, u64)>,
}

impl Table {
    /// Builds the initial rows of catalog entry `index`; `anchor` is the start day in ticks.
    pub(crate) fn new(index: usize, seed: u64, records: u64, anchor: i64, shape: DateShape) -> Self {
        let entity = &CATALOG[index];
        let n = initial_count(entity.name, records);
        let step = (INITIAL_SPAN_TICKS / n.max(1) as i64).max(1);
        let mut t = Table {
            entity,
            index,
            seed,
            rows: Vec::with_capacity(n as usize),
            n_initial: n,
            changed: BTreeMap::new(),
            times: BTreeMap::new(),
            next_version: n + 1,
            added_at: HashMap::new(),
            t_first: anchor - INITIAL_SPAN_TICKS,
            step,
            shape,
            live: [0; 4],
            generation: 0,
            cursors: HashMap::new(),
            counts: HashMap::new(),
        };
        for i in 0..n {
            let flags = t.initial_flags(i);
            let row = Row { version: i + 1, modified: t.initial_modified(i), revision: 0, flags };
            t.live[live_slot(&row)] += 1;
            t.rows.push(row);
        }
        t
    }

    fn initial_flags(&self, idx: u64) -> u8 {
        let h = hash(&[self.seed, self.index as u64, idx, 0xF1A6]);
        let mut flags = 0;
        if self.entity.include_inactive && h % 100 < 5 {
            flags |= INACTIVE;
        }
        if self.entity.include_deceased && (h >> 20) % 100 < 3 {
            flags |= DECEASED;
        }
        flags
    }

    /// `date_modified` of untouched initial row `idx`: strictly increasing in `idx`, unless the
    /// [`DateShape`] knobs say otherwise.
    fn initial_modified(&self, idx: u64) -> i64 {
        let n = self.n_initial;
        let mut slot = idx;
        if let Some(from) = self.shape.unordered_from.filter(|from| idx >= *from) {
            let run_start = from + (idx - from) / UNORDERED_RUN * UNORDERED_RUN;
            let run_end = (run_start + UNORDERED_RUN).min(n);
            slot = run_start + (run_end - 1 - idx);
        }
        let tie_start = n.saturating_sub(self.shape.ties) / 2;
        if self.shape.ties > 0 && (tie_start..tie_start + self.shape.ties).contains(&slot) {
            slot = tie_start;
        }
        self.time_slot(slot)
    }

    /// The `slot`-th initial time: strictly increasing in `slot`.
    fn time_slot(&self, slot: u64) -> i64 {
        let jitter = hash(&[self.seed, self.index as u64, slot, 0xD7]) % self.step as u64;
        self.t_first + slot as i64 * self.step + jitter as i64
    }

    /// Whether lists of this table come in `date_modified` order (what paging shortcuts rely on).
    fn ascending(&self) -> bool {
        self.shape.unordered_from.is_none_or(|from| from >= self.n_initial)
    }

    /// `date_added` of a row.
    pub(crate) fn date_added(&self, idx: u64, row: &Row) -> i64 {
        if let Some(t) = self.added_at.get(&(idx as u32)) {
            return *t;
        }
        let back = hash(&[self.seed, self.index as u64, idx, 0xADD]) % (400 * 86_400) as u64;
        self.initial_modified(idx).min(row.modified) - back as i64 * TICKS_PER_SEC
    }

    /// Number of rows ever created (ids `1..=len`).
    pub(crate) fn len(&self) -> u64 {
        self.rows.len() as u64
    }

    /// The live row with this id.
    pub(crate) fn get(&self, id: &str) -> Option<(u64, Row, i64)> {
        let idx = id.parse::<u64>().ok()?.checked_sub(1)?;
        let row = *self.rows.get(idx as usize)?;
        (!row.deleted()).then(|| (idx, row, self.date_added(idx, &row)))
    }

    /// Ids of all live rows, inactive and deceased included.
    pub(crate) fn live_ids(&self) -> Vec<String> {
        self.rows.iter().enumerate().filter(|(_, r)| !r.deleted()).map(|(i, _)| (i + 1).to_string()).collect()
    }

    pub(crate) fn live_count(&self) -> u64 {
        self.live.iter().sum()
    }

    fn touch(&mut self) {
        self.generation += 1;
        if self.cursors.len() > 256 {
            self.cursors.clear();
        }
        if self.counts.len() > 256 {
            self.counts.clear();
        }
    }

    fn take_version(&mut self, now: i64) -> u64 {
        let v = self.next_version;
        self.next_version += 1;
        self.times.entry(now).or_insert(v);
        v
    }

    /// Picks up to `count` distinct live rows at random.
    fn pick_live(&self, rng: &mut SplitMix64, count: u64) -> Vec<u64> {
        let live = self.live_count();
        if count.saturating_mul(4) >= live {
            let mut all: Vec<u64> = (0..self.len()).filter(|i| !self.rows[*i as usize].deleted()).collect();
            let take = (count as usize).min(all.len());
            for i in 0..take {
                let j = i + rng.below((all.len() - i) as u64) as usize;
                all.swap(i, j);
            }
            all.truncate(take);
            return all;
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while (out.len() as u64) < count {
            let i = rng.below(self.len());
            if !self.rows[i as usize].deleted() && seen.insert(i) {
                out.push(i);
            }
        }
        out
    }

    /// Changes `count` random live rows (new version, time and revision); returns their ids.
    pub(crate) fn modify(&mut self, rng: &mut SplitMix64, count: u64, now: i64) -> Vec<String> {
        let picked = self.pick_live(rng, count);
        self.modify_rows(&picked, now)
    }

    /// Live row indexes whose parent (see [`parent_index`]) is `parent`.
    pub(crate) fn live_of_parent(&self, parent: ParentFilter) -> Vec<u64> {
        (0..self.len())
            .filter(|i| !self.rows[*i as usize].deleted() && parent_index(*i, parent.parents) == parent.index)
            .collect()
    }

    /// Changes the rows at these indexes (new version, time and revision); returns their ids.
    pub(crate) fn modify_rows(&mut self, picked: &[u64], now: i64) -> Vec<String> {
        for &idx in picked {
            let old = self.rows[idx as usize].version;
            if old > self.n_initial {
                self.changed.remove(&old);
            }
            let v = self.take_version(now);
            let row = &mut self.rows[idx as usize];
            row.version = v;
            row.modified = now;
            row.revision += 1;
            self.changed.insert(v, idx as u32);
        }
        self.touch();
        picked.iter().map(|i| (i + 1).to_string()).collect()
    }

    /// Creates `count` new rows; returns their ids.
    pub(crate) fn add(&mut self, count: u64, now: i64) -> Vec<String> {
        let mut ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let idx = self.len();
            let v = self.take_version(now);
            let row = Row { version: v, modified: now, revision: 0, flags: self.initial_flags(idx) };
            self.live[live_slot(&row)] += 1;
            self.rows.push(row);
            self.changed.insert(v, idx as u32);
            self.added_at.insert(idx as u32, now);
            ids.push((idx + 1).to_string());
        }
        self.touch();
        ids
    }

    /// Deletes `count` random live rows; returns their ids.
    pub(crate) fn delete(&mut self, rng: &mut SplitMix64, count: u64) -> Vec<String> {
        let picked = self.pick_live(rng, count);
        for &idx in &picked {
            let row = self.rows[idx as usize];
            self.live[live_slot(&row)] -= 1;
            if row.version > self.n_initial {
                self.changed.remove(&row.version);
            }
            self.rows[idx as usize].flags |= DELETED;
        }
        self.touch();
        picked.into_iter().map(|i| (i + 1).to_string()).collect()
    }

    /// First version whose `date_modified` is on or after `since` (or the next version to be
    /// assigned, when none is).
    fn first_version_since(&self, since: i64) -> u64 {
        let n = self.n_initial;
        if !self.ascending() {
            // No shortcut: every row is walked and the filter applied to each.
            return 1;
        }
        if n > 0 && self.initial_modified(n - 1) >= since {
            let (mut lo, mut hi) = (0, n - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.initial_modified(mid) >= since {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            return lo + 1;
        }
        self.times.range(since..).next().map_or(self.next_version, |(_, v)| *v)
    }

    /// Live rows in order from position `from` (an index, or a version), as (position, index).
    fn walk(&self, by_version: bool, from: u64) -> Box<dyn Iterator<Item = (u64, u64)> + '_> {
        if by_version {
            let initial = (from.max(1)..=self.n_initial).filter_map(move |v| {
                let row = &self.rows[(v - 1) as usize];
                (row.version == v && !row.deleted()).then_some((v, v - 1))
            });
            let changed = self.changed.range(from.max(self.n_initial + 1)..).map(|(v, i)| (*v, u64::from(*i)));
            Box::new(initial.chain(changed))
        } else {
            Box::new((from..self.len()).filter(move |i| !self.rows[*i as usize].deleted()).map(|i| (i, i)))
        }
    }

    /// Runs a list query. Sequential offset pages resume from a cached cursor instead of
    /// re-skipping `offset` rows, and counts are cached until the next change.
    ///
    /// With a visibility lag, what is listed changes with time alone, so neither cache is used.
    pub(crate) fn page(&mut self, q: &PageQuery) -> Page {
        let v0 = if q.by_version { q.since.map_or(1, |s| self.first_version_since(s)) } else { 0 };
        let start = match q.after_version {
            Some(t) if q.by_version => v0.max(t + 1),
            _ => v0,
        };
        // With a visibility lag (what is listed changes with time alone) or rows out of date
        // order (the `last_modified` filter applies row by row), no cache is used.
        // A per-parent list filters row by row too.
        let lagged = q.hidden_after.is_some() || !self.ascending() || q.parent.is_some();
        let count = if lagged {
            self.walk(q.by_version, v0)
                .filter(|(_, idx)| q.shows(&self.rows[*idx as usize]) && q.of_parent(*idx))
                .count() as u64
        } else {
            self.count(q.by_version, q.vis, v0)
        };
        let key = CursorKey { by_version: q.by_version, vis: q.vis, start, offset: q.offset };
        let (from, mut skip) = match self.cursors.get(&key) {
            Some((generation, pos)) if *generation == self.generation && !lagged => (*pos, 0),
            _ => (start, q.offset),
        };
        let mut rows = Vec::with_capacity(q.limit.min(10_000) as usize);
        let mut last_pos = None;
        for (pos, idx) in self.walk(q.by_version, from) {
            if rows.len() as u64 >= q.limit {
                break;
            }
            let row = self.rows[idx as usize];
            if !q.shows(&row) || !q.of_parent(idx) {
                continue;
            }
            last_pos = Some(pos);
            if skip > 0 {
                skip -= 1;
                continue;
            }
            rows.push((idx, row, self.date_added(idx, &row)));
        }
        if let Some(pos) = last_pos.filter(|_| !lagged) {
            let next = CursorKey { offset: q.offset + rows.len() as u64, ..key };
            self.cursors.insert(next, (self.generation, pos + 1));
        }
        let resume_version = match rows.last() {
            Some((_, row, _)) => row.version,
            None => start.saturating_sub(1),
        };
        Page { count, rows, resume_version }
    }

    fn count(&mut self, by_version: bool, vis: Visibility, v0: u64) -> u64 {
        if !by_version || v0 <= 1 {
            let [plain, inactive, deceased, both] = self.live;
            return plain
                + if vis.include_inactive { inactive } else { 0 }
                + if vis.include_deceased { deceased } else { 0 }
                + if vis.include_inactive && vis.include_deceased { both } else { 0 };
        }
        if let Some((generation, n)) = self.counts.get(&(by_version, vis, v0))
            && *generation == self.generation
        {
            return *n;
        }
        let n = self.walk(true, v0).filter(|(_, idx)| vis.shows(&self.rows[*idx as usize])).count() as u64;
        self.counts.insert((by_version, vis, v0), (self.generation, n));
        n
    }
}

fn live_slot(row: &Row) -> usize {
    usize::from(row.inactive()) | usize::from(row.deceased()) << 1
}
