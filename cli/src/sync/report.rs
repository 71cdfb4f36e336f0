//! What a run did: one [`EntityReport`] per entity and the [`RunReport`] around them, and the
//! end-of-run summary as a table for people and JSON for monitoring.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use skysync_core::api::{ApiCounters, ApiError};
use skysync_core::sync::{Entity, RunMode};

use crate::sink::{PageCommit, Target};

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
    pub(super) fn new(entity: &'static Entity, mode: RunMode) -> Self {
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

    pub(super) fn committed(&mut self, target: Target, c: PageCommit, records: usize) {
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

/// "1.2s", "3m 04s".
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 { format!("{s:.1}s") } else { crate::output::human_duration(d) }
}

/// The summary table.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<11} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8}  status",
        "entity", "mode", "added", "changed", "removed", "pages", "requests", "time"
    );
    for e in &report.entities {
        let status = match &e.error {
            None if e.reconciled => "ok, reconciled".to_owned(),
            None => "ok".to_owned(),
            // A run-wide stop (quota, budget) is explained once below the table.
            Some(_) if e.halted && e.requests == 0 => "not started".to_owned(),
            Some(_) if e.halted => "stopped".to_owned(),
            Some(err) => format!("FAILED: {err}"),
        };
        let _ = writeln!(
            out,
            "{:<18} {:<11} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8}  {status}",
            e.entity,
            e.mode.label(),
            e.added,
            e.changed,
            e.removed,
            e.pages,
            e.requests,
            short_duration(e.duration)
        );
    }
    let records: u64 = report.entities.iter().map(|e| e.records).sum();
    let a = &report.api;
    let _ = write!(
        out,
        "{records} records, {} API calls ({} retried, {} rate-limited), {} token refresh{} in {} → {}",
        a.calls,
        a.retries,
        a.rate_limited,
        report.token_calls,
        if report.token_calls == 1 { "" } else { "es" },
        short_duration(report.duration),
        report.sink
    );
    if let Some(stop) = &report.stopped {
        let _ = write!(out, "\nstopped early: {stop}");
        if let Some(hint) = stop_hint(stop) {
            let _ = write!(out, "\n{hint}");
        }
    }
    out
}

/// What to do after a run was stopped.
pub fn stop_hint(e: &ApiError) -> Option<String> {
    match e {
        ApiError::QuotaExhausted { retry_after: Some(d), .. } => Some(format!(
            "Every committed page is kept. The quota replenishes in {}; run `skysync sync` again then and it resumes where it stopped.",
            crate::output::human_duration(*d)
        )),
        ApiError::QuotaExhausted { retry_after: None, .. } => Some(
            "Every committed page is kept. Run `skysync sync` again after the daily quota replenishes; it resumes where it stopped."
                .into(),
        ),
        ApiError::BudgetSpent { .. } => Some(
            "Every committed page is kept. The next run (with a fresh budget) resumes where this one stopped.".into(),
        ),
        _ => None,
    }
}

/// The summary as JSON.
pub fn json(report: &RunReport) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("ok".into(), serde_json::Value::Bool(report.ok()));
        let records: u64 = report.entities.iter().map(|e| e.records).sum();
        obj.insert("records".into(), records.into());
    }
    v
}
