//! `skysync sync --dry-run`: the first request each entity would make, and why. No API calls.

use std::fmt::Write as _;

use skysync_core::catalog::Entity;
use skysync_core::paging::{Bookmark, Cursor, CursorOptions};
use url::Url;

use super::engine::{EngineOptions, RunMode};
use crate::context::Output;
use crate::sink::{self, SinkSpec};

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
    let copts = CursorOptions { page_size: options.page_size, overlap: options.overlap };
    let mut items = Vec::new();
    let mut text = format!("dry run: no API calls are made ({})\n", sink.describe());
    for &e in entities {
        let state = sink.state(e.name).await?;
        let (mode, bookmark) = if options.full {
            let staged = state.as_ref().and_then(|s| s.staging_bookmark.as_deref());
            (RunMode::Full, staged.and_then(|b| Bookmark::from_json(b).ok()))
        } else {
            match state.as_ref().and_then(|s| s.bookmark.as_deref()) {
                Some(b) => (RunMode::Incremental, Bookmark::from_json(b).ok()),
                None => (RunMode::Initial, None),
            }
        };
        let cursor = Cursor::resume(e, base, bookmark, copts, now);
        let request = cursor.request_url().map(|u| u.to_string()).unwrap_or_else(|e| e.to_string());
        let reconcile = options.reconcile_due(state.as_ref(), now);
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
