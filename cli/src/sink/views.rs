//! The reporting views (`v_*`, see [`skysync_core::sync::columns`]) in the database sinks.
//!
//! Each sync's schema step ([`super::Sink::prepare`]) calls [`refresh_sqlite`] or
//! [`refresh_postgres`] in the transaction that creates the tables, so the views always match the
//! running binary and the tables beside them. Views exist only for entities whose table exists
//! (a view over a missing table is an error in PostgreSQL); an entity's views appear with its first
//! sync. Creating empty tables for every catalog entity instead would give reports a fixed
//! schema, but would also put tables for lists a profile never syncs beside its data.
//!
//! A view is re-created only when its SQL changed (a new skysync version) or it is missing: the
//! fingerprint of each view's SQL is kept in `skysync_meta`. So views that people build on ours
//! (dbt models, Metabase questions) keep working from night to night, and a newly synced entity
//! adds its views without touching the others. In PostgreSQL, re-creating one of ours that another
//! view depends on fails: the sync stops with PostgreSQL's message naming the dependent view, to
//! be dropped before the run and re-created after it.

use std::collections::{BTreeMap, BTreeSet};

use skysync_core::sync::columns::{self, ViewSpec, ddl};

/// `skysync_meta` key holding the fingerprints of the views' SQL last run, as a JSON object
/// (view name → fingerprint).
const META_KEY: &str = "views";

/// The views whose entity table is among `tables`, in reference order.
fn wanted(tables: &BTreeSet<String>) -> Vec<&'static ViewSpec> {
    columns::all().filter(|v| tables.contains(v.entity)).collect()
}

/// FNV-1a of the SQL: stable across Rust versions (unlike `DefaultHasher`).
fn fingerprint(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// What a refresh must run (drop and create the views whose SQL changed or that are missing), and
/// the fingerprints to store after it; `None` when every view is current.
fn plan(
    tables: &BTreeSet<String>,
    views: &BTreeSet<String>,
    stored: Option<&str>,
    dialect: ddl::Dialect,
) -> Option<(String, String)> {
    let stored: BTreeMap<String, String> = stored.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let mut sql = String::new();
    let mut prints = BTreeMap::new();
    for spec in wanted(tables) {
        let create = ddl::create_view(spec, dialect);
        let print = fingerprint(&create);
        if stored.get(spec.name) != Some(&print) || !views.contains(spec.name) {
            sql.push_str(&format!("{}\n{create}\n", ddl::drop_view(spec)));
        }
        prints.insert(spec.name.to_owned(), print);
    }
    // The functions the views call go first (PostgreSQL; see `ddl::functions`).
    (!sql.is_empty())
        .then(|| (format!("{}{sql}", ddl::functions(dialect)), serde_json::to_string(&prints).unwrap_or_default()))
}

/// Creates or replaces the views in a SQLite database, inside the caller's transaction.
pub(crate) fn refresh_sqlite(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let names = |kind: &str| -> rusqlite::Result<BTreeSet<String>> {
        let mut st = conn.prepare("SELECT name FROM sqlite_master WHERE type = ?1")?;
        let rows = st.query_map([kind], |r| r.get::<_, String>(0))?;
        rows.collect()
    };
    let stored: Option<String> = conn
        .query_row("SELECT value FROM skysync_meta WHERE key = ?1", [META_KEY], |r| r.get(0))
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
    if let Some((sql, print)) = plan(&names("table")?, &names("view")?, stored.as_deref(), ddl::Dialect::Sqlite) {
        conn.execute_batch(&sql)?;
        conn.execute(
            "INSERT INTO skysync_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [META_KEY, &print],
        )?;
    }
    Ok(())
}

/// Creates or replaces the views in the current PostgreSQL schema, inside the caller's transaction.
pub(crate) async fn refresh_postgres(c: &impl tokio_postgres::GenericClient) -> Result<(), tokio_postgres::Error> {
    let names = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get::<_, String>(0)).collect::<BTreeSet<_>>();
    let tables =
        names(c.query("SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()", &[]).await?);
    let views = names(c.query("SELECT viewname::text FROM pg_views WHERE schemaname = current_schema()", &[]).await?);
    let stored: Option<String> =
        c.query_opt("SELECT value FROM skysync_meta WHERE key = $1", &[&META_KEY]).await?.map(|r| r.get(0));
    if let Some((sql, print)) = plan(&tables, &views, stored.as_deref(), ddl::Dialect::Postgres) {
        c.batch_execute(&sql).await?;
        c.execute(
            "INSERT INTO skysync_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&META_KEY, &print],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn views_follow_the_tables_that_exist() {
        let names: Vec<&str> = wanted(&set(&["gifts", "sync_state"])).iter().map(|v| v.name).collect();
        assert!(names.contains(&"v_gifts") && names.contains(&"v_gift_splits"), "{names:?}");
        assert!(!names.contains(&"v_constituents"), "{names:?}");
    }

    #[test]
    fn refresh_only_when_the_sql_changed_or_a_view_is_missing() {
        let tables = set(&["gifts"]);
        let (sql, print) = plan(&tables, &set(&[]), None, ddl::Dialect::Sqlite).unwrap();
        assert!(sql.contains("CREATE VIEW v_gift_splits"));
        let views: BTreeSet<String> = wanted(&tables).iter().map(|v| v.name.to_owned()).collect();
        assert!(plan(&tables, &views, Some(&print), ddl::Dialect::Sqlite).is_none());
        assert!(plan(&tables, &views, Some("{}"), ddl::Dialect::Sqlite).is_some());
        assert!(plan(&tables, &views, Some("not json"), ddl::Dialect::Sqlite).is_some());
        let mut one_gone = views.clone();
        one_gone.remove("v_gift_receipts");
        let (sql, _) = plan(&tables, &one_gone, Some(&print), ddl::Dialect::Sqlite).unwrap();
        assert_eq!(sql.matches("CREATE VIEW").count(), 1, "only the missing view: {sql}");
        // A new entity's table adds its views and leaves the others alone.
        let (sql, print2) = plan(&set(&["gifts", "constituents"]), &views, Some(&print), ddl::Dialect::Sqlite).unwrap();
        assert!(sql.contains("CREATE VIEW v_constituents") && !sql.contains("v_gifts"), "{sql}");
        assert!(print2.contains("v_gifts") && print2.contains("v_constituents"));
    }
}
