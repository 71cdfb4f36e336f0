//! Views of the Fundraising, Opportunity and Event lists: appeals, campaigns, funds, packages
//! (`AppealRead`, `CampaignRead`, `FundRead`, `PackageRead`), opportunities (`OpportunityRead`) and
//! the event list (`EventListEntry`).

use super::{Column, ViewSpec, amount, boolean, date, integer, number, text, timestamp};

const ADDED: Column = timestamp("date_added");
const MODIFIED: Column = timestamp("date_modified");

/// Appeals, campaigns and funds share one shape (funds add `type`).
const APPEAL_LIKE: &[Column] = &[
    text("id"),
    text("lookup_id"),
    text("description"),
    text("category"),
    amount("goal", "goal.value"),
    date("start_date"),
    date("end_date"),
    boolean("inactive"),
    ADDED,
    MODIFIED,
];

/// The fundraising area's views.
pub const VIEWS: &[ViewSpec] = &[
    ViewSpec {
        name: "v_appeals",
        entity: "appeals",
        each: None,
        about: "One row per appeal (a solicitation: a mailing, a phone-a-thon).",
        columns: APPEAL_LIKE,
    },
    ViewSpec {
        name: "v_campaigns",
        entity: "campaigns",
        each: None,
        about: "One row per campaign (an overall fundraising effort).",
        columns: APPEAL_LIKE,
    },
    ViewSpec {
        name: "v_funds",
        entity: "funds",
        each: None,
        about: "One row per fund (where gifts go).",
        columns: &[
            text("id"),
            text("lookup_id"),
            text("description"),
            text("category"),
            text("type"),
            amount("goal", "goal.value"),
            date("start_date"),
            date("end_date"),
            boolean("inactive"),
            ADDED,
            MODIFIED,
        ],
    },
    ViewSpec {
        name: "v_packages",
        entity: "packages",
        each: None,
        about: "One row per package (a version of an appeal's solicitation).",
        columns: &[
            text("id"),
            text("lookup_id"),
            text("appeal_id"),
            text("description"),
            text("category"),
            amount("goal", "goal.value"),
            amount("default_gift_amount", "default_gift_amount.value"),
            integer("recipient_count"),
            date("start_date").at("start"),
            date("end_date").at("end"),
            boolean("inactive"),
            ADDED,
            MODIFIED,
        ],
    },
    ViewSpec {
        name: "v_opportunities",
        entity: "opportunities",
        each: None,
        about: "One row per opportunity (a prospect's potential gift).",
        columns: &[
            text("id"),
            text("constituent_id"),
            text("name"),
            text("status"),
            text("purpose"),
            text("campaign_id"),
            text("fund_id"),
            amount("ask_amount", "ask_amount.value"),
            date("ask_date"),
            amount("expected_amount", "expected_amount.value"),
            date("expected_date"),
            amount("funded_amount", "funded_amount.value"),
            date("funded_date"),
            date("deadline"),
            boolean("inactive"),
            ADDED,
            MODIFIED,
        ],
    },
    ViewSpec {
        name: "v_events",
        entity: "events",
        each: None,
        about: "One row per event (the Event API's event list).",
        columns: &[
            text("id"),
            text("lookup_id"),
            text("name"),
            text("category_id").at("category.id"),
            text("category").at("category.name"),
            date("start_date"),
            text("start_time"),
            date("end_date"),
            text("end_time"),
            integer("capacity"),
            integer("invited_count"),
            integer("attending_count"),
            integer("attended_count"),
            number("goal"),
            number("revenue"),
            text("location_name"),
            boolean("inactive"),
            ADDED,
            MODIFIED,
        ],
    },
];
