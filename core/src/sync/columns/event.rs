//! Views of the Event API's per-event lists: participants (`ParticipantListEntry` of
//! `GetEventParticipantList`, Blackbaud's Event API spec). A participant record carries no event
//! id; the row id does (`{event_id}:{participant_id}`): `id` is that row id (unique, as in every
//! record view), `participant_id` Blackbaud's id, and `event_id` joins `v_events`.

use super::{Column, ROW_ID, ViewSpec, boolean, fuzzy_date, number, parent_id, text, timestamp};

const ADDED: Column = timestamp("date_added");
const MODIFIED: Column = timestamp("date_modified");

/// The Event API's per-event views.
pub const VIEWS: &[ViewSpec] = &[ViewSpec {
    name: "v_event_participants",
    entity: "event_participants",
    each: None,
    about: "One row per participant of an event (listed per event; `event_id` joins `v_events`).",
    columns: &[
        text("id").at(ROW_ID),
        text("participant_id").at("id"),
        parent_id("event_id"),
        text("contact_id"),
        boolean("is_constituent"),
        text("lookup_id"),
        text("name"),
        text("first_name"),
        text("last_name"),
        text("email"),
        boolean("do_not_email"),
        text("phone"),
        boolean("do_not_call"),
        text("participation_level_id").at("participation_level.id"),
        text("participation_level").at("participation_level.name"),
        boolean("attended"),
        text("rsvp_status"),
        text("invitation_status"),
        fuzzy_date("rsvp_date"),
        number("total_fees"),
        number("total_paid"),
        number("donations"),
        number("revenue"),
        text("seat"),
        text("seating_group"),
        text("name_tag"),
        text("host_id").at("host.participant_id"),
        text("online_data_health"),
        ADDED,
        MODIFIED,
    ],
}];
