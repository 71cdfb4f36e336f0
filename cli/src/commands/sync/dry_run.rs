//! `skysync sync --dry-run`: the first request each entity would make, and why. No API calls,
//! unless `--estimate` asks for the `count` probes that estimate the run's calls.

use std::fmt::Write as _;

use skysync_core::api::ApiClient;
use skysync_core::host::Clock;
use skysync_core::sync::{Bookmark, Cursor, Entity, RunMode, reconcile_due};
use url::Url;

use skysync_core::sync::partition::PartitionTable;

use super::quota;
use crate::context::Output;
use crate::output::timestamp;
use crate::sink::{self, SinkSpec};
use crate::sync::engine::{EngineOptions, stored_state};
use crate::sync::estimate::{Estimate, child_estimate, estimate};

/// What a dry run knows besides the plan.
pub struct DryRun<'a> {
    /// The profile, whose calls used today the sink keeps.
    pub profile: &'a str,
    /// The `daily_quota` setting.
    pub daily_quota: Option<u64>,
    /// With `--estimate`: the client the `count` probes go through.
    pub api: Option<&'a ApiClient>,
}

/// Prints the plan as of the clock's now.
pub async fn run(
    out: &Output,
    spec: &SinkSpec,
    base: &Url,
    entities: &[&'static Entity],
    options: &EngineOptions,
    dry: &DryRun<'_>,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let now = clock.now();
    let mut sink = sink::open(spec).await?;
    let mut ledger = quota::load(sink.as_mut(), dry.profile, now).await?;
    let estimated: Option<Estimate> = match dry.api {
        Some(api) => {
            let api = quota::limit(api.clone(), dry.daily_quota, &ledger);
            let e = estimate(&api, sink.as_mut(), entities, options, clock).await?;
            ledger.calls_today += e.probe_calls;
            sink.save_quota_ledger(dry.profile, &ledger).await?;
            Some(e)
        }
        None => None,
    };
    let sync = options.sync();
    let mut items = Vec::new();
    let mut text = match &estimated {
        Some(e) => format!("dry run: only {} `count` probes were made ({})\n", e.probe_calls, sink.describe()),
        None => format!("dry run: no API calls are made ({})\n", sink.describe()),
    };
    for &e in entities {
        if let Some(parent) = e.parent {
            let (plan, (chains, live)) = child_estimate(sink.as_mut(), e, options, clock).await?;
            let mode = plan.mode;
            let also = if entities.iter().any(|x| x.name == parent.entity) {
                format!(" (as stored now; this run syncs {} first)", parent.entity)
            } else {
                String::new()
            };
            let which = match mode {
                RunMode::Incremental => {
                    format!("the {} of {live} {} written since the last run", chains, parent.entity)
                }
                _ => format!("every one of {live} {}", parent.entity),
            };
            let _ = writeln!(text, "{:<18} {:<11} {chains} parent chains: {which}{also}", e.name, mode.label());
            let reconcile = plan.reconcile_calls > 0;
            if reconcile {
                let _ = writeln!(text, "{:<18} then an id scan of every {} to reconcile deletes", "", parent.entity);
            }
            let est = estimated.as_ref().and_then(|x| x.of(e.name));
            if let Some(est) = est {
                let _ = writeln!(text, "{:<18} estimate: at least {} calls (one per parent chain)", "", est.calls);
            }
            items.push(serde_json::json!({
                "entity": e.name, "mode": mode, "parent": parent.entity, "parent_chains": chains,
                "parents": live, "reconcile": reconcile, "estimate": est,
            }));
            continue;
        }
        let state = sink.state(e.name).await?;
        let stored = state.as_ref().map(stored_state);
        let mode = RunMode::of(&sync, stored.as_ref());
        // The first request as the run would make it; an unreadable bookmark is shown as a fresh
        // start here (the run itself reports it).
        let bookmark = match mode {
            RunMode::Full => state.as_ref().and_then(|s| s.staging_bookmark.as_deref()),
            _ => state.as_ref().and_then(|s| s.bookmark.as_deref()),
        };
        if let Some(table) = bookmark.and_then(PartitionTable::from_json) {
            let open = table.partitions.iter().filter(|c| !c.done).count();
            let _ =
                writeln!(text, "{:<18} {:<11} resumes a partitioned scan ({open} chains open)", e.name, mode.label());
            let est = estimated.as_ref().and_then(|x| x.of(e.name));
            items.push(serde_json::json!({
                "entity": e.name, "mode": mode, "partitioned": true, "open_chains": open, "estimate": est,
            }));
            continue;
        }
        let bookmark = bookmark.and_then(|b| Bookmark::from_json(b).ok());
        let cursor = Cursor::resume(e, base, bookmark, sync.cursor(), now);
        let request = cursor.request_url().map(|u| u.to_string()).unwrap_or_else(|e| e.to_string());
        let reconcile = reconcile_due(&sync, stored.as_ref(), now);
        let why = match mode {
            RunMode::Full => "full resync into staging, swapped in when complete",
            RunMode::Initial => "first run: everything",
            RunMode::Incremental => "changes since the stored bookmark",
        };
        let _ = writeln!(text, "{:<18} {:<11} {why}", e.name, mode.label());
        let _ = writeln!(text, "{:<18} GET {request}", "");
        if reconcile {
            let _ = writeln!(text, "{:<18} then an id scan to reconcile deletes", "");
        }
        let est = estimated.as_ref().and_then(|x| x.of(e.name));
        if let Some(est) = est {
            let records = est.records.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
            let _ = writeln!(
                text,
                "{:<18} estimate: {} calls ({records} records: {} scan, {} id scan, {} partitioning)",
                "", est.calls, est.scan_calls, est.reconcile_calls, est.partition_calls
            );
        }
        items.push(serde_json::json!({
            "entity": e.name,
            "mode": mode,
            "request": request,
            "page_size": cursor.limit(),
            "reconcile": reconcile,
            "estimate": est,
        }));
    }
    let remaining = dry.daily_quota.map(|q| ledger.remaining(q));
    let total = estimated.as_ref().map(Estimate::calls);
    let _ = write!(text, "quota: {} calls used today", ledger.calls_today);
    if let (Some(q), Some(left)) = (dry.daily_quota, remaining) {
        let _ = write!(text, " of daily_quota {q} ({left} left)");
    }
    let _ = writeln!(text, "; the quota day ends {}", timestamp(ledger.day_ends_at));
    match (total, remaining) {
        (Some(t), Some(left)) if t > left => {
            let _ = writeln!(text, "estimated {t} calls: more than is left today; the run would stop part-way");
        }
        (Some(t), _) => {
            let _ = writeln!(text, "estimated {t} calls for the run");
        }
        (None, _) => {
            let _ = writeln!(text, "add --estimate to count the records and estimate the run's calls");
        }
    }
    if out.json {
        out.json_value(&serde_json::json!({
            "dry_run": true,
            "sink": sink.describe(),
            "entities": items,
            "quota": {
                "daily_quota": dry.daily_quota,
                "calls_today": ledger.calls_today,
                "remaining_today": remaining,
                "day_ends_at": timestamp(ledger.day_ends_at),
                "estimated_calls": total,
                "probe_calls": estimated.as_ref().map_or(0, |e| e.probe_calls),
            },
        }))?;
    } else {
        out.line(text.trim_end())?;
    }
    Ok(())
}
