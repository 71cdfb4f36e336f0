//! The catalog of SKY API list endpoints skysync can sync.
//!
//! This is data, not code per entity: the sync engine, the simulator and `sync --list` all read the
//! same table. Facts come from Blackbaud's OpenAPI specs (see `docs/sky-endpoints.md` in the
//! project's shared docs).

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
    },
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
        }
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
