//! The column reference (`docs/VIEWS.md`), generated from the same specs as the SQL.

use super::ddl::FUZZY_PARTS;
use super::{SqlType, ViewSpec};

/// What each column type looks like in either database.
const TYPES: &str = "\
| Type | SQLite | PostgreSQL |
|---|---|---|
| text | TEXT | text |
| integer | INTEGER | bigint |
| number | REAL | numeric |
| boolean | 1 / 0 | boolean |
| date | TEXT `YYYY-MM-DD` | date |
| timestamp | TEXT `YYYY-MM-DDTHH:MM:SS.SSSZ` (UTC) | timestamptz |
";

/// The whole reference, for the given views.
pub fn reference<'a>(specs: impl IntoIterator<Item = &'a ViewSpec>) -> String {
    let specs: Vec<&ViewSpec> = specs.into_iter().collect();
    let mut out = String::from(
        "# Views\n\n\
         <!-- Generated from core/src/sync/columns by `skysync views --markdown`; do not edit by hand. -->\n\n\
         Every sync creates (or re-creates) these views over the tables it keeps, in SQLite and PostgreSQL \
         alike, in the same transaction as any table it creates. `skysync views` prints their SQL. A view \
         exists once its entity's table does (after the entity's first sync).\n\n\
         Each `v_<entity>` has one row per record, including records that delete reconciliation found \
         gone (their `deleted_at` is set; filter on `deleted_at IS NULL` for the live set). A child view \
         has one row per element of an array inside each record, with the record's id first and \
         `position` (1-based) second. A value of an unexpected JSON kind reads as NULL.\n\n\
         Column types:\n\n",
    );
    out.push_str(TYPES);
    out.push_str(
        "\nA *fuzzy date* (Blackbaud's `{\"y\", \"m\", \"d\"}`, any part may be missing) gives four columns: \
         `<name>` (a date, when all three parts are present) and `<name>_year`, `<name>_month`, `<name>_day` \
         (integers). Integers, numbers and booleans are also read from JSON strings (`\"500\"`, `\"true\"`); \
         dates from the first ten characters of a date-time (the date as Blackbaud recorded it, no time-zone \
         conversion).\n\n## Contents\n\n",
    );
    for spec in &specs {
        out.push_str(&format!("- [`{0}`](#{0})\n", spec.name));
    }
    for spec in &specs {
        out.push_str(&format!("\n## {}\n\n{}\n\n", spec.name, spec.about));
        match spec.each {
            None => out.push_str(&format!("From table `{}`, one row per record.\n\n", spec.entity)),
            Some(each) => out.push_str(&format!(
                "From table `{}`, one row per element of `{}`; `{}` is the record's id.\n\n",
                spec.entity, each.path, each.parent_id
            )),
        }
        out.push_str("| Column | Type | From |\n|---|---|---|\n");
        if let Some(each) = spec.each {
            out.push_str(&format!("| {} | text | record `id` |\n", each.parent_id));
            out.push_str("| position | integer | index in the array, from 1 |\n");
        }
        for c in spec.columns {
            let mut from = match c.path {
                super::PARENT_ID => "the parent's id, from the row `id` (`{parent id}:{id}`)".to_owned(),
                super::ROW_ID => "the row `id`".to_owned(),
                path => format!("`{path}`"),
            };
            if let Some(when) = c.when {
                from.push_str(&format!(" when `{}` is {}", when.path, when.any_of.join(", ")));
            }
            out.push_str(&format!("| {} | {} | {from} |\n", c.name, c.ty.doc_name()));
            if c.ty == SqlType::FuzzyDate {
                for (suffix, key) in FUZZY_PARTS {
                    out.push_str(&format!("| {}_{suffix} | integer | `{}.{key}` |\n", c.name, c.path));
                }
            }
        }
        out.push_str("| deleted_at | timestamp | when the record was found deleted |\n");
    }
    out
}
