//! The CLI's side of quota-aware runs: reads the day's call count from the sink before a run,
//! limits the API client to what is left, and writes the count back after it. Every decision is
//! core's ([`skysync_core::sync::quota`]).

use skysync_core::api::{ApiClient, ApiError};
use skysync_core::sync::quota::{QuotaLedger, accuracy};
use time::OffsetDateTime;

use crate::sink::Sink;
use crate::sync::RunReport;
use crate::sync::estimate::Estimate;
use crate::sync::report::QuotaSummary;

/// The day's ledger of `scope` as of `now`.
pub async fn load(sink: &mut dyn Sink, scope: &str, now: OffsetDateTime) -> anyhow::Result<QuotaLedger> {
    let stored = sink.quota_ledger(scope).await?;
    Ok(QuotaLedger::today(stored.as_ref(), now))
}

/// `api` limited to what is left of `daily_quota` today.
pub fn limit(api: ApiClient, daily_quota: Option<u64>, ledger: &QuotaLedger) -> ApiClient {
    match daily_quota {
        Some(quota) => api.with_daily_quota(ledger.remaining(quota), quota),
        None => api,
    }
}

/// Counts the run's calls (probes included) into the ledger, stores it and fills in the
/// report's [`QuotaSummary`].
#[allow(clippy::too_many_arguments)]
pub async fn record(
    sink: &mut dyn Sink,
    scope: &str,
    mut ledger: QuotaLedger,
    daily_quota: Option<u64>,
    estimate: Option<&Estimate>,
    total_calls: u64,
    report: &mut RunReport,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let estimated = estimate.map(Estimate::calls);
    let probes = estimate.map_or(0, |e| e.probe_calls);
    // Every call counts against the day; the run's own (probes aside) against its estimate.
    ledger.record_run(report.api.calls, total_calls.saturating_sub(report.api.calls), estimated, now);
    let mut resume_at = None;
    match &report.stopped {
        Some(ApiError::QuotaExhausted { retry_after, .. }) => {
            ledger.record_exhausted(now, *retry_after, daily_quota);
            resume_at = retry_after.and(ledger.announced_reset);
        }
        Some(ApiError::DailyQuotaReached { .. }) => resume_at = Some(ledger.day_ends_at),
        _ => {}
    }
    sink.save_quota_ledger(scope, &ledger).await?;
    if let Some(estimate) = estimate {
        for e in &mut report.entities {
            e.estimated_calls = estimate.of(e.entity).map(|x| x.calls);
        }
    }
    report.quota = Some(QuotaSummary {
        daily_quota,
        calls_today: ledger.calls_today,
        remaining_today: daily_quota.map(|q| ledger.remaining(q)),
        day_ends_at: ledger.day_ends_at,
        estimated_calls: estimated,
        probe_calls: probes,
        accuracy: accuracy(report.api.calls, estimated),
        resume_at,
    });
    Ok(())
}
