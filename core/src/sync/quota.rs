//! Quota-aware runs, as values: what a run will cost in API calls, how many calls the day has
//! left, and when the quota day ends.
//!
//! # Blackbaud's daily quota
//! Every SKY API call counts against the subscription's daily quota (since January 2025: 1,000
//! calls for free developer subscriptions, 25,000 for customers, 100,000 per connection for
//! partners; community.blackbaud.com/blogs/69/9857). Blackbaud documents the quota as a number of
//! calls "per day" and, when it is used up, a `403` whose `Retry-After` header (seconds) and
//! message ("Quota will be replenished in HH:MM:SS") say "how long you must wait before the quota
//! period renews" (the SKY API docs' `quotas.md`). That message is Azure API Management's quota
//! policy, whose periods are fixed windows of the renewal period (a day), not a rolling 24 hours.
//! Blackbaud does not publish at which time of day the window starts, so skysync models it as:
//!
//! - a quota day is a fixed 24-hour window;
//! - once a `403` announced a reset (`now + Retry-After`), days end at that instant plus whole
//!   days ([`QuotaLedger::announced_reset`]);
//! - before any `403` was seen, days end at midnight UTC.
//!
//! # What a run costs
//! A list scan reads `n` records `limit` at a time. A `sort_token` chain ends on an empty page,
//! so it takes `ceil(n / limit) + 1` calls; an offset scan ends on the page that reaches the
//! list's `count`, so `max(1, ceil(n / limit))`. `n` comes from the list's `count` ("items
//! available after applying request parameters; limit and offset do not affect the count"), read
//! by a probe with `limit=1` ([`EstimatePlan`]). An incremental chain is probed from its
//! high-water mark, so `n` is the records changed since the last run. A delete reconciliation
//! adds an id scan of the whole list; a partitioned initial scan adds its sampling probes and one
//! overshooting page per extra chain ([`partition::chains_for`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use super::bookmark::{Bookmark, parse_time, rfc3339};
use super::catalog::{Entity, Incremental};
use super::cursor::Cursor;
use super::partition::{self, Pace, PartitionTable};
use super::plan::{RunMode, StoredState, SyncOptions};
use super::schedule::reconcile_due;

const DAY: time::Duration = time::Duration::DAY;

/// When the quota day that contains `now` ends: the next `announced + k days` after `now`, or the
/// next midnight UTC when no reset was announced (see the module docs).
pub fn quota_day_end(now: OffsetDateTime, announced: Option<OffsetDateTime>) -> OffsetDateTime {
    match announced {
        Some(anchor) => {
            let days = ((now - anchor).whole_seconds()).div_euclid(DAY.whole_seconds());
            anchor + DAY * (days + 1) as i32
        }
        None => {
            let utc = now.to_offset(time::UtcOffset::UTC);
            (utc.date() + DAY).midnight().assume_utc()
        }
    }
}

/// The calls counted against the current quota day, kept by the sink between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLedger {
    /// End of the quota day `calls_today` belongs to.
    #[serde(with = "time::serde::rfc3339")]
    pub day_ends_at: OffsetDateTime,
    /// API calls made in that day (every attempt, as Blackbaud counts them).
    pub calls_today: u64,
    /// The reset a `403` last announced; later days end whole days after it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub announced_reset: Option<OffsetDateTime>,
    /// Calls of the last run (its estimate's probes not included).
    #[serde(default)]
    pub last_run_calls: Option<u64>,
    /// What the last run was estimated to cost, when it was estimated.
    #[serde(default)]
    pub last_run_estimate: Option<u64>,
}

impl QuotaLedger {
    /// The ledger as of `now`: the stored one while its day lasts, else a fresh day (the last
    /// run's figures and the announced reset are kept).
    pub fn today(stored: Option<&QuotaLedger>, now: OffsetDateTime) -> QuotaLedger {
        match stored {
            Some(s) if now < s.day_ends_at => s.clone(),
            Some(s) => QuotaLedger { day_ends_at: quota_day_end(now, s.announced_reset), calls_today: 0, ..s.clone() },
            None => QuotaLedger {
                day_ends_at: quota_day_end(now, None),
                calls_today: 0,
                announced_reset: None,
                last_run_calls: None,
                last_run_estimate: None,
            },
        }
    }

    /// Calls left today under `quota`.
    pub fn remaining(&self, quota: u64) -> u64 {
        quota.saturating_sub(self.calls_today)
    }

    /// Adds a finished run's calls and the calls its estimate's probes took (a run that crossed
    /// the day's end counts wholly in the new day).
    pub fn record_run(&mut self, calls: u64, probes: u64, estimate: Option<u64>, now: OffsetDateTime) {
        *self = QuotaLedger::today(Some(self), now);
        self.calls_today += calls + probes;
        self.last_run_calls = Some(calls);
        self.last_run_estimate = estimate;
    }

    /// Blackbaud answered "out of call volume quota" at `now`, replenishing after `retry_after`:
    /// the day ends then, and it has no calls left under `quota`.
    pub fn record_exhausted(&mut self, now: OffsetDateTime, retry_after: Option<Duration>, quota: Option<u64>) {
        if let Some(wait) = retry_after {
            // Whole seconds, as Retry-After counts them.
            let reset = now + wait;
            let reset = reset.replace_nanosecond(0).unwrap_or(reset);
            self.announced_reset = Some(reset);
            self.day_ends_at = reset;
        }
        if let Some(q) = quota {
            self.calls_today = self.calls_today.max(q);
        }
    }
}

/// How far the estimate was off: actual / estimated (`None` without an estimate or when it was 0).
pub fn accuracy(actual: u64, estimated: Option<u64>) -> Option<f64> {
    match estimated {
        Some(e) if e > 0 => Some(((actual as f64 / e as f64) * 1000.0).round() / 1000.0),
        _ => None,
    }
}

/// Calls a scan of `records` records takes, `limit` per page.
pub fn scan_calls(entity: &Entity, records: u64, limit: u32) -> u64 {
    let pages = records.div_ceil(u64::from(limit.max(1)));
    match entity.incremental {
        Incremental::SortToken => pages + 1,
        Incremental::LastModifiedOffset | Incremental::Full => pages.max(1),
    }
}

/// The estimated calls of one entity's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntityEstimate {
    /// Catalog name.
    pub entity: &'static str,
    /// How it would run.
    pub mode: RunMode,
    /// Records the scan would read (from the probe's `count`).
    pub records: Option<u64>,
    /// Pages of the scan.
    pub scan_calls: u64,
    /// Pages of the delete reconciliation's id scan (0 when none is due).
    pub reconcile_calls: u64,
    /// Probes and overshooting pages of a partitioned initial or full scan.
    pub partition_calls: u64,
    /// Calls the run would make: the sum of the above.
    pub calls: u64,
}

/// What to probe to estimate one entity's run, made from what the sink has stored.
#[derive(Debug, Clone)]
pub struct EstimatePlan {
    entity: &'static Entity,
    mode: RunMode,
    limit: u32,
    /// Records an offset scan in progress has already read.
    already_read: u64,
    scan_probe: Option<Url>,
    reconcile_probe: Option<Url>,
    splittable: bool,
}

impl EstimatePlan {
    /// Plans the probes for `entity`. `resume` is the bookmark the run continues from: the live
    /// one, or for `--full` the staging one of an interrupted resync.
    pub fn new(
        entity: &'static Entity,
        base: &Url,
        stored: Option<&StoredState>,
        resume: Option<&str>,
        options: &SyncOptions,
        now: OffsetDateTime,
    ) -> Self {
        let mode = RunMode::of(options, stored);
        let reconcile = reconcile_due(options, stored, now);
        let cursor_options = options.cursor();
        let limit = options.page_size.unwrap_or(entity.max_limit).clamp(1, entity.max_limit);
        let bookmark = resume.and_then(|b| Bookmark::from_json(b).ok());
        let mut already_read = 0;
        let scan_probe = if resume.and_then(PartitionTable::from_json).is_some() {
            // A partitioned scan in progress: its chains' positions say nothing one probe can count.
            None
        } else {
            let probe = match &bookmark {
                // Count what changed after the newest record read, not since the chain's start:
                // the records at the high-water mark itself were read already.
                Some(Bookmark::Chain { high_water: Some(hw), .. }) if entity.incremental == Incremental::SortToken => {
                    let after = parse_time(hw).map_or_else(|| hw.clone(), |t| rfc3339(t + Duration::from_micros(1)));
                    Some(Cursor::list_url(entity, base, 1, &[("last_modified", after.as_str())]))
                }
                Some(Bookmark::Offset { offset, .. }) => {
                    already_read = *offset;
                    Cursor::resume(entity, base, bookmark.clone(), cursor_options, now).request_url().ok()
                }
                _ => Cursor::resume(entity, base, bookmark.clone(), cursor_options, now).request_url().ok(),
            };
            probe.map(|url| probe_url(&url))
        };
        let reconcile_probe = reconcile
            .then(|| Cursor::id_scan(entity, base, cursor_options, now).request_url().ok())
            .flatten()
            .map(|url| probe_url(&url));
        let splittable = mode != RunMode::Incremental && !reconcile && entity.incremental == Incremental::SortToken;
        Self { entity, mode, limit, already_read, scan_probe, reconcile_probe, splittable }
    }

    /// The probes to GET (`limit=1`), in order: the scan's, then the id scan's.
    pub fn probe_urls(&self) -> Vec<Url> {
        self.scan_probe.iter().chain(self.reconcile_probe.iter()).cloned().collect()
    }

    /// The estimate from the probes' `count`s (in [`probe_urls`](Self::probe_urls) order). `pace`
    /// is the client's rate and the probes' latency, `partitions` the most chains a scan may use.
    pub fn finish(&self, counts: &[Option<u64>], pace: Pace, partitions: usize) -> EntityEstimate {
        let mut counts = counts.iter().copied();
        let records = self.scan_probe.as_ref().and_then(|_| counts.next().flatten());
        let reconcile_records = self.reconcile_probe.as_ref().and_then(|_| counts.next().flatten());
        let read = records.map(|n| n.saturating_sub(self.already_read));
        let scan = read.map_or(1, |n| scan_calls(self.entity, n, self.limit));
        let reconcile = reconcile_records.map_or(0, |n| scan_calls(self.entity, n, self.limit));
        let partition_calls = match read {
            Some(n) if self.splittable && n > u64::from(self.limit) => {
                let pages_left = (n - u64::from(self.limit)).div_ceil(u64::from(self.limit));
                let chains = partition::chains_for(pages_left, pace, partitions) as u64;
                // Each extra chain costs its sampling probe and the page that overshoots its end.
                2 * chains.saturating_sub(1)
            }
            _ => 0,
        };
        EntityEstimate {
            entity: self.entity.name,
            mode: self.mode,
            records: read,
            scan_calls: scan,
            reconcile_calls: reconcile,
            partition_calls,
            calls: scan + reconcile + partition_calls,
        }
    }
}

/// `url` asking for one record: only its `count` is wanted.
fn probe_url(url: &Url) -> Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "limit" && k != "offset" && k != "sort_token" && k != "continuation_token")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut probe = url.clone();
    {
        let mut q = probe.query_pairs_mut();
        q.clear().append_pair("limit", "1");
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
    }
    probe
}
