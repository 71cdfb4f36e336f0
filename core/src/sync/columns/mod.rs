//! Typed reporting views, as data: one [`ViewSpec`] per view, listing the columns reports use and
//! where each comes from in a record's JSON.
//!
//! Every synced record is stored whole, as JSON, in its entity's table (`id`, `data`,
//! `date_modified`, `synced_at`, `deleted_at`). A view `v_<entity>` turns the fields people report
//! on into typed columns, and a child view (`v_gift_splits`, …) turns an array inside each record
//! into one row per element, carrying the parent's id. The SQL for SQLite and PostgreSQL is
//! generated from these specs by [`ddl`], and the column reference (`docs/VIEWS.md`) by
//! [`markdown`], so the two databases and the documentation never drift apart.
//!
//! The specs live in one file per area (`constituent.rs`, `gift.rs`, …), each exporting
//! `pub const VIEWS: &[ViewSpec]`; [`AREAS`] lists the areas.
//!
//! # Paths
//! A column's `path` is a dot-separated list of JSON object keys, e.g. `"amount.value"` or
//! `"address.city"`. In a child view the path is read from the array element; a path starting
//! with `^.` is read from the parent record instead (e.g. `"^.date"` for a gift split's gift date).
//! Keys are lower-case ASCII letters, digits and `_`, so they need no quoting in either dialect.
//! Two paths are not JSON: [`ROW_ID`] is the row's stored `id`, and [`PARENT_ID`] the parent id
//! that a per-parent list's row id carries (`{event_id}:{participant_id}`, see `sync::parent`).

pub mod ddl;
pub mod markdown;

mod constituent;
mod event;
mod fundraising;
mod gift;
mod gl;

/// The SQL type of a view column, and how the JSON value becomes it. A JSON value of the wrong
/// kind (a string where a number is expected, say) yields `NULL`, never an error, so one odd record
/// cannot break a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// Text: strings as they are (ids and lookup ids are strings in SKY; numbers read as their text).
    Text,
    /// A whole number (SQLite `INTEGER`, PostgreSQL `bigint`), from a JSON number (truncated)
    /// or a string of digits.
    Integer,
    /// A decimal number, e.g. an amount (SQLite `REAL`, PostgreSQL `numeric`), from a JSON number
    /// or a plain decimal string (`"500"`, `"12.5"`).
    Number,
    /// A boolean (SQLite `1`/`0`, PostgreSQL `boolean`), from a JSON boolean or the string
    /// `"true"`/`"false"` (any case). Blackbaud types a custom field's `value` only as "object",
    /// so both forms are read.
    Boolean,
    /// A calendar date: the first ten characters (`YYYY-MM-DD`) of a date-time string as Blackbaud
    /// sends it (the date as recorded, no time-zone conversion), or a complete fuzzy date
    /// (`{"y","m","d"}`). SQLite: ISO text; PostgreSQL `date`.
    Date,
    /// An instant: a date-time with offset. SQLite: ISO 8601 UTC text
    /// (`YYYY-MM-DDTHH:MM:SS.SSSZ`, sorts chronologically); PostgreSQL `timestamptz`.
    Timestamp,
    /// A Blackbaud fuzzy date (`{"y": 1954, "m": 9, "d": 23}`, any part may be missing). Becomes
    /// four columns: `<name>` (the ISO date when year, month and day are all present, as
    /// [`SqlType::Date`]), and `<name>_year`, `<name>_month`, `<name>_day` (integers).
    FuzzyDate,
}

impl SqlType {
    /// The name used in the column reference.
    pub const fn doc_name(self) -> &'static str {
        match self {
            SqlType::Text => "text",
            SqlType::Integer => "integer",
            SqlType::Number => "number",
            SqlType::Boolean => "boolean",
            SqlType::Date => "date",
            SqlType::Timestamp => "timestamp",
            SqlType::FuzzyDate => "fuzzy date",
        }
    }
}

/// A condition on a sibling field: the column is `NULL` unless the field at `path` (read like the
/// column's own path) is a string equal to one of `any_of`. Used for custom-field values, whose
/// `type` says which typed column holds the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    /// Path of the field tested.
    pub path: &'static str,
    /// Accepted values.
    pub any_of: &'static [&'static str],
}

/// One column of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Column name in the view.
    pub name: &'static str,
    /// Where the value comes from (see the module docs for the syntax).
    pub path: &'static str,
    /// The column's SQL type.
    pub ty: SqlType,
    /// Only filled when this condition holds.
    pub when: Option<When>,
}

impl Column {
    /// A column named like its top-level JSON field.
    pub const fn new(name: &'static str, ty: SqlType) -> Self {
        Column { name, path: name, ty, when: None }
    }

    /// The same column, read from another path.
    pub const fn at(self, path: &'static str) -> Self {
        Column { path, ..self }
    }

    /// The same column, filled only when the field at `path` is one of `any_of`.
    pub const fn when(self, path: &'static str, any_of: &'static [&'static str]) -> Self {
        Column { when: Some(When { path, any_of }), ..self }
    }
}

/// The path of a per-parent list's parent id, read from the row id (see the module docs).
pub const PARENT_ID: &str = "@parent_id";
/// The path of the row's stored `id` (for per-parent lists, where it is not the record's `id`).
pub const ROW_ID: &str = "@row_id";

/// A per-parent list's parent id (e.g. a participant's `event_id`), as text.
pub const fn parent_id(name: &'static str) -> Column {
    Column::new(name, SqlType::Text).at(PARENT_ID)
}

/// A text column named like its JSON field.
pub const fn text(name: &'static str) -> Column {
    Column::new(name, SqlType::Text)
}
/// An integer column named like its JSON field.
pub const fn integer(name: &'static str) -> Column {
    Column::new(name, SqlType::Integer)
}
/// A number column named like its JSON field.
pub const fn number(name: &'static str) -> Column {
    Column::new(name, SqlType::Number)
}
/// A boolean column named like its JSON field.
pub const fn boolean(name: &'static str) -> Column {
    Column::new(name, SqlType::Boolean)
}
/// A date column named like its JSON field.
pub const fn date(name: &'static str) -> Column {
    Column::new(name, SqlType::Date)
}
/// A timestamp column named like its JSON field.
pub const fn timestamp(name: &'static str) -> Column {
    Column::new(name, SqlType::Timestamp)
}
/// A fuzzy-date column (four columns in the view) named like its JSON field.
pub const fn fuzzy_date(name: &'static str) -> Column {
    Column::new(name, SqlType::FuzzyDate)
}
/// An amount: a SKY currency object `{"value": n}` read as a number.
pub const fn amount(name: &'static str, path: &'static str) -> Column {
    Column::new(name, SqlType::Number).at(path)
}

/// The child array a view unnests: one view row per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Each {
    /// Path of the array in the parent record.
    pub path: &'static str,
    /// Name of the view column holding the parent record's id (e.g. `gift_id`).
    pub parent_id: &'static str,
}

/// One reporting view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSpec {
    /// View name, `v_…`.
    pub name: &'static str,
    /// Catalog entity whose table the view reads.
    pub entity: &'static str,
    /// `None`: one row per record. `Some`: one row per element of an array in each record.
    pub each: Option<Each>,
    /// One sentence for the column reference.
    pub about: &'static str,
    /// The typed columns, in order.
    ///
    /// The generator adds, around them: for a child view, first `<parent_id>` (the record's id)
    /// and `position` (1-based index in the array); last, `deleted_at` (the table's: when delete
    /// reconciliation found the record gone, `NULL` while it exists).
    pub columns: &'static [Column],
}

/// Every area's views. An area is one file of this module exporting `VIEWS`.
pub const AREAS: &[&[ViewSpec]] = &[constituent::VIEWS, gift::VIEWS, fundraising::VIEWS, event::VIEWS, gl::VIEWS];

/// Every view, in area order.
pub fn all() -> impl Iterator<Item = &'static ViewSpec> {
    AREAS.iter().flat_map(|area| area.iter())
}

/// The views reading entity `entity`'s table.
pub fn of_entity(entity: &str) -> impl Iterator<Item = &'static ViewSpec> + '_ {
    all().filter(move |v| v.entity == entity)
}

/// Looks a view up by name.
pub fn find(name: &str) -> Option<&'static ViewSpec> {
    all().find(|v| v.name == name)
}

#[cfg(test)]
mod tests;
