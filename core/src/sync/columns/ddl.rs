//! SQL for the views: [`ViewSpec`]s in, `CREATE VIEW` text out, for SQLite (`json_extract`,
//! `json_type`, `json_each`) or PostgreSQL (`jsonb` `->`/`->>`, `jsonb_typeof`,
//! `jsonb_array_elements`). Pure string building; the sinks run the text.
//!
//! Every typed value is guarded by the JSON value's kind, so a record with an unexpected shape
//! gives `NULL` in that column instead of an error for the whole query. The two dialects agree on
//! every value except the representation noted on [`SqlType`] (SQLite has no boolean, date or
//! timestamp type: 1/0 and ISO text stand in). Column names are quoted in the SQL; the specs
//! avoid reserved words anyway, so people need not quote them in their queries.

use super::{Column, PARENT_ID, ROW_ID, SqlType, ViewSpec, When};

/// Which database's SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.38+ (JSON functions built in). The table's `data` column is JSON text.
    Sqlite,
    /// PostgreSQL 12+. The table's `data` column is `jsonb`.
    Postgres,
}

/// Names of a view's columns, in order, as the view exposes them (fuzzy dates expanded, the
/// parent id, position and `deleted_at` included).
pub fn column_names(spec: &ViewSpec) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(each) = spec.each {
        names.push(each.parent_id.to_owned());
        names.push("position".to_owned());
    }
    for c in spec.columns {
        names.push(c.name.to_owned());
        if c.ty == SqlType::FuzzyDate {
            for part in FUZZY_PARTS {
                names.push(format!("{}_{}", c.name, part.0));
            }
        }
    }
    names.push("deleted_at".to_owned());
    names
}

/// `DROP VIEW IF EXISTS` for one view (the same in both dialects).
pub fn drop_view(spec: &ViewSpec) -> String {
    format!("DROP VIEW IF EXISTS {};", spec.name)
}

/// `CREATE VIEW` for one view.
pub fn create_view(spec: &ViewSpec, dialect: Dialect) -> String {
    let sql = Sql { dialect };
    let mut select = Vec::new();
    if let Some(each) = spec.each {
        select.push(format!("t.id AS {}", quote_ident(each.parent_id)));
        select.push(match dialect {
            Dialect::Sqlite => "e.key + 1 AS \"position\"".to_owned(),
            Dialect::Postgres => "e.position AS \"position\"".to_owned(),
        });
    }
    for c in spec.columns {
        for (name, expr) in sql.column(spec, c) {
            select.push(format!("{expr} AS {}", quote_ident(&name)));
        }
    }
    select.push("t.deleted_at AS \"deleted_at\"".to_owned());
    let table = quote_ident(spec.entity);
    let from = match (spec.each, dialect) {
        (None, _) => format!("FROM {table} AS t"),
        (Some(each), Dialect::Sqlite) => {
            let p = sqlite_path(each.path);
            format!("FROM {table} AS t, json_each(t.data, {p}) AS e\nWHERE json_type(t.data, {p}) = 'array'")
        }
        (Some(each), Dialect::Postgres) => {
            let arr = pg_value("t.data", each.path);
            format!(
                "FROM {table} AS t\nCROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof({arr}) = 'array' \
                 THEN {arr} ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, position)"
            )
        }
    };
    format!("CREATE VIEW {} AS\nSELECT\n  {}\n{from};", spec.name, select.join(",\n  "))
}

/// Drop-then-create for each view, in order: a script that (re)defines them all. Dropping first
/// lets a new build change a view's columns, which `CREATE OR REPLACE VIEW` cannot do in
/// PostgreSQL.
pub fn script<'a>(specs: impl IntoIterator<Item = &'a ViewSpec>, dialect: Dialect) -> String {
    let mut out = functions(dialect).to_owned();
    if !out.is_empty() {
        out.push('\n');
    }
    for spec in specs {
        out.push_str(&drop_view(spec));
        out.push('\n');
        out.push_str(&create_view(spec, dialect));
        out.push_str("\n\n");
    }
    out
}

/// The parts of a fuzzy date: column suffix and JSON key.
pub(super) const FUZZY_PARTS: [(&str, &str); 3] = [("year", "y"), ("month", "m"), ("day", "d")];

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'$.a.b'`: a SQLite JSON path literal.
fn sqlite_path(path: &str) -> String {
    format!("'$.{path}'")
}

/// `src->'a'->'b'`: the jsonb value at a path.
fn pg_value(src: &str, path: &str) -> String {
    let mut out = src.to_owned();
    for key in path.split('.') {
        out.push_str(&format!("->'{key}'"));
    }
    out
}

/// `src->'a'->>'b'`: the text of the jsonb value at a path.
fn pg_text(src: &str, path: &str) -> String {
    match path.rsplit_once('.') {
        Some((head, last)) => format!("{}->>'{last}'", pg_value(src, head)),
        None => format!("{src}->>'{path}'"),
    }
}

/// Expression builder for one dialect.
struct Sql {
    dialect: Dialect,
}

impl Sql {
    /// The (name, expression) pairs of one spec column (four for a fuzzy date).
    fn column(&self, spec: &ViewSpec, c: &Column) -> Vec<(String, String)> {
        if c.path == ROW_ID {
            return vec![(c.name.to_owned(), "t.id".to_owned())];
        }
        if c.path == PARENT_ID {
            // The part of the row id before the separator (`sync::parent::child_row_id`).
            let expr = match self.dialect {
                Dialect::Sqlite => "CASE WHEN instr(t.id, ':') > 0 THEN substr(t.id, 1, instr(t.id, ':') - 1) END",
                Dialect::Postgres => "CASE WHEN strpos(t.id, ':') > 0 THEN split_part(t.id, ':', 1) END",
            };
            return vec![(c.name.to_owned(), expr.to_owned())];
        }
        let (src, path) = source(spec, c.path);
        let mut out = Vec::new();
        if c.ty == SqlType::FuzzyDate {
            out.push((c.name.to_owned(), self.fuzzy_complete(src, path)));
            for (suffix, key) in FUZZY_PARTS {
                let part = format!("{path}.{key}");
                out.push((format!("{}_{suffix}", c.name), self.typed(SqlType::Integer, src, &part)));
            }
        } else {
            out.push((c.name.to_owned(), self.typed(c.ty, src, path)));
        }
        if let Some(when) = c.when {
            let cond = self.condition(spec, &when);
            for (_, expr) in &mut out {
                *expr = format!("CASE WHEN {cond} THEN {expr} END");
            }
        }
        out
    }

    fn condition(&self, spec: &ViewSpec, when: &When) -> String {
        let (src, path) = source(spec, when.path);
        let values: Vec<String> = when.any_of.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect();
        let field = match self.dialect {
            Dialect::Sqlite => format!("json_extract({src}, {})", sqlite_path(path)),
            Dialect::Postgres => pg_text(src, path),
        };
        format!("{field} IN ({})", values.join(", "))
    }

    /// The JSON kind of the value at `path`, in the dialect's words.
    fn kind(&self, src: &str, path: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_type({src}, {})", sqlite_path(path)),
            Dialect::Postgres => format!("jsonb_typeof({})", pg_value(src, path)),
        }
    }

    /// The scalar at `path` (SQLite: its SQL value; PostgreSQL: its text).
    fn scalar(&self, src: &str, path: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("json_extract({src}, {})", sqlite_path(path)),
            Dialect::Postgres => pg_text(src, path),
        }
    }

    fn typed(&self, ty: SqlType, src: &str, path: &str) -> String {
        let kind = self.kind(src, path);
        let v = self.scalar(src, path);
        match (self.dialect, ty) {
            (Dialect::Sqlite, SqlType::Text) => {
                format!("CASE WHEN {kind} IN ('text', 'integer', 'real') THEN CAST({v} AS TEXT) END")
            }
            (Dialect::Postgres, SqlType::Text) => format!("CASE WHEN {kind} IN ('string', 'number') THEN {v} END"),
            (Dialect::Sqlite, SqlType::Integer) => format!(
                "CASE {kind} WHEN 'integer' THEN {v} WHEN 'real' THEN CAST({v} AS INTEGER) \
                 WHEN 'text' THEN CASE WHEN {} THEN CAST({v} AS INTEGER) END END",
                sqlite_decimal_text(&v, false)
            ),
            (Dialect::Postgres, SqlType::Integer) => format!(
                "CASE WHEN {kind} = 'number' OR ({kind} = 'string' AND {v} ~ '^-?[0-9]+$') \
                 THEN trunc(({v})::numeric)::bigint END"
            ),
            (Dialect::Sqlite, SqlType::Number) => format!(
                "CASE WHEN {kind} IN ('integer', 'real') OR ({kind} = 'text' AND {}) THEN CAST({v} AS REAL) END",
                sqlite_decimal_text(&v, true)
            ),
            (Dialect::Postgres, SqlType::Number) => format!(
                "CASE WHEN {kind} = 'number' OR ({kind} = 'string' AND {v} ~ '^-?[0-9]+([.][0-9]+)?$') \
                 THEN ({v})::numeric END"
            ),
            (Dialect::Sqlite, SqlType::Boolean) => format!(
                "CASE {kind} WHEN 'true' THEN 1 WHEN 'false' THEN 0 \
                 WHEN 'text' THEN CASE lower({v}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END END"
            ),
            (Dialect::Postgres, SqlType::Boolean) => format!(
                "CASE WHEN {kind} = 'boolean' OR ({kind} = 'string' AND lower({v}) IN ('true', 'false')) \
                 THEN lower({v})::boolean END"
            ),
            (Dialect::Sqlite, SqlType::Date) => format!(
                "CASE {kind} WHEN 'text' THEN CASE WHEN {v} GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' \
                 AND {} THEN substr({v}, 1, 10) END WHEN 'object' THEN {} END",
                sqlite_real_date(&format!("substr({v}, 1, 10)")),
                self.fuzzy_complete(src, path)
            ),
            (Dialect::Postgres, SqlType::Date) => format!(
                "CASE {kind} WHEN 'string' THEN CASE WHEN {v} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}' \
                 THEN {PG_DATE}(left({v}, 10)) END WHEN 'object' THEN {} END",
                self.fuzzy_complete(src, path)
            ),
            (Dialect::Sqlite, SqlType::Timestamp) => format!(
                "CASE {kind} WHEN 'text' THEN CASE WHEN {} THEN strftime('%Y-%m-%dT%H:%M:%fZ', {v}) END END",
                sqlite_real_date(&format!("substr({v}, 1, 10)"))
            ),
            (Dialect::Postgres, SqlType::Timestamp) => format!(
                "CASE WHEN {kind} = 'string' AND {v} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}' THEN {PG_TIMESTAMP}({v}) END"
            ),
            (_, SqlType::FuzzyDate) => self.fuzzy_complete(src, path),
        }
    }

    /// The ISO date of a fuzzy date at `path` when year, month and day are all plausible, else NULL.
    fn fuzzy_complete(&self, src: &str, path: &str) -> String {
        let part = |key: &str| {
            let p = format!("{path}.{key}");
            match self.dialect {
                Dialect::Sqlite => (
                    format!("json_type({src}, {}) = 'integer'", sqlite_path(&p)),
                    format!("json_extract({src}, {})", sqlite_path(&p)),
                ),
                Dialect::Postgres => (
                    format!("jsonb_typeof({}) = 'number'", pg_value(src, &p)),
                    format!("trunc(({})::numeric)::int", pg_text(src, &p)),
                ),
            }
        };
        let [(y_ok, y), (m_ok, m), (d_ok, d)] = FUZZY_PARTS.map(|(_, key)| part(key));
        // Nested CASEs: PostgreSQL may evaluate AND's operands in any order, and the casts must
        // only run on numbers.
        let range = format!("{y} BETWEEN 1 AND 9999 AND {m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND 31");
        // A day the month does not have (30 February) gives NULL in both databases.
        let date = match self.dialect {
            Dialect::Sqlite => {
                let text = format!("printf('%04d-%02d-%02d', {y}, {m}, {d})");
                format!("CASE WHEN {} THEN {text} END", sqlite_real_date(&text))
            }
            Dialect::Postgres => {
                format!("{PG_DATE}(format('%s-%s-%s', lpad(({y})::text, 4, '0'), {m}, {d}))")
            }
        };
        format!("CASE WHEN {y_ok} AND {m_ok} AND {d_ok} THEN CASE WHEN {range} THEN {date} END END")
    }
}

/// SQLite: whether `YYYY-MM-DD` text `v` is a day of the calendar. SQLite's date functions take
/// any day up to 31 and, given a modifier, roll it over (`2023-02-30` becomes `2023-03-02`), so a
/// real date is one that comes back unchanged.
fn sqlite_real_date(v: &str) -> String {
    format!("date({v}, '+0 days') = {v}")
}

/// PostgreSQL: `text` → `date`, `NULL` when the text is not a date (a cast would fail the query).
const PG_DATE: &str = "skysync_date";
/// PostgreSQL: `text` → `timestamptz`, `NULL` when the text is not one.
const PG_TIMESTAMP: &str = "skysync_timestamptz";

/// The functions the PostgreSQL views call, created (or replaced) before them. A cast in plain
/// SQL cannot fail softly: one record holding `2023-02-30` would make every query on the view
/// fail, where SQLite gives `NULL`. The input is ISO 8601 (checked by the views' patterns), which
/// PostgreSQL reads the same under every `DateStyle`.
pub fn functions(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => {
            "CREATE OR REPLACE FUNCTION skysync_date(t text) RETURNS date LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN t::date; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION skysync_timestamptz(t text) RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN RETURN t::timestamptz; EXCEPTION WHEN others THEN RETURN NULL; END $$;
"
        }
    }
}

/// SQLite: whether text `v` is a plain decimal (`-12`, `3.5`; with `fraction` false, whole
/// numbers only), the strings PostgreSQL's `^-?[0-9]+([.][0-9]+)?$` accepts. SQLite has no
/// regular expressions built in; GLOB patterns do the same.
fn sqlite_decimal_text(v: &str, fraction: bool) -> String {
    let sign_and_digit = format!("({v} GLOB '[0-9]*' OR {v} GLOB '-[0-9]*')");
    if fraction {
        format!(
            "{sign_and_digit} AND substr({v}, 2) NOT GLOB '*[^0-9.]*' AND {v} NOT GLOB '*.*.*' AND {v} NOT GLOB '*.'"
        )
    } else {
        format!("{sign_and_digit} AND substr({v}, 2) NOT GLOB '*[^0-9]*'")
    }
}

/// Where a column's path is read: the element (`e.value`) in a child view, unless it starts with
/// `^.`; the record (`t.data`) otherwise.
fn source<'p>(spec: &ViewSpec, path: &'p str) -> (&'static str, &'p str) {
    match (spec.each, path.strip_prefix("^.")) {
        (Some(_), Some(parent_path)) => ("t.data", parent_path),
        (Some(_), None) => ("e.value", path),
        (None, _) => ("t.data", path.strip_prefix("^.").unwrap_or(path)),
    }
}
