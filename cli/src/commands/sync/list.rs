//! `skysync sync --list`: the entity catalog. Needs no credentials.

use std::fmt::Write as _;

use skysync_core::sync::{CATALOG, DEFAULT_ENTITIES, Entity, Incremental};

use crate::context::Output;

/// How an entity is kept up to date, in words.
pub fn incremental_note(e: &Entity) -> &'static str {
    match e.incremental {
        Incremental::SortToken => "changes only (last_modified + sort_token chain)",
        Incremental::LastModifiedOffset => {
            "changes only by last_modified with offset paging (no sort_token: rescans from the last run minus the overlap)"
        }
        Incremental::Full => "full each run (no last_modified filter)",
    }
}

/// The catalog as text.
pub fn render() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<18} {:<46} {:>6}  incremental", "entity", "path", "limit");
    for e in CATALOG {
        let mut note = incremental_note(e).to_owned();
        if e.fields_id {
            note.push_str("; id-only reconcile scan (fields=id)");
        }
        if e.key != "id" {
            note.push_str(&format!("; keyed by {}", e.key));
        }
        let _ = writeln!(out, "{:<18} {:<46} {:>6}  {note}", e.name, e.path, e.max_limit);
    }
    let _ = write!(
        out,
        "default: {} (set `entities` in the profile's [sync] table to change)",
        DEFAULT_ENTITIES.join(", ")
    );
    out
}

/// Prints the catalog (JSON with `--json`).
pub fn print_list(out: &Output) -> anyhow::Result<()> {
    if out.json {
        let entities: Vec<serde_json::Value> = CATALOG
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("note".into(), incremental_note(e).into());
                    o.insert("default".into(), DEFAULT_ENTITIES.contains(&e.name).into());
                }
                v
            })
            .collect();
        out.json_value(&serde_json::Value::Array(entities))?;
    } else {
        out.table(&render())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalog_listing_names_every_entity_and_the_full_scan_ones() {
        let text = super::render();
        for e in skysync_core::catalog::CATALOG {
            assert!(text.contains(e.name) && text.contains(e.path), "{}", e.name);
        }
        assert!(text.contains("no sort_token"), "events say how they are kept current");
        assert!(text.contains("keyed by project_id") && text.contains("keyed by batch_id"), "{text}");
    }
}
