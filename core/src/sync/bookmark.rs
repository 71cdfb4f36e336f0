//! The bookmark stored with each committed page, and the high-water mark it carries (the newest
//! `date_modified` seen, from which a finished chain restarts).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::page::RecordKey;

/// `last_modified` for a first run: before any SKY record (historic records carry 1600-01-01).
pub const BEGINNING_OF_TIME: &str = "1600-01-01T00:00:00Z";

/// Where an entity's sync stands. Stored as JSON next to the rows it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Bookmark {
    /// A `sort_token` chain: request `next_link` next.
    Chain {
        /// The next URL, stored verbatim (its `sort_token` must not be re-encoded).
        next_link: String,
        /// The highest `date_modified` seen so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high_water: Option<String>,
    },
    /// An offset scan in progress.
    Offset {
        /// The `last_modified` filter of this scan, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// Records already read.
        offset: u64,
        /// When the scan started (the next scan's filter is derived from it).
        started_at: String,
        /// The highest `date_modified` seen so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high_water: Option<String>,
    },
    /// An offset scan finished; the next run starts a new one filtered from `since`.
    Done {
        /// `last_modified` for the next scan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        /// The highest `date_modified` seen so far.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        high_water: Option<String>,
    },
}

impl Bookmark {
    /// Parses a stored bookmark.
    pub fn from_json(s: &str) -> Result<Self, String> {
        serde_json::from_str(s).map_err(|e| format!("unreadable bookmark: {e}"))
    }
    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bookmarks serialize")
    }
    /// The highest `date_modified` seen.
    pub fn high_water(&self) -> Option<&str> {
        match self {
            Bookmark::Chain { high_water, .. }
            | Bookmark::Offset { high_water, .. }
            | Bookmark::Done { high_water, .. } => high_water.as_deref(),
        }
    }
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formattable time")
}

pub(crate) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// The newer of two `date_modified` texts. A text that does not parse as RFC 3339 never replaces
/// one that does; on a tie the one already held stays.
pub(crate) fn newer(held: Option<String>, seen: Option<&str>) -> Option<String> {
    match (held, seen) {
        (None, seen) => seen.map(str::to_owned),
        (Some(held), None) => Some(held),
        (Some(held), Some(seen)) => match (parse_time(&held), parse_time(seen)) {
            (Some(x), Some(y)) if y > x => Some(seen.to_owned()),
            (None, Some(_)) => Some(seen.to_owned()),
            _ => Some(held),
        },
    }
}

/// The newest `date_modified` among a page's records; unparseable ones are skipped.
pub fn page_high_water(keys: &[RecordKey]) -> Option<String> {
    keys.iter()
        .filter_map(|k| k.date_modified.as_deref())
        .filter(|dm| parse_time(dm).is_some())
        .fold(None, |held, dm| newer(held, Some(dm)))
}

/// `high_water` minus `overlap` as a `last_modified` filter, or the beginning of time without one.
pub(crate) fn restart_point(high_water: Option<&str>, overlap: std::time::Duration) -> String {
    high_water.and_then(parse_time).map(|t| rfc3339(t - overlap)).unwrap_or_else(|| BEGINNING_OF_TIME.to_owned())
}
