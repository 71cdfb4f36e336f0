//! The sync's decisions, as values: which request comes next, what a page commits, where the
//! bookmark moves, when deletes are reconciled, when a run must stop.
//!
//! - [`catalog`](crate::sync::catalog): the SKY API lists skysync knows and how each pages.
//! - [`columns`](crate::sync::columns): the typed reporting views over the synced tables, as data, and their SQL.
//! - [`page`](crate::sync::page): reading a list page and its records.
//! - [`filters`](crate::sync::filters): a request's filters, replayed onto the links the API hands back.
//! - [`bookmark`](crate::sync::bookmark): what is stored with each page's rows, and the high-water mark.
//! - [`cursor`](crate::sync::cursor): where the next page of one list scan comes from.
//! - [`plan`](crate::sync::plan): one entity's run, step by step ([`EntityPlan`](crate::sync::EntityPlan)).
//! - [`parent`](crate::sync::parent): per-parent lists (event participants), one chain per changed parent.
//! - [`partition`](crate::sync::partition): an initial or full scan split into chains that run side by side.
//! - [`schedule`](crate::sync::schedule): when a reconciliation is due, and which errors stop the whole run.
//! - [`quota`](crate::sync::quota): what a run will cost in calls, and what the daily quota has left.
//!
//! Nothing here awaits or does I/O: a caller (the CLI's engine, or a browser app) runs an
//! [`EntityPlan`](crate::sync::EntityPlan) against its own HTTP transport and its own storage, passing `now` in.

pub mod bookmark;
pub mod catalog;
pub mod columns;
pub mod cursor;
pub mod filters;
pub mod page;
pub mod parent;
pub mod partition;
pub mod plan;
pub mod quota;
pub mod schedule;

pub use bookmark::{BEGINNING_OF_TIME, Bookmark, page_high_water};
pub use catalog::{CATALOG, DEFAULT_ENTITIES, Entity, Incremental, Parent, find};
pub use cursor::{Cursor, CursorOptions, DEFAULT_OVERLAP, ScanCounts, Step};
pub use filters::{CURSOR_PARAMS, filters_of, restore_filters, with_continuation_token};
pub use page::{
    Page, PageError, Record, RecordJson, RecordKey, into_records, parse_keyed_page, parse_page, record_key,
    record_key_named, record_keys,
};
pub use parent::{ChildBookmark, ChildPlan, ParentRow, child_row_id};
pub use plan::{Commit, EntityPlan, Next, PageOutcome, Phase, PlanError, RunMode, StoredState, SyncOptions};
pub use schedule::{RunStop, reconcile_due, stops_run};
