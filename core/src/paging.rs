//! SKY API list paging and incremental-sync planning, as pure state machines.
//!
//! A [`Cursor`] says which URL to fetch next and, after each page, what bookmark to store with
//! that page's rows (in the same database transaction). Entities with a `sort_token` follow
//! `next_link` until a page comes back empty; that page's `next_link` is where the next run
//! resumes (Blackbaud's recommended pattern). Entities without one (events) page by `offset`
//! with a `last_modified` filter that starts a configurable overlap before the previous run.
//!
//! Two things about the links Blackbaud hands back are not documented, so the cursor does not rely
//! on them:
//! - Blackbaud's documented `next_link` example carries only `limit`, `last_modified` and
//!   `sort_token`. Whether filters such as `include_inactive`, `include_deceased` and `fields`
//!   survive is not said; if they were dropped, every page after the first would silently leave out
//!   inactive and deceased records. So after taking a `next_link` the cursor adds back each filter
//!   of the first request the link lacks ([`restore_filters`]); cursor parameters
//!   ([`CURSOR_PARAMS`]) are never added, changed or duplicated.
//! - The actions list documents a `continuation_token` query parameter for environments with the
//!   new Action lists. A `next_link` that carries it is followed like any other; a page that
//!   carries a top-level `continuation_token` instead of a `next_link` is followed by re-sending
//!   the request with that token ([`with_continuation_token`]). A continuation token is not kept
//!   across runs: a finished chain restarts from the newest change seen, minus the overlap.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::catalog::{Entity, Incremental};
use crate::http::{HttpResponse, redacted_url};

/// `last_modified` for a first run: before any SKY record (historic records carry 1600-01-01).
pub const BEGINNING_OF_TIME: &str = "1600-01-01T00:00:00Z";

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    /// Items matching the filters (ignores limit/offset).
    pub count: Option<u64>,
    /// URL of the next page, if the API gave one.
    pub next_link: Option<String>,
    /// A top-level `continuation_token`, if the API gave one instead of (or beside) `next_link`.
    pub continuation_token: Option<String>,
    /// The records, each kept as the JSON received.
    pub value: Vec<Box<RawValue>>,
}

/// Why a page could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PageError {
    /// Not a list envelope.
    #[error("unexpected list response from {url}: {problem}")]
    Malformed {
        /// URL without query values.
        url: String,
        /// What was wrong.
        problem: String,
    },
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    next_link: Option<String>,
    #[serde(default)]
    continuation_token: Option<String>,
    #[serde(default)]
    value: Option<Vec<Box<RawValue>>>,
}

/// Parses a list envelope `{count, next_link, value}`.
pub fn parse_page(url: &Url, response: &HttpResponse) -> Result<Page, PageError> {
    let bad = |problem: String| PageError::Malformed { url: redacted_url(url), problem };
    if !response.is_json() {
        return Err(bad(format!("expected JSON, got {}", response.body_excerpt())));
    }
    let raw: RawPage = serde_json::from_slice(&response.body).map_err(|e| bad(format!("not a list envelope: {e}")))?;
    let value = raw.value.ok_or_else(|| bad("no \"value\" array".into()))?;
    let next_link = raw.next_link.filter(|l| !l.is_empty());
    if let Some(link) = &next_link {
        same_origin_link(url, link).map_err(bad)?;
    }
    Ok(Page {
        count: raw.count,
        next_link,
        continuation_token: raw.continuation_token.filter(|t| !t.is_empty()),
        value,
    })
}

/// Refuses a `next_link` that leads away from the host that served the page. The API client
/// refuses such a request too, but the page's rows are committed together with the link as the
/// bookmark before it is requested; a foreign link stored there would break every later run (and
/// an empty page's link is not requested until the next run).
fn same_origin_link(page_url: &Url, link: &str) -> Result<(), String> {
    let target = page_url.join(link).map_err(|e| format!("next_link is not a URL: {e}"))?;
    if target.origin() != page_url.origin() {
        return Err(format!("next_link points to another host ({}); not following it", redacted_url(&target)));
    }
    Ok(())
}

/// Query parameters that position a cursor. They are never copied from the first request into a
/// link, never changed and never duplicated: the server owns them.
pub const CURSOR_PARAMS: &[&str] = &["sort_token", "last_modified", "offset", "continuation_token"];

/// The raw `name=value` pieces of a URL's query and their decoded names, in order.
fn raw_query_parts(url: &str) -> (&str, Vec<(&str, String)>) {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, q),
        None => (url, ""),
    };
    let query = query.split('#').next().unwrap_or("");
    let parts = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let name = p.split('=').next().unwrap_or("");
            let decoded = url::form_urlencoded::parse(name.as_bytes()).next().map(|(k, _)| k.into_owned());
            (p, decoded.unwrap_or_default())
        })
        .collect();
    (head, parts)
}

/// The filters of a request: its query parameters other than [`CURSOR_PARAMS`], in order.
pub fn filters_of(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().filter(|(k, _)| !CURSOR_PARAMS.contains(&k.as_ref())).map(|(k, v)| (k.into(), v.into())).collect()
}

/// `link` with each of `filters` it lacks (by name) appended. The link's own query is kept byte
/// for byte (a `sort_token` must not be re-encoded), a name it already has is never added twice,
/// and [`CURSOR_PARAMS`] are never added.
pub fn restore_filters(link: &str, filters: &[(String, String)]) -> String {
    let (_, parts) = raw_query_parts(link);
    let mut added = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    let mut seen: Vec<&str> = parts.iter().map(|(_, name)| name.as_str()).collect();
    for (k, v) in filters {
        if CURSOR_PARAMS.contains(&k.as_str()) || seen.contains(&k.as_str()) {
            continue;
        }
        added.append_pair(k, v);
        seen.push(k);
        any = true;
    }
    if !any {
        return link.to_owned();
    }
    let (before_fragment, fragment) = match link.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (link, None),
    };
    let sep = if !before_fragment.contains('?') {
        "?"
    } else if before_fragment.ends_with(['?', '&']) {
        ""
    } else {
        "&"
    };
    let mut out = format!("{before_fragment}{sep}{}", added.finish());
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `request` re-sent with `token` as its `continuation_token`: any earlier `continuation_token` and
/// the `offset` (deprecated where continuation tokens are used) are dropped, every other parameter
/// is kept byte for byte.
pub fn with_continuation_token(request: &str, token: &str) -> String {
    let (head, parts) = raw_query_parts(request);
    let mut query: Vec<String> = parts
        .into_iter()
        .filter(|(_, name)| name != "continuation_token" && name != "offset")
        .map(|(raw, _)| raw.to_owned())
        .collect();
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    query.push(format!("continuation_token={encoded}"));
    format!("{head}?{}", query.join("&"))
}

/// Whether a link carries a `continuation_token` (such links are not stored across runs).
fn has_continuation_token(link: &str) -> bool {
    raw_query_parts(link).1.iter().any(|(_, name)| name == "continuation_token")
}

/// The fields of a record the sync needs besides the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    /// The record id (numbers are turned into text).
    pub id: String,
    /// `date_modified` as sent, if present.
    pub date_modified: Option<String>,
}

#[derive(Deserialize)]
struct RawKey {
    id: serde_json::Value,
    #[serde(default)]
    date_modified: Option<String>,
}

/// Reads `id` and `date_modified` out of a record.
pub fn record_key(record: &RawValue) -> Result<RecordKey, String> {
    let raw: RawKey = serde_json::from_str(record.get()).map_err(|e| format!("record without a usable id: {e}"))?;
    let id = match raw.id {
        serde_json::Value::String(s) if !s.is_empty() => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("record id is not a string or number ({})", type_name(&other))),
    };
    Ok(RecordKey { id, date_modified: raw.date_modified })
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "empty string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

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

/// Options for a cursor.
#[derive(Debug, Clone, Copy)]
pub struct CursorOptions {
    /// Page size; `None` uses the entity's maximum (5000 for most lists: fewest calls).
    pub page_size: Option<u32>,
    /// How far before the previous run an offset scan's `last_modified` starts, covering
    /// Blackbaud's ~30-minute list latency.
    pub overlap: Duration,
}

impl Default for CursorOptions {
    fn default() -> Self {
        Self { page_size: None, overlap: Duration::from_secs(30 * 60) }
    }
}

/// After a page: go on, or the entity is caught up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Fetch [`Cursor::request_url`] next.
    More,
    /// Nothing more this run.
    Done,
}

/// Plans the requests of one entity's sync.
#[derive(Debug, Clone)]
pub struct Cursor {
    entity: &'static Entity,
    base: Url,
    limit: u32,
    overlap: Duration,
    state: Bookmark,
    ids_only: bool,
    /// The non-cursor parameters of the chain's first request, restored on every link.
    filters: Vec<(String, String)>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formattable time")
}

fn max_text_time(a: Option<String>, b: Option<&str>) -> Option<String> {
    let parse = |s: &str| OffsetDateTime::parse(s, &Rfc3339).ok();
    match (a, b) {
        (None, b) => b.map(str::to_owned),
        (Some(a), None) => Some(a),
        (Some(a), Some(b)) => match (parse(&a), parse(b)) {
            (Some(x), Some(y)) if y > x => Some(b.to_owned()),
            (None, Some(_)) => Some(b.to_owned()),
            _ => Some(a),
        },
    }
}

impl Cursor {
    /// Continues from `bookmark` (or starts from the beginning without one).
    pub fn resume(
        entity: &'static Entity,
        base: &Url,
        bookmark: Option<Bookmark>,
        options: CursorOptions,
        now: OffsetDateTime,
    ) -> Self {
        let limit = options.page_size.unwrap_or(entity.max_limit).clamp(1, entity.max_limit);
        let state = match (entity.incremental, bookmark) {
            (Incremental::SortToken, Some(b @ Bookmark::Chain { .. })) => b,
            (_, Some(b @ Bookmark::Offset { .. })) => b,
            (Incremental::LastModifiedOffset, Some(Bookmark::Done { since, high_water })) => {
                Bookmark::Offset { since, offset: 0, started_at: rfc3339(now), high_water }
            }
            (Incremental::SortToken, other) => {
                // A first run, or a bookmark of another kind: start the chain from the last
                // change seen (minus the overlap), or from the beginning of time.
                let high_water = other.as_ref().and_then(|b| b.high_water().map(str::to_owned));
                let since = high_water
                    .as_deref()
                    .and_then(|h| OffsetDateTime::parse(h, &Rfc3339).ok())
                    .map(|t| rfc3339(t - options.overlap))
                    .unwrap_or_else(|| BEGINNING_OF_TIME.to_owned());
                let url = Self::list_url(entity, base, limit, &[("last_modified", since.as_str())]);
                Bookmark::Chain { next_link: url.to_string(), high_water }
            }
            (_, _) => Bookmark::Offset { since: None, offset: 0, started_at: rfc3339(now), high_water: None },
        };
        let filters = Self::first_filters(entity, base, limit, false);
        Self { entity, base: base.clone(), limit, overlap: options.overlap, state, ids_only: false, filters }
    }

    /// The filters the first request of a chain sends (what every later page must keep).
    fn first_filters(entity: &Entity, base: &Url, limit: u32, ids_only: bool) -> Vec<(String, String)> {
        let fields: &[(&str, &str)] = if ids_only && entity.fields_id { &[("fields", "id")] } else { &[] };
        filters_of(&Self::list_url(entity, base, limit, fields))
    }

    /// A scan of every current id, for delete reconciliation (`fields=id` where supported).
    ///
    /// Lists with a `sort_token` are scanned as a chain from the beginning of time: offset pages
    /// shift when records are deleted behind the scan, skipping live ids that would then be taken
    /// for deleted, while a chain keeps its order and moves changed records to its end.
    pub fn id_scan(entity: &'static Entity, base: &Url, options: CursorOptions, now: OffsetDateTime) -> Self {
        let limit = options.page_size.unwrap_or(entity.max_limit).clamp(1, entity.max_limit);
        let state = match entity.incremental {
            Incremental::SortToken => {
                let mut extra = vec![("last_modified", BEGINNING_OF_TIME)];
                if entity.fields_id {
                    extra.push(("fields", "id"));
                }
                Bookmark::Chain { next_link: Self::list_url(entity, base, limit, &extra).to_string(), high_water: None }
            }
            _ => Bookmark::Offset { since: None, offset: 0, started_at: rfc3339(now), high_water: None },
        };
        let filters = Self::first_filters(entity, base, limit, true);
        Self { entity, base: base.clone(), limit, overlap: options.overlap, state, ids_only: true, filters }
    }

    /// The entity being synced.
    pub fn entity(&self) -> &'static Entity {
        self.entity
    }

    /// The page size in use.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// What to store with the rows of the page just read.
    pub fn bookmark(&self) -> &Bookmark {
        &self.state
    }

    fn list_url(entity: &Entity, base: &Url, limit: u32, extra: &[(&str, &str)]) -> Url {
        let mut url = base.clone();
        let path = format!("{}{}", base.path().trim_end_matches('/'), entity.path);
        url.set_path(&path);
        url.set_query(None);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &limit.to_string());
            for (k, v) in extra {
                q.append_pair(k, v);
            }
            if entity.include_inactive {
                q.append_pair("include_inactive", "true");
            }
            if entity.include_deceased {
                q.append_pair("include_deceased", "true");
            }
        }
        url
    }

    /// The URL of the next page.
    pub fn request_url(&self) -> Result<Url, PageError> {
        match &self.state {
            // Bookmarks stored before filters were restored on links get them back here.
            Bookmark::Chain { next_link, .. } => Url::parse(&restore_filters(next_link, &self.filters))
                .map_err(|e| PageError::Malformed { url: "stored next_link".into(), problem: e.to_string() }),
            Bookmark::Offset { since, offset, .. } => {
                let offset = offset.to_string();
                let mut extra = vec![("offset", offset.as_str())];
                if let Some(s) = since {
                    extra.push(("last_modified", s.as_str()));
                }
                if self.ids_only && self.entity.fields_id {
                    extra.push(("fields", "id"));
                }
                Ok(Self::list_url(self.entity, &self.base, self.limit, &extra))
            }
            Bookmark::Done { .. } => {
                Err(PageError::Malformed { url: self.entity.path.into(), problem: "the scan is finished".into() })
            }
        }
    }

    /// Takes in a page; `page_high_water` is the newest `date_modified` among its records.
    pub fn advance(&mut self, page: &Page, page_high_water: Option<&str>, now: OffsetDateTime) -> Step {
        let n = page.value.len() as u64;
        match &mut self.state {
            Bookmark::Chain { next_link, high_water } => {
                let hw = max_text_time(high_water.take(), page_high_water);
                let next = match (&page.next_link, &page.continuation_token) {
                    (Some(link), _) => Some(restore_filters(link, &self.filters)),
                    (None, Some(token)) => {
                        let current = restore_filters(next_link, &self.filters);
                        Some(with_continuation_token(&current, token))
                    }
                    (None, None) => None,
                };
                match next {
                    Some(link) if n > 0 => {
                        *next_link = link;
                        *high_water = hw;
                        Step::More
                    }
                    // An empty page ends the chain; its sort_token link is where the next run
                    // resumes (Blackbaud's advice). A continuation token is not kept across runs.
                    Some(link) if !has_continuation_token(&link) => {
                        *next_link = link;
                        *high_water = hw;
                        Step::Done
                    }
                    _ => {
                        // The API ended the chain without a reusable link: restart from the newest
                        // change next time, minus the overlap.
                        let since = hw
                            .as_deref()
                            .and_then(|h| OffsetDateTime::parse(h, &Rfc3339).ok())
                            .map(|t| rfc3339(t - self.overlap))
                            .unwrap_or_else(|| BEGINNING_OF_TIME.to_owned());
                        *next_link =
                            Self::list_url(self.entity, &self.base, self.limit, &[("last_modified", since.as_str())])
                                .to_string();
                        *high_water = hw;
                        Step::Done
                    }
                }
            }
            Bookmark::Offset { since, offset, started_at, high_water } => {
                *offset += n;
                let hw = max_text_time(high_water.take(), page_high_water);
                let finished = n < u64::from(self.limit) || page.count.is_some_and(|c| *offset >= c) || n == 0;
                if finished {
                    let next_since = match self.entity.incremental {
                        Incremental::Full => None,
                        _ => OffsetDateTime::parse(started_at, &Rfc3339).ok().map(|t| rfc3339(t - self.overlap)),
                    };
                    let _ = (since, now);
                    self.state = Bookmark::Done { since: next_since, high_water: hw };
                    Step::Done
                } else {
                    *high_water = hw;
                    Step::More
                }
            }
            Bookmark::Done { .. } => Step::Done,
        }
    }
}
