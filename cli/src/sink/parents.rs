//! The query behind [`Sink::parent_rows`](super::Sink::parent_rows): the live rows of a parent
//! entity, when each was written, and the newest `date_modified` among the child rows filed under
//! it (child ids are `{parent_id}:{key}`, see `skysync_core::sync::parent`). One statement for
//! both databases but the two string functions.

use skysync_core::catalog::Entity;

use super::quote_ident;

/// The SQL dialect of [`parent_rows_sql`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Three text columns: parent id, its `synced_at` and the child high-water (RFC 3339 or NULL).
pub(crate) fn parent_rows_sql(parent: &Entity, child: &Entity, dialect: Dialect) -> String {
    let (p, c) = (quote_ident(parent.name), quote_ident(child.name));
    let (prefix, has_sep, synced, hw) = match dialect {
        Dialect::Sqlite => {
            ("substr(id, 1, instr(id, ':') - 1)", "instr(id, ':') > 0", "p.synced_at".to_owned(), "c.hw".to_owned())
        }
        Dialect::Postgres => {
            let text = |col: &str| format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
            ("split_part(id, ':', 1)", "strpos(id, ':') > 0", text("p.synced_at"), text("c.hw"))
        }
    };
    format!(
        "SELECT p.id, {synced}, {hw} FROM {p} AS p
         LEFT JOIN (SELECT {prefix} AS parent, max(date_modified) AS hw FROM {c} WHERE {has_sep} GROUP BY 1) AS c
             ON c.parent = p.id
         WHERE p.deleted_at IS NULL ORDER BY p.id"
    )
}
