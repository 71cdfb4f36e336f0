//! What a run did: one [`EntityReport`] per entity and the [`RunReport`] around them, and the
//! end-of-run summary as a table for people and JSON for monitoring.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use skysync_core::api::{ApiCounters, ApiError};
use skysync_core::sync::{Entity, RunMode};
use time::OffsetDateTime;

use crate::output::Column;
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
    /// Calls the run was estimated to make for this entity (runs with a `daily_quota`).
    pub estimated_calls: Option<u64>,
    /// A per-parent list: the parents this run visited (one chain each) and the live parents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_chains: Option<(usize, usize)>,
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
            estimated_calls: None,
            parent_chains: None,
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
    #[serde(skip)]
    pub stopped: Option<ApiError>,
    /// The signal (number, name) that stopped the run: it sent no request after it, and the
    /// counts above are what it committed.
    #[serde(skip)]
    pub signal: Option<(i32, &'static str)>,
    /// The daily quota's bookkeeping after the run (filled in by `skysync sync`).
    pub quota: Option<QuotaSummary>,
}

/// Calls used today and the run's estimate, for the summary and `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct QuotaSummary {
    /// The `daily_quota` setting, if any.
    pub daily_quota: Option<u64>,
    /// API calls counted in the current quota day, this run's included.
    pub calls_today: u64,
    /// Calls left today under `daily_quota`.
    pub remaining_today: Option<u64>,
    /// When the current quota day ends (see `skysync_core::sync::quota`).
    #[serde(with = "time::serde::rfc3339")]
    pub day_ends_at: OffsetDateTime,
    /// Calls the run was estimated to make (runs with a `daily_quota` probe first).
    pub estimated_calls: Option<u64>,
    /// Calls the estimate's `count` probes took (counted in `calls_today`, not in `api.calls`).
    pub probe_calls: u64,
    /// `api.calls / estimated_calls`.
    pub accuracy: Option<f64>,
    /// When a stop on the quota can be resumed: the end of the quota day for `daily_quota`, the
    /// replenish time Blackbaud announced for its `403`.
    #[serde(skip)]
    pub resume_at: Option<OffsetDateTime>,
}

impl RunReport {
    /// Whether every entity finished.
    pub fn ok(&self) -> bool {
        self.stopped.is_none() && self.signal.is_none() && self.entities.iter().all(|e| e.error.is_none())
    }

    /// Whether the run stopped early only because the configuration said so (`--call-budget`,
    /// `daily_quota`), with no entity failing on its own: not an error.
    pub fn planned_stop(&self) -> bool {
        self.stopped.as_ref().is_some_and(ApiError::is_planned_stop)
            && self.entities.iter().all(|e| e.error.is_none() || e.halted)
    }

    /// The entities that did not finish because the run stopped.
    pub fn left(&self) -> Vec<&'static str> {
        self.entities.iter().filter(|e| e.halted).map(|e| e.entity).collect()
    }
}

/// Whether an entity's stored `last_error` is a planned stop's ([`ApiError::is_planned_stop`]):
/// the engine stores the error's text, so the text is what is left to tell.
pub fn planned_stop_text(error: &str) -> bool {
    error.contains("per-run call budget") || error.contains("the daily_quota of")
}

/// The `stopped.reason` of `--json`: a stable word per kind of stop.
pub fn stop_reason(e: &ApiError) -> &'static str {
    match e {
        ApiError::BudgetSpent { .. } => "call_budget",
        ApiError::DailyQuotaReached { .. } => "daily_quota",
        ApiError::QuotaExhausted { .. } => "quota_exhausted",
        ApiError::RateLimited { .. } => "rate_limited",
        ApiError::Session(_) => "consent",
        ApiError::SubscriptionKey { .. } => "subscription_key",
        ApiError::Unauthorized { .. } => "unauthorized",
        _ => "other",
    }
}

/// "1.2s", "3m 04s".
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 { format!("{s:.1}s") } else { crate::output::human_duration(d) }
}

/// The summary table's columns before the status.
const SUMMARY_COLUMNS: [Column; 8] = [
    Column { header: "entity", width: 18, right: false },
    Column { header: "mode", width: 11, right: false },
    Column { header: "added", width: 9, right: true },
    Column { header: "changed", width: 9, right: true },
    Column { header: "removed", width: 9, right: true },
    Column { header: "pages", width: 7, right: true },
    Column { header: "requests", width: 8, right: true },
    Column { header: "time", width: 8, right: true },
];

/// The summary: a table of the entities, then the run's totals and how it stopped. Fitted to
/// `width` (the terminal's; None: full lines, for a pipe or `--wide`) by wrapping, never cutting,
/// the status and the lines below the table ([`crate::output::free_text_table`]).
pub fn render(report: &RunReport, width: Option<usize>) -> String {
    let rows: Vec<(Vec<String>, String)> = report
        .entities
        .iter()
        .map(|e| {
            let status = match &e.error {
                None if e.reconciled => "ok, reconciled".to_owned(),
                None => "ok".to_owned(),
                // A run-wide stop (quota, budget) is explained once below the table.
                Some(_) if e.halted && e.requests == 0 => "not started".to_owned(),
                Some(_) if e.halted => "stopped".to_owned(),
                Some(err) => format!("FAILED: {err}"),
            };
            let cells = vec![
                e.entity.to_owned(),
                e.mode.label().to_owned(),
                e.added.to_string(),
                e.changed.to_string(),
                e.removed.to_string(),
                e.pages.to_string(),
                e.requests.to_string(),
                short_duration(e.duration),
            ];
            (cells, status)
        })
        .collect();
    let table = crate::output::free_text_table(&SUMMARY_COLUMNS, "status", &rows, width);
    format!("{table}\n{}", crate::output::wrap_lines(&totals(report), width))
}

/// The lines below the summary table.
fn totals(report: &RunReport) -> String {
    let mut out = String::new();
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
    if let Some(q) = &report.quota {
        let _ = write!(out, "\n{}", quota_line(q, a.calls));
    }
    if let Some((_, name)) = report.signal {
        let _ = write!(out, "\nstopped by {name}: every page counted above is committed; the next run resumes there");
        let left = report.left();
        if !left.is_empty() {
            let _ = write!(out, "\nleft for the next run: {}", left.join(", "));
        }
    }
    if let Some(stop) = &report.stopped {
        let planned = if stop.is_planned_stop() { "stopped as planned" } else { "stopped early" };
        let _ = write!(out, "\n{planned}: {stop}");
        let left = report.left();
        if !left.is_empty() {
            let _ = write!(out, "\nleft for the next run: {}", left.join(", "));
        }
        if let Some(hint) = stop_hint(stop) {
            let _ = write!(out, "\n{hint}");
        }
        if let Some(at) = report.quota.as_ref().and_then(|q| q.resume_at) {
            let _ = write!(out, "\nthe quota resets at {}", crate::output::timestamp(at));
        }
    }
    out
}

/// "quota: 120 calls used today of 1000 (880 left; the day ends …); estimated 40 calls, made 38 (0.95)".
fn quota_line(q: &QuotaSummary, calls: u64) -> String {
    let mut line = format!("quota: {} calls used today", q.calls_today);
    if let (Some(quota), Some(left)) = (q.daily_quota, q.remaining_today) {
        let _ = write!(line, " of daily_quota {quota} ({left} left)");
    }
    let _ = write!(line, "; the quota day ends {}", crate::output::timestamp(q.day_ends_at));
    if let Some(est) = q.estimated_calls {
        let _ = write!(line, "; estimated {est} calls, made {calls}");
        if let Some(acc) = q.accuracy {
            let _ = write!(line, " (accuracy {acc:.2})");
        }
        let _ = write!(line, "; the estimate's probes took {}", q.probe_calls);
    }
    line
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
        ApiError::DailyQuotaReached { .. } => Some(
            "Every committed page is kept. The next run after the quota day ends resumes where this one stopped."
                .into(),
        ),
        _ => None,
    }
}

/// The summary as JSON (every field is documented in the README's "Monitoring contract").
pub fn json(report: &RunReport) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("ok".into(), serde_json::Value::Bool(report.ok() || report.planned_stop()));
        obj.insert("complete".into(), serde_json::Value::Bool(report.ok()));
        let records: u64 = report.entities.iter().map(|e| e.records).sum();
        obj.insert("records".into(), records.into());
        obj.insert("stopped".into(), stopped_json(report));
    }
    v
}

/// `stopped`: `null`, or why and where the run stopped early.
fn stopped_json(report: &RunReport) -> serde_json::Value {
    if let Some((_, name)) = report.signal {
        return serde_json::json!({
            "reason": "signal",
            "planned": false,
            "message": format!("stopped by {name}"),
            "resume_at": null,
            "entities_left": report.left(),
        });
    }
    let Some(stop) = &report.stopped else { return serde_json::Value::Null };
    let resume_at = match stop {
        ApiError::QuotaExhausted { .. } | ApiError::DailyQuotaReached { .. } => report
            .quota
            .as_ref()
            .and_then(|q| q.resume_at)
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        _ => None,
    };
    serde_json::json!({
        "reason": stop_reason(stop),
        "planned": stop.is_planned_stop(),
        "message": stop.to_string(),
        "resume_at": resume_at,
        "entities_left": report.left(),
    })
}
