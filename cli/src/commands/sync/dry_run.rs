//! `skysync sync --dry-run`: the first request each entity would make, and why. No API calls.

use std::fmt::Write as _;

use skysync_core::sync::{Bookmark, Cursor, Entity, RunMode, reconcile_due};
use url::Url;

use skysync_core::sync::partition::PartitionTable;

use crate::context::Output;
use crate::sink::{self, SinkSpec};
use crate::sync::engine::{EngineOptions, stored_state};

/// Prints the plan as of `now`.
pub async fn run(
    out: &Output,
    spec: &SinkSpec,
    base: &Url,
    entities: &[&'static Entity],
    options: &EngineOptions,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let mut sink = sink::open(spec).await?;
    let sync = options.sync();
    let mut items = Vec::new();
    let mut text = format!("dry run: no API calls are made ({})\n", sink.describe());
    for &e in entities {
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
            items.push(serde_json::json!({ "entity": e.name, "mode": mode, "partitioned": true, "open_chains": open }));
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
        items.push(serde_json::json!({
            "entity": e.name,
            "mode": mode,
            "request": request,
            "page_size": cursor.limit(),
            "reconcile": reconcile,
        }));
    }
    if out.json {
        out.json_value(&serde_json::json!({ "dry_run": true, "sink": sink.describe(), "entities": items }))?;
    } else {
        out.line(text.trim_end())?;
    }
    Ok(())
}
