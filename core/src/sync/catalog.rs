//! The catalog of SKY API list endpoints skysync can sync.
//!
//! This is data, not code per entity: the sync engine, the simulator and `sync --list` all read the
//! same table. Facts come from Blackbaud's OpenAPI specs (see `docs/sky-endpoints.md` in the
//! project's shared docs).
//!
//! Financial Edge NXT general ledger (`/generalledger/v1/…`), as Blackbaud documents it:
//! - `projects`: the Project (Search) operation,
//!   <https://developer.sky.blackbaud.com/docs/services/56eb17a0a9db9516c46bff6f/operations/SearchProjects>:
//!   `offset`, `limit` (default 100, "The maximum allowed value is 5000"), `last_modified`
//!   ("modified records based on or after a specified date"); the envelope is `count` + `value`;
//!   records are keyed by `project_id` (an integer) and carry `date_modified`. (An older revision
//!   of that page said `last_modified` adds a `sort_token` to a `next_link`; the current one and
//!   its example show no `next_link`. Offset paging works either way: the offset cursor ignores a
//!   `next_link`.)
//! - `journal_entry_batches`: `ListJournalEntryBatches` in Blackbaud's own connector definition,
//!   `microsoft/PowerPlatformConnectors`, `certified-connectors/Blackbaud FENXT General
//!   Ledger/apiDefinition.swagger.json` (publisher Blackbaud, Inc.): `limit` ("The default is
//!   100. The maximum is 500."), `offset`, `last_modified` ("modified on or after the specified
//!   date", date-time), `status`, `search_text`; envelope `GLApi.JournalEntryBatchCollection` =
//!   `count` + `value` (no `next_link`); key `batch_id` (int32), with `date_modified`.
//! - Not in the catalog: the accounts list (`GET /generalledger/v1/accounts`): its list operation's
//!   paging and change filter were not found in Blackbaud's published material (only the
//!   single-record `GetAccount`, keyed `account_id`); the account code list (`ListAccountCodes`:
//!   `offset`, `limit` max 500, no change filter, key `account_code_id`) is a small code table;
//!   journal entries are listed per batch only (`/journalentrybatches/{batch_id}/journalentries`).
//!   Checked again for the accounts list: Blackbaud's FENXT General Ledger connector definition
//!   (above) shows list operations for classes, journal codes and batches but, in what was read,
//!   none for accounts; the only `GET /generalledger/v1/accounts` found in public code is third-party
//!   fakes (offset paging, `account_id`), which are not Blackbaud's documentation.

use serde::Serialize;

/// How a list endpoint pages and whether it can return only changed records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Incremental {
    /// `last_modified` filter; `next_link` carries a `sort_token` cursor that keeps the order stable.
    SortToken,
    /// `last_modified` filter, but paging is by `offset` only and there is no `next_link`.
    LastModifiedOffset,
    /// No change filter: the whole list is fetched each run.
    Full,
}

/// One SKY API list endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Entity {
    /// Stable name, used for table names, bookmarks and the command line.
    pub name: &'static str,
    /// Path below the API base URL, starting with `/`.
    pub path: &'static str,
    /// Product area, for display.
    pub api: &'static str,
    /// Largest `limit` the endpoint accepts.
    pub max_limit: u32,
    /// Change-tracking capability.
    pub incremental: Incremental,
    /// Whether the list accepts `fields=id` (a cheap id-only scan for delete reconciliation).
    pub fields_id: bool,
    /// Whether the list hides inactive records unless `include_inactive=true`.
    pub include_inactive: bool,
    /// Whether the list hides deceased constituents unless `include_deceased=true`.
    pub include_deceased: bool,
    /// Whether Blackbaud documents ~30 minutes of list latency for this endpoint (the simulator's
    /// `list_lag` knob applies to these lists).
    pub latency_30m: bool,
    /// The record field that holds its key (`id` for Raiser's Edge NXT; the general ledger names
    /// it per record type, e.g. `project_id`, `batch_id`). Stored as the row's `id`.
    pub key: &'static str,
    /// For a list that exists once per record of another entity (event participants, listed per
    /// event): that entity and the path's placeholder. `None` for top-level lists.
    pub parent: Option<Parent>,
}

/// The entity a per-parent list hangs off, and where its id goes in the child's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Parent {
    /// Catalog name of the parent entity (synced first; its rows say which parents exist).
    pub entity: &'static str,
    /// The placeholder in the child's `path` replaced by a parent id, e.g. `{event_id}`.
    pub placeholder: &'static str,
}

impl Entity {
    /// The path of this list under one parent record (the plain `path` for top-level lists).
    pub fn path_for(&self, parent_id: Option<&str>) -> String {
        match (self.parent, parent_id) {
            (Some(p), Some(id)) => self.path.replace(p.placeholder, &percent_encode_segment(id)),
            _ => self.path.to_owned(),
        }
    }
}

/// A parent id as one path segment: anything but unreserved characters is percent-encoded, so an
/// id never adds a segment or a query to the URL.
fn percent_encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A list with the common shape: `sort_token` paging up to 5000 records, no `fields=id`, ~30
/// minutes of list latency. `inactive`: whether it hides inactive records unless asked.
const fn sort_token_list(name: &'static str, path: &'static str, api: &'static str, inactive: bool) -> Entity {
    Entity {
        name,
        path,
        api,
        max_limit: 5000,
        incremental: Incremental::SortToken,
        fields_id: false,
        include_inactive: inactive,
        include_deceased: false,
        latency_30m: true,
        key: "id",
        parent: None,
    }
}

/// A Financial Edge NXT general-ledger list: `offset` paging with a `last_modified` filter and
/// no `next_link`, keyed by `key`, no `fields=id`, no documented list latency.
const fn gl_list(name: &'static str, path: &'static str, max_limit: u32, key: &'static str) -> Entity {
    Entity {
        name,
        path,
        api: "generalledger",
        max_limit,
        incremental: Incremental::LastModifiedOffset,
        fields_id: false,
        include_inactive: false,
        include_deceased: false,
        latency_30m: false,
        key,
        parent: None,
    }
}

/// Every entity skysync knows, in display order.
pub const CATALOG: &[Entity] = &[
    Entity {
        fields_id: true,
        include_deceased: true,
        ..sort_token_list("constituents", "/constituent/v1/constituents", "constituent", true)
    },
    sort_token_list("addresses", "/constituent/v1/addresses", "constituent", true),
    sort_token_list("email_addresses", "/constituent/v1/emailaddresses", "constituent", true),
    sort_token_list("phones", "/constituent/v1/phones", "constituent", true),
    sort_token_list("online_presences", "/constituent/v1/onlinepresences", "constituent", true),
    Entity {
        latency_30m: false,
        ..sort_token_list("relationships", "/constituent/v1/relationships", "constituent", false)
    },
    sort_token_list("constituent_codes", "/constituent/v1/constituents/constituentcodes", "constituent", true),
    Entity { latency_30m: false, ..sort_token_list("notes", "/constituent/v1/notes", "constituent", false) },
    Entity { latency_30m: false, ..sort_token_list("actions", "/constituent/v1/actions", "constituent", false) },
    sort_token_list("educations", "/constituent/v1/educations", "constituent", false),
    Entity {
        latency_30m: false,
        ..sort_token_list("memberships", "/constituent/v1/memberships", "constituent", false)
    },
    // Custom fields (`CustomFieldRead`: id, parent_id, category, type, value, date, comment,
    // date_added, date_modified). Blackbaud's Constituent and Gift API specs document an all-records
    // list for constituents' and gifts' custom fields only (ListConstituentCustomFieldsAllConstituents,
    // ListGiftCustomFieldsAllGifts: `last_modified`, `sort_token`, limit 500/5000, the ~30-minute
    // latency note). Appeals, campaigns, funds (Fundraising API), opportunities (Opportunity API),
    // actions and educations (Constituent API) and events (Event API) document only a per-record
    // list (`/appeals/{appeal_id}/customfields`, …) and the category tables, so they are not
    // catalog entities: syncing them would cost one call per parent record. Source: the OpenAPI
    // specs in GitHub asebesta/claude-skills, blackbaud-renxt-api/references/*.json (commit 79da2cb).
    sort_token_list("constituent_custom_fields", "/constituent/v1/constituents/customfields", "constituent", false),
    sort_token_list("gifts", "/gift/v1/gifts", "gift", false),
    sort_token_list("gift_custom_fields", "/gift/v1/gifts/customfields", "gift", false),
    Entity { latency_30m: false, ..sort_token_list("appeals", "/fundraising/v1/appeals", "fundraising", true) },
    Entity { latency_30m: false, ..sort_token_list("campaigns", "/fundraising/v1/campaigns", "fundraising", true) },
    Entity { latency_30m: false, ..sort_token_list("funds", "/fundraising/v1/funds", "fundraising", true) },
    Entity { latency_30m: false, ..sort_token_list("packages", "/fundraising/v1/packages", "fundraising", true) },
    Entity {
        latency_30m: false,
        ..sort_token_list("opportunities", "/opportunity/v1/opportunities", "opportunity", true)
    },
    Entity {
        name: "events",
        path: "/event/v1/eventlist",
        api: "event",
        max_limit: 10000,
        incremental: Incremental::LastModifiedOffset,
        fields_id: true,
        include_inactive: true,
        include_deceased: false,
        latency_30m: false,
        key: "id",
        parent: None,
    },
    // Event participants, listed per event: GetEventParticipantList, `GET
    // /event/v1/events/{event_id}/participants` in Blackbaud's Event API spec (OpenAPI 3.0.1,
    // GitHub asebesta/claude-skills, blackbaud-renxt-api/references/event.json, commit 79da2cb):
    // `limit` ("The default is 500. The maximum is 10,000."), `offset`, `last_modified` ("results
    // modified on or after the specified date"), `date_added`, `fields` (`id` among them), `sort`
    // (default: last name); envelope `ParticipantListEntryCollection` = `count` + `value`, no
    // `next_link`; records keyed `id` ("The ID of the participant") with `date_modified`, and no
    // event id: the row id is `{event_id}:{id}` so the rows of one event stay together and the
    // views can join (see `sync::parent`).
    Entity {
        name: "event_participants",
        path: "/event/v1/events/{event_id}/participants",
        api: "event",
        max_limit: 10000,
        incremental: Incremental::LastModifiedOffset,
        fields_id: true,
        include_inactive: false,
        include_deceased: false,
        latency_30m: false,
        key: "id",
        parent: Some(Parent { entity: "events", placeholder: "{event_id}" }),
    },
    gl_list("projects", "/generalledger/v1/projects", 5000, "project_id"),
    gl_list("journal_entry_batches", "/generalledger/v1/journalentrybatches", 500, "batch_id"),
];

/// Entities synced when neither the command line nor the config names any.
pub const DEFAULT_ENTITIES: &[&str] = &["constituents", "gifts"];

/// Looks an entity up by name (case-insensitive; `-` and `_` are interchangeable).
pub fn find(name: &str) -> Option<&'static Entity> {
    let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
    CATALOG.iter().find(|e| e.name == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid_sql_identifiers() {
        let mut seen = std::collections::HashSet::new();
        for e in CATALOG {
            assert!(seen.insert(e.name), "duplicate {}", e.name);
            assert!(e.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(e.path.starts_with('/'));
            assert!(e.name != "sync_state");
            if let Some(p) = e.parent {
                let parent = find(p.entity).expect("a parent in the catalog");
                assert!(parent.parent.is_none(), "{}: one level of parents only", e.name);
                assert!(e.path.contains(p.placeholder), "{}", e.name);
            }
        }
    }

    #[test]
    fn a_child_path_takes_one_encoded_segment() {
        let e = find("event-participants").unwrap();
        assert_eq!(e.path_for(Some("42")), "/event/v1/events/42/participants");
        assert_eq!(e.path_for(Some("a/b?c")), "/event/v1/events/a%2Fb%3Fc/participants");
        assert_eq!(find("events").unwrap().path_for(Some("1")), "/event/v1/eventlist");
    }

    #[test]
    fn general_ledger_lists_name_their_keys() {
        assert_eq!(find("projects").unwrap().key, "project_id");
        assert_eq!(find("journal-entry-batches").unwrap().key, "batch_id");
        assert_eq!(find("journal_entry_batches").unwrap().max_limit, 500);
        assert!(CATALOG.iter().filter(|e| e.api != "generalledger").all(|e| e.key == "id"));
    }

    #[test]
    fn find_accepts_dashes_and_case() {
        assert_eq!(find("Email-Addresses").unwrap().path, "/constituent/v1/emailaddresses");
        assert!(find("nope").is_none());
        for d in DEFAULT_ENTITIES {
            assert!(find(d).is_some());
        }
    }
}
