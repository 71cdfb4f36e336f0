//! `skysync sync status`: what the database says about each entity. No API calls.

use std::fmt::Write as _;

use skysync_core::sync::Bookmark;
use skysync_core::sync::partition::PartitionTable;

use crate::context::Output;
use crate::output::timestamp_or_never;
use crate::sink::{self, EntityState, SinkSpec};

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

fn render(states: &[EntityState]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<18} {:>9}  {:<20}  position", "entity", "rows", "last success");
    for s in states {
        let _ = writeln!(
            out,
            "{:<18} {:>9}  {:<20}  {}",
            s.entity,
            s.row_count,
            timestamp_or_never(s.last_success_at),
            describe_bookmark(s.bookmark.as_deref())
        );
        if s.staging_bookmark.is_some() {
            let _ = writeln!(out, "{:<18} a --full resync is in progress; the next `sync --full` resumes it", "");
        }
        if s.reconcile_in_progress {
            let _ = writeln!(out, "{:<18} a delete reconciliation was interrupted; the next run restarts it", "");
        }
        if let Some(e) = &s.last_error {
            let _ = writeln!(out, "{:<18} last error: {e}", "");
        }
    }
    if states.is_empty() {
        out.push_str("nothing synced yet: run `skysync sync`");
    }
    out.trim_end().to_owned()
}

/// Prints the sync state of every entity in the sink.
pub async fn run(out: &Output, spec: &SinkSpec) -> anyhow::Result<()> {
    warn_readable_files(out, spec);
    let mut sink = sink::open(spec).await?;
    let states = sink.states().await?;
    if out.json {
        let items: Vec<serde_json::Value> = states
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("position".into(), describe_bookmark(s.bookmark.as_deref()).into());
                }
                v
            })
            .collect();
        out.json_value(&serde_json::json!({ "sink": sink.describe(), "entities": items }))?;
    } else {
        out.line(format!("{}\n{}", sink.describe(), render(&states)))?;
    }
    Ok(())
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
    use skysync_core::sync::Bookmark;

    use super::describe_bookmark;

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
