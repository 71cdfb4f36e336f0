//! The end-of-run summary, as a table for people and JSON for monitoring.

use std::fmt::Write as _;
use std::time::Duration;

use skysync_core::api::ApiError;

use super::engine::RunReport;

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
