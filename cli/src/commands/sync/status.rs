//! `skysync sync status`: what the database says about each entity. No API calls.

use std::fmt::Write as _;

use skysync_core::sync::Bookmark;
use skysync_core::sync::partition::PartitionTable;

use skysync_core::sync::quota::{QuotaLedger, accuracy};

use crate::context::Output;
use crate::exit;
use crate::output::{timestamp, timestamp_or_never};
use crate::sink::{self, EntityState, SinkSpec};
use crate::sync::report;

/// Where a stored bookmark points, in words (no URL: the position is what matters).
pub fn describe_bookmark(bookmark: Option<&str>) -> String {
    let Some(raw) = bookmark else { return "none (the next run starts from the beginning)".into() };
    if let Some(table) = PartitionTable::from_json(raw) {
        let done = table.partitions.iter().filter(|c| c.done).count();
        return format!(
            "partitioned scan in progress: {done} of {} chains done (the next run resumes every chain)",
            table.partitions.len()
        );
    }
    match Bookmark::from_json(raw) {
        Ok(Bookmark::Chain { next_link, high_water }) => {
            let url = url::Url::parse(&next_link).ok();
            let param = |name: &str| {
                url.as_ref().and_then(|u| u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()))
            };
            let mut s = String::from("sort_token chain");
            if let Some(lm) = param("last_modified") {
                let _ = write!(s, " from last_modified {lm}");
            }
            if param("sort_token").is_some() {
                s.push_str(", sort_token held");
            }
            if let Some(hw) = high_water {
                let _ = write!(s, "; newest change seen {hw}");
            }
            s
        }
        Ok(Bookmark::Offset { since, offset, .. }) => match since {
            Some(since) => format!("offset scan in progress at {offset} (changes since {since})"),
            None => format!("offset scan in progress at {offset} (everything)"),
        },
        Ok(Bookmark::Done { since, .. }) => match since {
            Some(since) => format!("next run scans changes since {since}"),
            None => "next run scans everything".into(),
        },
        Err(e) => format!("unreadable ({e})"),
    }
}

/// How an entity stands, in one word (`sync status --json`'s `health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The last run finished.
    UpToDate,
    /// Nothing was ever synced.
    NeverSynced,
    /// A first run has committed pages but never finished (killed, or still running).
    Unfinished,
    /// The last run stopped as planned (`--call-budget`, `daily_quota`); the next one continues.
    Stopped,
    /// The last run failed.
    Failed,
}

/// The entity's health and the sentence that says it.
pub fn verdict(s: &EntityState) -> (Health, String) {
    let next = match s.bookmark.as_deref() {
        None => "the next run starts from the beginning".to_owned(),
        Some(b) => format!("the next run continues from {}", describe_bookmark(Some(b))),
    };
    let at = timestamp_or_never(s.last_run_at);
    match (&s.last_error, s.last_success_at) {
        (Some(e), _) if report::planned_stop_text(e) => {
            (Health::Stopped, format!("stopped as planned at {at} ({e}); {next}"))
        }
        (Some(e), _) => (Health::Failed, format!("last run failed at {at}: {e}")),
        (None, Some(ok)) => (Health::UpToDate, format!("up to date as of {}; {next}", timestamp(ok))),
        (None, None) if s.bookmark.is_none() && s.staging_bookmark.is_none() => {
            (Health::NeverSynced, "never synced".to_owned())
        }
        (None, None) => (Health::Unfinished, format!("the first run has not finished; {next}")),
    }
}

fn render(states: &[EntityState], quota: Option<&QuotaLedger>) -> String {
    let mut out = String::new();
    for s in states {
        let _ = writeln!(out, "{} ({} rows): {}", s.entity, s.row_count, verdict(s).1);
        if s.staging_bookmark.is_some() {
            let _ = writeln!(out, "  a --full resync is in progress; the next `sync --full` resumes it");
        }
        if s.reconcile_in_progress {
            let _ = writeln!(out, "  a delete reconciliation was interrupted; the next run restarts it");
        }
    }
    if states.is_empty() {
        out.push_str("never synced: run `skysync sync`\n");
    }
    if let Some(q) = quota {
        let _ =
            write!(out, "quota: {} calls used today; the quota day ends {}", q.calls_today, timestamp(q.day_ends_at));
        if let Some(calls) = q.last_run_calls {
            let _ = write!(out, "; the last run made {calls} calls");
        }
        if let Some(est) = q.last_run_estimate {
            let _ = write!(out, " (estimated {est}");
            if let Some(acc) = accuracy(q.last_run_calls.unwrap_or(0), Some(est)) {
                let _ = write!(out, ", accuracy {acc:.2}");
            }
            out.push(')');
        }
    }
    out.trim_end().to_owned()
}

/// Prints the sync state of every entity in the sink; exit code [`exit::LAST_RUN_FAILED`] when
/// the last run of an entity failed.
pub async fn run(out: &Output, spec: &SinkSpec, profile: &str) -> anyhow::Result<u8> {
    warn_readable_files(out, spec);
    let mut sink = sink::open(spec).await?;
    let states = sink.states().await?;
    let quota = sink.quota_ledger(profile).await?;
    let failed = states.iter().any(|s| verdict(s).0 == Health::Failed);
    if out.json {
        let items: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    let (health, summary) = verdict(s);
                    o.insert("position".into(), describe_bookmark(s.bookmark.as_deref()).into());
                    o.insert("health".into(), serde_json::to_value(health).unwrap_or_default());
                    o.insert("summary".into(), summary.into());
                }
                v
            })
            .collect();
        let quota = quota.as_ref().map(|q| {
            serde_json::json!({
                "calls_today": q.calls_today,
                "day_ends_at": timestamp(q.day_ends_at),
                "last_run_calls": q.last_run_calls,
                "last_run_estimate": q.last_run_estimate,
                "accuracy": q.last_run_calls.and_then(|c| accuracy(c, q.last_run_estimate)),
            })
        });
        out.json_value(&serde_json::json!({
            "sink": sink.describe(),
            "ok": !failed,
            "entities": items,
            "quota": quota,
        }))?;
    } else {
        out.table(&format!("{}\n{}", sink.describe(), render(&states, quota.as_ref())))?;
    }
    Ok(if failed { exit::LAST_RUN_FAILED } else { exit::OK })
}

/// Warns about data files (donor PII) that other users can read.
fn warn_readable_files(out: &Output, spec: &SinkSpec) {
    use crate::sink::file_mode;
    let files = match spec {
        SinkSpec::Sqlite(path) => file_mode::sqlite_files(path),
        SinkSpec::Jsonl(crate::sink::JsonlOut::Dir(dir)) => file_mode::jsonl_files(dir),
        _ => return,
    };
    for (file, mode) in file_mode::readable_by_others(&files) {
        out.note(format_args!(
            "warning: {} is readable by other users (mode {mode:o}) and holds donor data; run `chmod 600 {}`",
            file.display(),
            file.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use skysync_core::api::ApiError;
    use skysync_core::sync::Bookmark;

    use super::{Health, describe_bookmark, verdict};
    use crate::sink::EntityState;

    /// The engine stores a planned stop's error text as the entity's last error; status must
    /// tell it from a failure, whichever way the engine wrapped it.
    #[test]
    fn planned_stops_are_not_failures() {
        let at = time::macros::datetime!(2026-11-30 02:00 UTC);
        let with_error =
            |e: String| EntityState { last_error: Some(e), last_run_at: Some(at), ..EntityState::new("gifts") };
        for stop in [ApiError::BudgetSpent { budget: 9 }, ApiError::DailyQuotaReached { quota: 900, used: 900 }] {
            for text in [stop.to_string(), format!("stopped: {stop}")] {
                let (health, said) = verdict(&with_error(text));
                assert_eq!(health, Health::Stopped, "{said}");
                assert!(said.contains("the next run starts from the beginning"), "{said}");
            }
        }
        let quota = ApiError::QuotaExhausted { retry_after: None, message: "Out of call volume quota.".into() };
        let (health, said) = verdict(&with_error(quota.to_string()));
        assert_eq!(health, Health::Failed);
        assert!(said.starts_with("last run failed at 2026-11-30T02:00:00Z: out of SKY API call quota"), "{said}");
        assert_eq!(verdict(&EntityState::new("gifts")).0, Health::NeverSynced);
        let ok = EntityState { last_success_at: Some(at), last_run_at: Some(at), ..EntityState::new("gifts") };
        assert!(verdict(&ok).1.starts_with("up to date as of 2026-11-30T02:00:00Z; the next run "));
    }

    #[test]
    fn bookmarks_are_described_without_urls() {
        let chain = Bookmark::Chain {
            next_link: "https://api.sky.blackbaud.com/gift/v1/gifts?limit=5000&last_modified=1600-01-01T00%3a00%3a00Z&sort_token=AAAAAAAC%2bI4%3d".into(),
            high_water: Some("2024-05-01T10:00:00+00:00".into()),
        };
        let text = describe_bookmark(Some(&chain.to_json()));
        assert!(text.contains("1600-01-01T00:00:00Z") && text.contains("sort_token held"), "{text}");
        assert!(!text.contains("https://") && !text.contains("AAAA"), "{text}");
        let done = Bookmark::Done { since: Some("2024-05-01T09:30:00Z".into()), high_water: None };
        assert!(describe_bookmark(Some(&done.to_json())).contains("since 2024-05-01T09:30:00Z"));
        assert!(describe_bookmark(None).contains("beginning"));
    }
}
