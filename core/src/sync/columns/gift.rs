//! Views of the Gift API's lists: gifts, the arrays inside each gift (Blackbaud's `GiftRead`:
//! `gift_splits` → `GiftSplitRead`, `soft_credits` → `SoftCreditRead`, `fundraisers` →
//! `GiftFundraiserRead`, `receipts` → `ReceiptRead`, `payments` → `PaymentRead`,
//! `acknowledgements` → `AcknowledgementRead`), and gift custom fields. Amounts are SKY currency
//! objects (`{"value": 40}`).

use super::constituent::CUSTOM_FIELD_COLUMNS;
use super::{Each, ViewSpec, amount, boolean, date, fuzzy_date, integer, text, timestamp};

/// A child view of gifts: one row per element of `path`, with `gift_id`.
const fn of_gift(path: &'static str) -> Option<Each> {
    Some(Each { path, parent_id: "gift_id" })
}

/// The gift area's views.
pub const VIEWS: &[ViewSpec] = &[
    ViewSpec {
        name: "v_gifts",
        entity: "gifts",
        each: None,
        about: "One row per gift (donation, pledge, recurring gift, payment, …).",
        columns: &[
            text("id"),
            text("lookup_id"),
            text("constituent_id"),
            text("type"),
            text("subtype"),
            amount("amount", "amount.value"),
            amount("balance", "balance.value"),
            date("date"),
            text("gift_status"),
            text("post_status"),
            date("post_date"),
            text("gift_code"),
            text("constituency"),
            text("batch_number"),
            text("reference"),
            text("origin"),
            boolean("is_anonymous"),
            amount("gift_aid_amount", "gift_aid_amount.value"),
            text("gift_aid_qualification_status"),
            fuzzy_date("recurring_gift_status_date"),
            timestamp("date_added"),
            timestamp("date_modified"),
        ],
    },
    ViewSpec {
        name: "v_gift_splits",
        entity: "gifts",
        each: of_gift("gift_splits"),
        about: "One row per gift split: the part of a gift credited to one fund, campaign, appeal and package. The splits of a gift add up to its amount.",
        columns: &[
            text("id"),
            amount("amount", "amount.value"),
            text("fund_id"),
            text("campaign_id"),
            text("appeal_id"),
            text("package_id"),
            amount("gift_aid_amount", "gift_aid_amount.value"),
            text("constituent_id").at("^.constituent_id"),
            date("gift_date").at("^.date"),
            text("gift_type").at("^.type"),
        ],
    },
    ViewSpec {
        name: "v_gift_soft_credits",
        entity: "gifts",
        each: of_gift("soft_credits"),
        about: "One row per soft credit: recognition of a gift given to a constituent other than the donor.",
        columns: &[
            text("id"),
            text("constituent_id"),
            amount("amount", "amount.value"),
            date("gift_date").at("^.date"),
        ],
    },
    ViewSpec {
        name: "v_gift_fundraisers",
        entity: "gifts",
        each: of_gift("fundraisers"),
        about: "One row per fundraiser credited with a gift.",
        columns: &[text("constituent_id"), amount("amount", "amount.value"), date("gift_date").at("^.date")],
    },
    ViewSpec {
        name: "v_gift_receipts",
        entity: "gifts",
        each: of_gift("receipts"),
        about: "One row per receipt of a gift.",
        columns: &[integer("number"), amount("amount", "amount.value"), date("date"), text("status")],
    },
    ViewSpec {
        name: "v_gift_payments",
        entity: "gifts",
        each: of_gift("payments"),
        about: "One row per payment record of a gift (method, check details).",
        columns: &[
            text("payment_method"),
            text("check_number"),
            fuzzy_date("check_date"),
            text("reference"),
            fuzzy_date("reference_date"),
        ],
    },
    ViewSpec {
        name: "v_gift_acknowledgements",
        entity: "gifts",
        each: of_gift("acknowledgements"),
        about: "One row per acknowledgement (thank-you letter) of a gift.",
        columns: &[text("status"), text("letter"), date("date")],
    },
    ViewSpec {
        name: "v_gift_custom_fields",
        entity: "gift_custom_fields",
        each: None,
        about: "One row per gift custom field; `parent_id` is the gift's id and the value sits in the typed column its `type` selects.",
        columns: CUSTOM_FIELD_COLUMNS,
    },
];
