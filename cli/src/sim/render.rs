//! Renders one record to JSON from (seed, entity, id, revision): nothing rendered is stored.
//!
//! Stable fields come from a generator seeded by the record's identity; the revision-dependent
//! field (one per entity, e.g. a constituent's email, a gift's amount) changes on every modify.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::macros::format_description;

use super::data::{Row, TICKS_PER_SEC, initial_count};
use super::rng::{SplitMix64, hash};

const FIRST: &[&str] = &[
    "Mark", "Sarah", "James", "Linda", "Robert", "Maria", "David", "Susan", "Michael", "Karen", "John", "Patricia",
    "Daniel", "Emily", "Thomas", "Grace", "Wei", "Aisha", "Carlos", "Priya",
];
const LAST: &[&str] = &[
    "Adamson",
    "Brown",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Johnson",
    "Kim",
    "Lopez",
    "Miller",
    "Nguyen",
    "O'Brien",
    "Patel",
    "Quinn",
    "Roberts",
    "Smith",
    "Taylor",
    "Ueda",
    "Vargas",
    "Walker",
    "Young",
    "Zimmerman",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Charleston", "SC", "29401"),
    ("Austin", "TX", "78701"),
    ("Portland", "OR", "97201"),
    ("Boston", "MA", "02108"),
    ("Denver", "CO", "80202"),
    ("Madison", "WI", "53703"),
    ("Raleigh", "NC", "27601"),
    ("Tucson", "AZ", "85701"),
];
const STREETS: &[&str] =
    &["Oak St", "Maple Ave", "King St", "Meeting St", "Elm Rd", "Cedar Ln", "Park Blvd", "Lake Dr"];
const DOMAINS: &[&str] = &["example.org", "example.com", "example.net", "mail.example.edu"];
const THEMES: &[&str] =
    &["Annual", "Spring", "Capital", "Scholarship", "Library", "Arts", "Athletics", "Gala", "Memorial", "Endowment"];

/// What rendering needs besides the row itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) entity: &'a str,
    pub(crate) entity_index: usize,
    pub(crate) seed: u64,
    pub(crate) records: u64,
    /// Custom-field numbers and booleans as JSON strings (`SimConfig::custom_field_values_as_strings`).
    pub(crate) string_values: bool,
}

/// Formats 100 ns ticks like Blackbaud: `2016-06-21T02:47:20.2371396+00:00`.
pub(crate) fn format_ticks(ticks: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ticks) * 100).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]+00:00"))
        .unwrap_or_default()
}

/// Appends a JSON string literal.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A minimal streaming JSON object writer (rendering millions of records must be cheap).
struct Obj<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Obj { out, first: true }
    }
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_json_str(self.out, k);
        self.out.push(':');
    }
    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_json_str(self.out, v);
        self
    }
    fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Self {
        self.key(k);
        let _ = write!(self.out, "{v}");
        self
    }
    /// A value written as given (`null`, `[]`).
    fn raw(&mut self, k: &str, json: &str) -> &mut Self {
        self.key(k);
        self.out.push_str(json);
        self
    }
    fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }
    fn money(&mut self, k: &str, v: f64) -> &mut Self {
        self.obj(k, |o| {
            o.num("value", v);
        })
    }
    fn date(&mut self, k: &str, ticks: i64) -> &mut Self {
        self.str(k, &format_ticks(ticks - ticks.rem_euclid(86_400 * TICKS_PER_SEC)))
    }
    fn fuzzy(&mut self, k: &str, ticks: i64) -> &mut Self {
        let t = OffsetDateTime::from_unix_timestamp(ticks / TICKS_PER_SEC).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.obj(k, |o| {
            o.num("d", t.day()).num("m", u8::from(t.month())).num("y", t.year());
        })
    }
    fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj<'_>)) -> &mut Self {
        self.key(k);
        let mut inner = Obj::new(self.out);
        f(&mut inner);
        inner.out.push('}');
        self
    }
    /// An array of `n` objects, the `i`-th written by `f(i, …)`.
    fn arr_objs(&mut self, k: &str, n: usize, mut f: impl FnMut(usize, &mut Obj<'_>)) -> &mut Self {
        self.key(k);
        self.out.push('[');
        for i in 0..n {
            if i > 0 {
                self.out.push(',');
            }
            let mut inner = Obj::new(self.out);
            f(i, &mut inner);
            inner.out.push('}');
        }
        self.out.push(']');
        self
    }
}

fn amount(rng: &mut SplitMix64) -> f64 {
    let base = rng.pick(&[10u64, 25, 50, 100, 250, 500, 1000, 5000]);
    (base + rng.below(base)) as f64
}

/// Who and where a record is about: drawn first, in this order, from the record's stable
/// generator, so every entity's fields come out the same for the same (seed, entity, id).
#[derive(Debug, Clone, Copy)]
struct Who {
    id: u64,
    rev: u32,
    constituents: u64,
    constituent_id: u64,
    first: &'static str,
    last: &'static str,
    city: &'static str,
    state: &'static str,
    zip: &'static str,
    street_no: u64,
    street: &'static str,
}

impl Who {
    fn draw(ctx: Ctx<'_>, id: u64, rev: u32, s: &mut SplitMix64) -> Self {
        let constituents = initial_count("constituents", ctx.records).max(1);
        let constituent_id = 1 + s.below(constituents);
        let (first, last) = (s.pick(FIRST), s.pick(LAST));
        let (city, state, zip) = s.pick(CITIES);
        let street_no = 1 + s.below(9_000);
        let street = s.pick(STREETS);
        Who { id, rev, constituents, constituent_id, first, last, city, state, zip, street_no, street }
    }

    /// An email address that changes with the revision.
    fn email(&self, r: &mut SplitMix64) -> String {
        let suffix = if self.rev > 0 { self.rev.to_string() } else { String::new() };
        format!(
            "{}.{}{suffix}@{}",
            self.first.to_ascii_lowercase(),
            self.last.to_ascii_lowercase().replace('\'', ""),
            r.pick(DOMAINS)
        )
    }
}

fn phone(r: &mut SplitMix64) -> String {
    format!("({}) 555-{:04}", 200 + r.below(700), r.below(10_000))
}

/// Appends the JSON of one record to `out`: the identity, the entity's own fields, then the
/// flags and dates every record has.
pub(crate) fn render(out: &mut String, ctx: Ctx<'_>, idx: u64, row: &Row, added: i64) {
    let id = idx + 1;
    // `s` draws the stable fields; `r` those that change with the revision.
    let mut s = SplitMix64::new(hash(&[ctx.seed, ctx.entity_index as u64, id]));
    let mut r = SplitMix64::new(hash(&[ctx.seed, ctx.entity_index as u64, id, 0x5EED + u64::from(row.revision)]));
    let w = Who::draw(ctx, id, row.revision, &mut s);
    let (s, r) = (&mut s, &mut r);
    let mut o = Obj::new(out);
    match skysync_core::catalog::find(ctx.entity).map_or("id", |e| e.key) {
        "id" => o.str("id", &id.to_string()),
        // The general ledger's keys are integers named per record type.
        key => o.num(key, id),
    };
    match ctx.entity {
        "constituents" => constituent(&mut o, w, row, added, s, r),
        "addresses" | "email_addresses" | "phones" | "online_presences" => contact(&mut o, ctx.entity, w, s, r),
        "relationships" | "constituent_codes" | "notes" | "actions" | "educations" | "memberships" => {
            relation(&mut o, ctx.entity, w, added, s)
        }
        "gifts" | "appeals" | "campaigns" | "funds" | "packages" | "opportunities" => {
            fundraising(&mut o, ctx, w, added, s)
        }
        "events" => event(&mut o, w, added, s, r),
        "event_participants" => participant(&mut o, w, s, r),
        "constituent_custom_fields" | "gift_custom_fields" => custom_field(&mut o, ctx, w, added, s, r),
        "projects" | "journal_entry_batches" => general_ledger(&mut o, ctx.entity, w, added, s, r),
        _ => {
            o.str("description", &format!("{} record", ctx.entity)).num("revision", w.rev);
        }
    }
    if skysync_core::catalog::find(ctx.entity).is_some_and(|e| e.include_inactive) {
        o.bool("inactive", row.inactive());
    }
    o.str("date_added", &format_ticks(added)).str("date_modified", &format_ticks(row.modified));
    out.push('}');
}

/// A constituent: a person or an organization with its primary address, email and phone.
fn constituent(o: &mut Obj<'_>, w: Who, row: &Row, added: i64, s: &mut SplitMix64, r: &mut SplitMix64) {
    let Who { id, first, last, city, state, zip, street_no, street, .. } = w;
    let lookup = (1000 + id).to_string();
    let org = s.below(100) < 12;
    o.str("type", if org { "Organization" } else { "Individual" }).str("lookup_id", &lookup);
    if org {
        o.str("name", &format!("{last} {} {}", s.pick(THEMES), s.pick(&["Foundation", "Trust", "Group"])));
    } else {
        let title = s.pick(&["Mr.", "Ms.", "Mrs.", "Dr."]);
        o.str("name", &format!("{title} {first} {last}"))
            .str("title", title)
            .str("first", first)
            .str("last", last)
            .str("gender", s.pick(&["Male", "Female", "Unknown"]))
            .fuzzy("birthdate", added - (20 + s.below(60) as i64) * 365 * 86_400 * TICKS_PER_SEC);
    }
    o.obj("address", |a| {
        a.str("id", &id.to_string())
            .str("constituent_id", &id.to_string())
            .str("address_lines", &format!("{street_no} {street}"))
            .str("city", city)
            .str("state", state)
            .str("postal_code", zip)
            .str("country", "United States")
            .str("formatted_address", &format!("{street_no} {street}\r\n{city}, {state} {zip}"))
            .bool("preferred", true)
            .bool("inactive", false);
    })
    .obj("email", |e| {
        e.str("id", &id.to_string())
            .str("address", &w.email(r))
            .str("type", "Email")
            .bool("primary", true)
            .bool("inactive", false)
            .bool("do_not_email", s.below(10) == 0);
    })
    .obj("phone", |p| {
        p.str("id", &id.to_string())
            .str("number", &phone(r))
            .str("type", "Home")
            .bool("primary", true)
            .bool("inactive", false)
            .bool("do_not_call", false);
    })
    .bool("gives_anonymously", s.below(20) == 0)
    .str("fundraiser_status", "None")
    .bool("deceased", row.deceased());
}

/// Addresses, email addresses, phones and online presences of a constituent.
fn contact(o: &mut Obj<'_>, entity: &str, w: Who, s: &mut SplitMix64, r: &mut SplitMix64) {
    let Who { rev, constituent_id, first, last, city, state, zip, street_no, street, .. } = w;
    match entity {
        "addresses" => {
            o.str("constituent_id", &constituent_id.to_string())
                .str("type", s.pick(&["Home", "Business", "Seasonal"]))
                .str("address_lines", &format!("{} {street}", street_no + u64::from(rev)))
                .str("city", city)
                .str("state", state)
                .str("postal_code", zip)
                .str("country", "United States")
                .bool("preferred", s.below(2) == 0)
                .bool("do_not_mail", false);
        }
        "email_addresses" => {
            o.str("constituent_id", &constituent_id.to_string())
                .str("address", &w.email(r))
                .str("type", s.pick(&["Email", "Work Email"]))
                .bool("primary", s.below(2) == 0)
                .bool("do_not_email", s.below(10) == 0);
        }
        "phones" => {
            o.str("constituent_id", &constituent_id.to_string())
                .str("number", &phone(r))
                .str("type", s.pick(&["Home", "Mobile", "Business"]))
                .bool("primary", s.below(2) == 0)
                .bool("do_not_call", s.below(10) == 0);
        }
        _ => {
            let kind = s.pick(&["LinkedIn", "Website", "Facebook"]);
            o.str("constituent_id", &constituent_id.to_string())
                .str(
                    "address",
                    &format!(
                        "https://www.{}/{}{}{}",
                        kind.to_ascii_lowercase(),
                        first.to_ascii_lowercase(),
                        last.len(),
                        if rev > 0 { format!("-{rev}") } else { String::new() }
                    ),
                )
                .str("type", kind)
                .bool("primary", true);
        }
    }
}

/// Relationships, codes, notes, actions, educations and memberships of a constituent.
fn relation(o: &mut Obj<'_>, entity: &str, w: Who, added: i64, s: &mut SplitMix64) {
    let Who { rev, constituents, constituent_id, first, last, city, id, .. } = w;
    match entity {
        "relationships" => {
            let (kind, recip) =
                s.pick(&[("Spouse", "Spouse"), ("Friend", "Friend"), ("Employer", "Employee"), ("Parent", "Child")]);
            o.str("constituent_id", &constituent_id.to_string())
                .str("relation_id", &(1 + s.below(constituents)).to_string())
                .str("reciprocal_relationship_id", &(id + 1).to_string())
                .str("type", kind)
                .str("reciprocal_type", recip)
                .bool("is_spouse", kind == "Spouse")
                .str("comment", &if rev > 0 { format!("Updated (revision {rev})") } else { "Imported".to_string() });
        }
        "constituent_codes" => {
            o.str("constituent_id", &constituent_id.to_string())
                .str("description", s.pick(&["Board Member", "Alumni", "Friend", "Volunteer", "Staff", "Parent"]))
                .num("sequence", 1 + rev)
                .fuzzy("start", added);
        }
        "notes" => {
            o.str("constituent_id", &constituent_id.to_string())
                .str("type", s.pick(&["Interests", "Biography", "Notes", "Solicitor Notes"]))
                .str("summary", &format!("{} {}", s.pick(THEMES), s.pick(&["conversation", "visit", "interest"])))
                .str("text", &format!("Spoke with {first} about the {} program. Revision {rev}.", s.pick(THEMES)))
                .fuzzy("date", added);
        }
        "actions" => {
            let done = (s.below(2) + u64::from(rev)) % 2 == 1;
            o.str("constituent_id", &constituent_id.to_string())
                .str("category", s.pick(&["Phone Call", "Meeting", "Email", "Task/Other"]))
                .date("date", added)
                .str("summary", &format!("Follow up with {first} {last}"))
                .bool("completed", done)
                .str("status", if done { "Completed" } else { "Open" })
                .str("priority", s.pick(&["Normal", "High", "Low"]));
        }
        "educations" => {
            let statuses = ["Graduated", "Attending", "Unknown", "Transferred"];
            o.str("constituent_id", &constituent_id.to_string())
                .str("school", &format!("University of {city}"))
                .str("class_of", &(1960 + s.below(64)).to_string())
                .str("degree", s.pick(&["B.A.", "B.S.", "M.A.", "M.B.A.", "Ph.D."]))
                .str("status", statuses[(s.below(2) as usize + rev as usize) % statuses.len()])
                .str("type", "University")
                .bool("primary", true);
        }
        _ => {
            let standing = ["Active", "Renewed", "Lapsed", "Upgraded"];
            o.str("constituent_id", &constituent_id.to_string())
                .str("category", s.pick(&["Gold", "Silver", "Bronze", "Patron"]))
                .str("program", "Friends of the Museum")
                .str("standing", standing[(s.below(2) as usize + rev as usize) % standing.len()])
                .date("joined", added)
                .date("expires", added + 365 * 86_400 * TICKS_PER_SEC);
        }
    }
}

/// Gifts, appeals, campaigns, funds, packages and opportunities.
fn fundraising(o: &mut Obj<'_>, ctx: Ctx<'_>, w: Who, added: i64, s: &mut SplitMix64) {
    let Who { id, rev, constituent_id, first, last, .. } = w;
    match ctx.entity {
        "gifts" => gift(o, ctx, w, added, s),
        "appeals" | "campaigns" | "funds" => {
            let noun = match ctx.entity {
                "appeals" => "Appeal",
                "campaigns" => "Campaign",
                _ => "Fund",
            };
            o.str("lookup_id", &format!("{}-{id}", &noun[..1]))
                .str("description", &format!("{} {noun} {}", s.pick(THEMES), 2000 + id % 25))
                .str("category", s.pick(&["Unrestricted", "Restricted", "Endowment", "Capital"]))
                .money("goal", 10_000.0 * (1 + s.below(100) + u64::from(rev)) as f64)
                .date("start_date", added);
        }
        "packages" => {
            o.str("lookup_id", &format!("PKG-{id}"))
                .str("appeal_id", &(1 + s.below(initial_count("appeals", ctx.records).max(1))).to_string())
                .str("description", &format!("{} mailing", s.pick(THEMES)))
                .money("goal", 1000.0 * (1 + s.below(50) + u64::from(rev)) as f64)
                .num("recipient_count", s.below(5000));
        }
        _ => {
            let statuses = ["Identified", "Qualified", "Cultivation", "Solicitation", "Accepted"];
            let ask = amount(s) * 10.0;
            o.str("constituent_id", &constituent_id.to_string())
                .str("name", &format!("{} gift from {first} {last}", s.pick(THEMES)))
                .str("status", statuses[(s.below(3) as usize + rev as usize) % statuses.len()])
                .str("purpose", s.pick(&["Scholarship", "Building", "Operating", "Endowment"]))
                .money("ask_amount", ask)
                .money("expected_amount", ask / 2.0)
                .date("deadline", added + 180 * 86_400 * TICKS_PER_SEC);
        }
    }
}

/// Financial Edge NXT general-ledger records, shaped like Blackbaud's examples (`GetProject`,
/// `GLApi.JournalEntryBatch`).
fn general_ledger(o: &mut Obj<'_>, entity: &str, w: Who, added: i64, s: &mut SplitMix64, r: &mut SplitMix64) {
    let Who { id, rev, first, last, .. } = w;
    let user = format!("{first} {last}");
    if entity == "projects" {
        o.str("description", &format!("{} {}", s.pick(THEMES), s.pick(&["Endowment", "Grant", "Program", "Capital"])))
            .str("ui_project_id", &(1000 + id).to_string())
            .date("start_date", added)
            .raw("end_date", "null")
            .str("location", s.pick(&["", "Main Campus", "North Office"]))
            .str("division", s.pick(&["", "Programs", "Administration"]))
            .str("department", s.pick(&["", "Finance", "Development"]))
            .str("type", s.pick(&["Endowment", "Grant", "Operating"]))
            .str("status", ["In Progress", "Active", "Closed"][(s.below(2) + u64::from(rev)) as usize % 3])
            .bool("prevent_data_entry", r.below(10) == 0)
            .bool("prevent_posting_after", false)
            .obj("account_restrictions", |a| {
                a.str("allow_or_restrict", "Allow").str("criteria", "All");
            });
        // A project manager as its contact, and one custom field (Blackbaud's `GetProject`
        // example carries both arrays; some projects have neither).
        let (contacts, fields) = if s.below(4) == 0 {
            (serde_json::json!([]), serde_json::json!([]))
        } else {
            let contact = serde_json::json!([{
                "contact_id": id * 10 + 1,
                "description": "Project manager",
                "title": s.pick(&["Ms.", "Mr.", "Dr."]),
                "first_name": first,
                "last_name": last,
                "position": s.pick(&["Program Director", "Grant Manager", "Controller"]),
                "address_line": format!("{} Main Street", 10 + s.below(900)),
                "city": s.pick(&["Charleston", "Columbia", "Greenville"]),
                "state": "SC",
                "postal": format!("29{:03}", s.below(1000)),
                "country": "United States",
            }]);
            let field = serde_json::json!([{
                "custom_field_id": id * 10 + 2,
                "field_name": "Grant number",
                "type": "Text",
                "value": format!("G-{}", 2000 + s.below(8000)),
                "comments": "",
            }]);
            (contact, field)
        };
        o.raw("contacts", &contacts.to_string()).raw("custom_fields", &fields.to_string());
    } else {
        let statuses = ["Open", "PendingApproval", "Approved", "Posted"];
        o.str("ui_batch_id", &format!("{}", 100 + id))
            .str("description", &format!("{} journal entries", s.pick(THEMES)))
            .str("batch_status", statuses[(s.below(2) as usize + rev as usize) % statuses.len()])
            .bool("create_bank_account_adjustments", s.below(2) == 0)
            .bool("create_interfund_sets", s.below(2) == 0)
            .str("source_system_name", s.pick(&["", "Raiser's Edge NXT", "Payroll"]));
    }
    o.str("added_by", &user).str("modified_by", &user);
}

/// An event.
fn event(o: &mut Obj<'_>, w: Who, added: i64, s: &mut SplitMix64, r: &mut SplitMix64) {
    let Who { id, rev, .. } = w;
    o.str("lookup_id", &format!("EVT-{id}"))
        .str(
            "name",
            &format!("{} {}", s.pick(THEMES), s.pick(&["Gala", "Luncheon", "Reunion", "Golf Outing", "Concert"])),
        )
        .str("start_date", &format_ticks(added + 30 * 86_400 * TICKS_PER_SEC)[..10])
        .str("start_time", "18:00")
        .obj("category", |c| {
            c.str("id", &(1 + s.below(5)).to_string()).str("name", "Fundraiser");
        })
        .num("capacity", 50 + s.below(450))
        .num("attending_count", r.below(50) + u64::from(rev));
}

/// An event participant, shaped like Blackbaud's `ParticipantListEntry` (no event id: the list
/// is per event).
fn participant(o: &mut Obj<'_>, w: Who, s: &mut SplitMix64, r: &mut SplitMix64) {
    let Who { id, rev, constituent_id, first, last, .. } = w;
    let fee = 25 * (1 + s.below(8));
    let paid = if r.below(3) == 0 { 0 } else { fee };
    o.str("contact_id", &constituent_id.to_string())
        .bool("is_constituent", s.below(10) < 8)
        .str("lookup_id", &(1000 + constituent_id).to_string())
        .str("name", &format!("{first} {last}"))
        .str("first_name", first)
        .str("last_name", last)
        .str("email", &w.email(r))
        .bool("do_not_email", s.below(20) == 0)
        .obj("participation_level", |l| {
            l.str("id", &(1 + s.below(3)).to_string()).str("name", s.pick(&["Guest", "Sponsor", "Volunteer"]));
        })
        .bool("attended", r.below(2) == 0)
        .str("rsvp_status", r.pick(&["NoResponse", "Attending", "Declined", "Interested", "Waitlisted"]))
        .str("invitation_status", s.pick(&["NotApplicable", "NotInvited", "Invited"]))
        .obj("rsvp_date", |d| {
            d.num("y", 2024 + s.below(2)).num("m", 1 + s.below(12)).num("d", 1 + s.below(28));
        })
        .num("total_fees", fee)
        .num("total_paid", paid)
        .num("donations", r.below(5) * 50)
        .num("revenue", paid)
        .num("revision", rev)
        .num("sim_participant", id);
}

/// A gift, shaped like Blackbaud's `GiftRead`: whole-number amounts, split over one to three
/// funds (the splits add up to the amount exactly), and sometimes a soft credit, a fundraiser, a
/// receipt, a payment and an acknowledgement.
fn gift(o: &mut Obj<'_>, ctx: Ctx<'_>, w: Who, added: i64, s: &mut SplitMix64) {
    let Who { id, rev, constituents, constituent_id, .. } = w;
    let count = |entity: &str| initial_count(entity, ctx.records).max(1);
    let value = amount(s) + 5.0 * f64::from(rev);
    let campaign = 1 + s.below(count("campaigns"));
    let fund = 1 + s.below(count("funds"));
    let appeal = 1 + s.below(count("appeals"));
    let kind = s.pick(&["Donation", "Donation", "Pledge", "RecurringGift", "Other"]);
    let anonymous = s.below(25) == 0;
    // Drawn after the fields above, so those stay what they were before splits were added.
    let n_splits = 1 + s.below(3) as usize;
    let whole = value as u64;
    let split_amount = |i: usize| {
        let base = whole / n_splits as u64;
        if i + 1 == n_splits { whole - base * (n_splits as u64 - 1) } else { base }
    };
    let mut split_refs = vec![(fund, campaign, appeal, 1 + s.below(count("packages")))];
    for _ in 1..n_splits {
        split_refs.push((
            1 + s.below(count("funds")),
            1 + s.below(count("campaigns")),
            1 + s.below(count("appeals")),
            1 + s.below(count("packages")),
        ));
    }
    let soft_credit = (s.below(5) == 0).then(|| 1 + s.below(constituents));
    let fundraiser = (s.below(7) == 0).then(|| 1 + s.below(constituents));
    let receipted = s.below(3) != 0;
    let method = s.pick(&["Cash", "PersonalCheck", "CreditCard", "Other"]);
    let check_number = 1000 + s.below(9000);
    o.str("lookup_id", &(1000 + id).to_string())
        .str("constituent_id", &constituent_id.to_string())
        .str("type", kind)
        .money("amount", value)
        .money("balance", 0.0)
        .date("date", added)
        .str("gift_status", "Active")
        .str("post_status", if rev.is_multiple_of(2) { "Posted" } else { "NotPosted" })
        .bool("is_anonymous", anonymous)
        .arr_objs("gift_splits", n_splits, |i, g| {
            let (fund, campaign, appeal, package) = split_refs[i];
            g.str("id", &(id * 10 + i as u64).to_string())
                .money("amount", split_amount(i) as f64)
                .str("appeal_id", &appeal.to_string())
                .str("campaign_id", &campaign.to_string())
                .str("fund_id", &fund.to_string())
                .str("package_id", &package.to_string());
        })
        .arr_objs("soft_credits", usize::from(soft_credit.is_some()), |_, c| {
            c.str("id", &id.to_string())
                .money("amount", value)
                .str("constituent_id", &soft_credit.unwrap_or(1).to_string())
                .str("gift_id", &id.to_string());
        })
        .arr_objs("fundraisers", usize::from(fundraiser.is_some()), |_, f| {
            f.money("amount", value).str("constituent_id", &fundraiser.unwrap_or(1).to_string());
        })
        .arr_objs("receipts", usize::from(receipted), |_, r| {
            r.money("amount", value)
                .date("date", added + 86_400 * TICKS_PER_SEC)
                .num("number", id)
                .str("status", "Receipted");
        })
        .arr_objs("payments", 1, |_, p| {
            p.str("payment_method", method);
            if method == "PersonalCheck" {
                p.str("check_number", &check_number.to_string()).fuzzy("check_date", added);
            }
        })
        .arr_objs("acknowledgements", 1, |_, a| {
            a.str("status", if receipted { "Acknowledged" } else { "NeedsAcknowledgement" });
            if receipted {
                a.date("date", added + 2 * 86_400 * TICKS_PER_SEC).str("letter", "Thank You");
            }
        });
}

/// Custom-field categories of constituents and gifts, with Blackbaud's type names
/// (`CustomFieldRead.type`).
const CONSTITUENT_FIELDS: &[(&str, &str)] = &[
    ("Interests", "CodeTableEntry"),
    ("Volunteer Hours", "Number"),
    ("Board Start Date", "Date"),
    ("First Contact", "FuzzyDate"),
    ("Newsletter Opt-In", "Boolean"),
    ("Business Hours", "Text"),
    ("Matching Gift Limit", "Currency"),
    ("Referred By", "ConstituentId"),
];
const GIFT_FIELDS: &[(&str, &str)] = &[
    ("Auction ID", "Text"),
    ("Item Number", "Number"),
    ("Declared Value", "Currency"),
    ("Received Date", "Date"),
    ("Matched", "Boolean"),
    ("Event Year", "FuzzyDate"),
    ("Source", "CodeTableEntry"),
    ("Solicitor", "ConstituentId"),
];

/// A constituent's or gift's custom field (`CustomFieldRead`): `parent_id` names an existing
/// constituent or gift; `value` is shaped by `type` and changes with the revision. A third of the
/// fuzzy dates lack the day or the month, as fuzzy dates may.
fn custom_field(o: &mut Obj<'_>, ctx: Ctx<'_>, w: Who, added: i64, s: &mut SplitMix64, r: &mut SplitMix64) {
    let Who { constituents, constituent_id, .. } = w;
    let (parent, fields) = if ctx.entity == "gift_custom_fields" {
        (1 + s.below(initial_count("gifts", ctx.records).max(1)), GIFT_FIELDS)
    } else {
        (constituent_id, CONSTITUENT_FIELDS)
    };
    let (category, kind) = s.pick(fields);
    o.str("parent_id", &parent.to_string()).str("category", category).str("type", kind);
    let day = 86_400 * TICKS_PER_SEC;
    match kind {
        "Text" => {
            o.str(
                "value",
                &format!("{}-{}", category.split(' ').next().unwrap_or("X").to_ascii_uppercase(), r.below(10_000)),
            );
        }
        "CodeTableEntry" => {
            o.str("value", r.pick(THEMES));
        }
        "ConstituentId" => {
            o.str("value", &(1 + r.below(constituents)).to_string());
        }
        "Number" | "Currency" => {
            let n = if kind == "Number" { r.below(500) } else { 25 * (1 + r.below(400)) };
            if ctx.string_values {
                o.str("value", &n.to_string())
            } else {
                o.num("value", n)
            };
        }
        "Boolean" => {
            let b = r.below(2) == 0;
            if ctx.string_values {
                o.str("value", if b { "true" } else { "false" })
            } else {
                o.bool("value", b)
            };
        }
        "Date" => {
            // Blackbaud's documented form for a Date value: `1969-11-21T10:29:43`, no offset.
            let t = added - r.below(3650) as i64 * day;
            o.str("value", &format!("{}T00:00:00", &format_ticks(t)[..10]));
        }
        _ => {
            let t = OffsetDateTime::from_unix_timestamp((added - r.below(3650) as i64 * day) / TICKS_PER_SEC)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let parts = r.below(3);
            o.obj("value", |v| {
                if parts == 0 {
                    v.num("d", t.day());
                }
                if parts < 2 {
                    v.num("m", u8::from(t.month()));
                }
                v.num("y", t.year());
            });
        }
    }
    o.date("date", added);
    if s.below(4) == 0 {
        o.str("comment", s.pick(&["Confirmed by phone", "From the gala sign-in sheet", "Per board minutes"]));
    }
}
