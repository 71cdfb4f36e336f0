//! Views of the Financial Edge NXT general ledger lists: projects (Blackbaud's `GetProject` /
//! Project (Search) record) and journal entry batches (`GLApi.JournalEntryBatch`). Their keys are
//! `project_id` and `batch_id` (the catalog's `key`): `id` (text, first like every record view)
//! reads the same field, and the integer column keeps its Blackbaud name.

use super::{Column, Each, ViewSpec, boolean, date, integer, text, timestamp};

const ADDED: Column = timestamp("date_added");
const MODIFIED: Column = timestamp("date_modified");

/// The general ledger's views.
pub const VIEWS: &[ViewSpec] = &[
    ViewSpec {
        name: "v_projects",
        entity: "projects",
        each: None,
        about: "One row per general-ledger project (Financial Edge NXT).",
        columns: &[
            text("id").at("project_id"),
            integer("project_id"),
            text("ui_project_id"),
            text("description"),
            date("start_date"),
            date("end_date"),
            text("location"),
            text("division"),
            text("department"),
            text("type"),
            text("status"),
            boolean("prevent_data_entry"),
            boolean("prevent_posting_after"),
            date("posting_date"),
            text("account_restrictions").at("account_restrictions.allow_or_restrict"),
            text("account_restriction_criteria").at("account_restrictions.criteria"),
            text("added_by"),
            text("modified_by"),
            ADDED,
            MODIFIED,
        ],
    },
    ViewSpec {
        name: "v_project_contacts",
        entity: "projects",
        each: Some(Each { path: "contacts", parent_id: "project_id" }),
        about: "One row per contact of a general-ledger project.",
        columns: &[
            integer("contact_id"),
            text("description"),
            text("title"),
            text("first_name"),
            text("middle_name"),
            text("last_name"),
            text("suffix"),
            text("contact_position").at("position"),
            text("address_line"),
            text("city"),
            text("state"),
            text("postal"),
            text("county"),
            text("country"),
        ],
    },
    ViewSpec {
        name: "v_project_custom_fields",
        entity: "projects",
        each: Some(Each { path: "custom_fields", parent_id: "project_id" }),
        about: "One row per custom field value of a general-ledger project.",
        columns: &[
            integer("custom_field_id"),
            text("field_name"),
            text("type"),
            text("value"),
            date("date"),
            text("comments"),
        ],
    },
    ViewSpec {
        name: "v_journal_entry_batches",
        entity: "journal_entry_batches",
        each: None,
        about: "One row per journal entry batch (Financial Edge NXT general ledger).",
        columns: &[
            text("id").at("batch_id"),
            integer("batch_id"),
            text("ui_batch_id"),
            text("description"),
            text("batch_status"),
            boolean("create_bank_account_adjustments"),
            boolean("create_interfund_sets"),
            text("source_system_name"),
            text("source_base_url"),
            text("added_by"),
            text("modified_by"),
            ADDED,
            MODIFIED,
        ],
    },
];
