use std::collections::HashSet;

use super::ddl::{Dialect, column_names, create_view, script};
use super::*;
use crate::sync::catalog::CATALOG;

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Words SQLite or PostgreSQL reserve: as column names they would need quotes in every query.
const RESERVED: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "between",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "index",
    "into",
    "is",
    "join",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "primary",
    "references",
    "select",
    "table",
    "then",
    "to",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "when",
    "where",
    "with",
];

#[test]
fn names_and_paths_are_plain_identifiers() {
    let mut views = HashSet::new();
    for v in all() {
        assert!(views.insert(v.name), "view {} defined twice", v.name);
        assert!(v.name.starts_with("v_") && is_identifier(v.name), "bad view name {}", v.name);
        let mut cols = HashSet::new();
        for name in column_names(v) {
            assert!(is_identifier(&name), "{}: bad column name {name}", v.name);
            assert!(
                !RESERVED.contains(&name.as_str()),
                "{}: {name} is a reserved word in SQLite or PostgreSQL",
                v.name
            );
            assert!(cols.insert(name.clone()), "{}: column {name} twice", v.name);
        }
        let paths = v.columns.iter().map(|c| c.path).chain(v.columns.iter().filter_map(|c| c.when.map(|w| w.path)));
        for path in paths.chain(v.each.map(|e| e.path)).filter(|p| ![super::PARENT_ID, super::ROW_ID].contains(p)) {
            let keys = path.strip_prefix("^.").unwrap_or(path);
            assert!(keys.split('.').all(is_identifier), "{}: bad path {path}", v.name);
            assert!(v.each.is_some() || !path.starts_with("^."), "{}: ^. outside a child view", v.name);
        }
    }
}

#[test]
fn every_view_reads_a_catalog_entity() {
    for v in all() {
        assert!(CATALOG.iter().any(|e| e.name == v.entity), "{} reads unknown entity {}", v.name, v.entity);
    }
}

/// Every catalog entity has its `v_<entity>`. Areas added on other branches (general ledger, event
/// participants) bring their catalog entries and their spec files together, so this holds on
/// every branch once both halves are in.
#[test]
fn every_catalog_entity_has_a_record_view() {
    let missing: Vec<&str> = CATALOG
        .iter()
        .filter(|e| !of_entity(e.name).any(|v| v.each.is_none() && v.name == format!("v_{}", e.name)))
        .map(|e| e.name)
        .collect();
    assert!(missing.is_empty(), "catalog entities without a v_<entity> spec in core/src/sync/columns: {missing:?}");
}

#[test]
fn every_record_view_has_id_first_and_deleted_at_last() {
    for v in all().filter(|v| v.each.is_none()) {
        let names = column_names(v);
        assert_eq!(names.first().map(String::as_str), Some("id"), "{}", v.name);
        assert_eq!(names.last().map(String::as_str), Some("deleted_at"), "{}", v.name);
    }
}

const SPLITS: ViewSpec = ViewSpec {
    name: "v_test_splits",
    entity: "gifts",
    each: Some(Each { path: "gift_splits", parent_id: "gift_id" }),
    about: "test",
    columns: &[text("id"), amount("amount", "amount.value"), date("gift_date").at("^.date")],
};

const FIELDS: ViewSpec = ViewSpec {
    name: "v_test_fields",
    entity: "constituent_custom_fields",
    each: None,
    about: "test",
    columns: &[
        number("value_number").at("value").when("type", &["Number", "Currency"]),
        fuzzy_date("birthdate"),
        boolean("inactive"),
        timestamp("date_modified"),
    ],
};

#[test]
fn sqlite_reads_json_text_with_json_extract_and_json_each() {
    let sql = create_view(&SPLITS, Dialect::Sqlite);
    assert!(
        sql.starts_with("CREATE VIEW v_test_splits AS\nSELECT\n  t.id AS \"gift_id\",\n  e.key + 1 AS \"position\",")
    );
    assert!(sql.contains("FROM \"gifts\" AS t, json_each(t.data, '$.gift_splits') AS e"), "{sql}");
    assert!(sql.contains("WHERE json_type(t.data, '$.gift_splits') = 'array'"), "{sql}");
    assert!(sql.contains("CAST(json_extract(e.value, '$.amount.value') AS REAL) END AS \"amount\""), "{sql}");
    // `^.` reads the parent record, not the element.
    assert!(sql.contains("json_extract(t.data, '$.date')"), "{sql}");
    assert!(!sql.contains("e.value, '$.date'"), "{sql}");
    assert!(sql.trim_end().ends_with("t.deleted_at AS \"deleted_at\"\nFROM \"gifts\" AS t, json_each(t.data, '$.gift_splits') AS e\nWHERE json_type(t.data, '$.gift_splits') = 'array';"), "{sql}");
}

#[test]
fn postgres_reads_jsonb_with_arrows_and_array_elements() {
    let sql = create_view(&SPLITS, Dialect::Postgres);
    assert!(sql.contains("e.position AS \"position\""), "{sql}");
    assert!(sql.contains("jsonb_array_elements(CASE WHEN jsonb_typeof(t.data->'gift_splits') = 'array' THEN t.data->'gift_splits' ELSE '[]'::jsonb END) WITH ORDINALITY AS e(value, position)"), "{sql}");
    assert!(sql.contains("CASE WHEN jsonb_typeof(e.value->'amount'->'value') = 'number' OR (jsonb_typeof(e.value->'amount'->'value') = 'string' AND e.value->'amount'->>'value' ~ '^-?[0-9]+([.][0-9]+)?$') THEN (e.value->'amount'->>'value')::numeric END AS \"amount\""), "{sql}");
    // Dates go through the soft casts, so an impossible date is NULL, not a failed query.
    assert!(sql.contains("skysync_date(left(t.data->>'date', 10))"), "{sql}");
}

#[test]
fn conditional_and_fuzzy_columns() {
    let names = column_names(&FIELDS);
    assert_eq!(
        names,
        [
            "value_number",
            "birthdate",
            "birthdate_year",
            "birthdate_month",
            "birthdate_day",
            "inactive",
            "date_modified",
            "deleted_at"
        ]
    );
    let lite = create_view(&FIELDS, Dialect::Sqlite);
    assert!(lite.contains("CASE WHEN json_extract(t.data, '$.type') IN ('Number', 'Currency') THEN CASE WHEN json_type(t.data, '$.value')"), "{lite}");
    assert!(lite.contains("printf('%04d-%02d-%02d'"), "{lite}");
    assert!(lite.contains("'+0 days') = printf('%04d-%02d-%02d'"), "a day the month lacks is NULL: {lite}");
    assert!(
        lite.contains(
            "CASE json_type(t.data, '$.inactive') WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'text' THEN CASE lower(json_extract(t.data, '$.inactive')) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END END AS \"inactive\""
        ),
        "{lite}"
    );
    assert!(lite.contains("strftime('%Y-%m-%dT%H:%M:%fZ', json_extract(t.data, '$.date_modified'))"), "{lite}");
    let pg = create_view(&FIELDS, Dialect::Postgres);
    assert!(pg.contains("CASE WHEN t.data->>'type' IN ('Number', 'Currency') THEN"), "{pg}");
    assert!(pg.contains("skysync_date(format('%s-%s-%s'"), "{pg}");
    assert!(!pg.contains("::date") && !pg.contains("make_date("), "no cast that can fail: {pg}");
    assert!(pg.contains("lower(t.data->>'inactive')::boolean"), "{pg}");
    assert!(pg.contains("skysync_timestamptz(t.data->>'date_modified')"), "{pg}");
    assert!(!pg.contains("::timestamptz"), "{pg}");
    assert!(pg.contains("FROM \"constituent_custom_fields\" AS t;"), "{pg}");
}

#[test]
fn the_parent_id_column_reads_the_row_id() {
    let v = find("v_event_participants").unwrap();
    assert_eq!(column_names(v)[..3], ["id", "participant_id", "event_id"]);
    let lite = create_view(v, Dialect::Sqlite);
    assert!(lite.contains("substr(t.id, 1, instr(t.id, ':') - 1) END AS \"event_id\""), "{lite}");
    let pg = create_view(v, Dialect::Postgres);
    assert!(pg.contains("split_part(t.id, ':', 1) END AS \"event_id\""), "{pg}");
}

#[test]
fn the_postgres_script_creates_the_soft_casts_first() {
    let s = script([&FIELDS], Dialect::Postgres);
    assert!(s.starts_with("CREATE OR REPLACE FUNCTION skysync_date"), "{s}");
    assert!(script([&FIELDS], Dialect::Sqlite).starts_with("DROP VIEW"));
}

#[test]
fn script_drops_before_creating_each_view() {
    let s = script([&SPLITS, &FIELDS], Dialect::Sqlite);
    let drop = s.find("DROP VIEW IF EXISTS v_test_splits;").unwrap();
    let create = s.find("CREATE VIEW v_test_splits").unwrap();
    assert!(drop < create && create < s.find("DROP VIEW IF EXISTS v_test_fields;").unwrap());
}

#[test]
fn markdown_lists_every_view_and_column() {
    let md = markdown::reference(all());
    for v in all() {
        assert!(md.contains(&format!("\n## {}\n", v.name)), "{}", v.name);
        for c in v.columns {
            assert!(md.contains(&format!("| {} | {} |", c.name, c.ty.doc_name())), "{}.{}", v.name, c.name);
        }
    }
}
