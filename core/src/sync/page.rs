//! Reading one page of a SKY API list: the `{count, next_link, value}` envelope and the two fields
//! of each record the sync needs (`id`, `date_modified`). Records stay the JSON received.
//!
//! A sync reads a page with [`parse_keyed_page`]: one pass over the body finds the envelope, each
//! record's place and its key fields (the `scan` module). The records keep sharing the page's body
//! ([`RecordJson`]), so moving them to a sink copies no JSON.

mod scan;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde_json::value::RawValue;
use url::Url;

use crate::http::{HttpResponse, redacted_url};

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
    pub value: Vec<RecordJson>,
}

/// One record's JSON text exactly as received (checked to be JSON): a slice of its page's body,
/// which the page's records share, so cloning or moving one copies no JSON.
#[derive(Clone)]
pub struct RecordJson {
    body: Arc<str>,
    span: Range<usize>,
}

impl RecordJson {
    /// Checks that `json` is one JSON value and keeps it (without surrounding whitespace).
    pub fn new(json: &str) -> Result<Self, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(json)?;
        Ok(RecordJson { body: Arc::from(raw.get()), span: 0..raw.get().len() })
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.body[self.span.clone()]
    }
}

impl From<Box<RawValue>> for RecordJson {
    fn from(raw: Box<RawValue>) -> Self {
        let text: Box<str> = raw.into();
        RecordJson { span: 0..text.len(), body: Arc::from(text) }
    }
}

impl fmt::Debug for RecordJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RecordJson").field(&format_args!("{}", self.get())).finish()
    }
}

impl fmt::Display for RecordJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl PartialEq for RecordJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RecordJson {}

/// Serializes as the JSON itself (embedded, not as a string), like [`RawValue`].
impl serde::Serialize for RecordJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(self.get()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
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

/// Parses a list envelope `{count, next_link, value}`.
pub fn parse_page(url: &Url, response: &HttpResponse) -> Result<Page, PageError> {
    match read_page(url, response, None)? {
        Ok((page, _)) => Ok(page),
        // Without a key field no record is read, so none can fail.
        Err(problem) => Err(PageError::Malformed { url: redacted_url(url), problem }),
    }
}

/// Parses a list envelope and reads the key field `key` (the catalog's
/// [`Entity::key`](super::catalog::Entity::key)) and `date_modified` of every record in the same
/// pass: what [`parse_page`] then [`record_keys`] return, reading the body once. The inner
/// error is the first record without a usable key (it fails the page).
pub fn parse_keyed_page(
    url: &Url,
    response: &HttpResponse,
    key: &str,
) -> Result<Result<(Page, Vec<RecordKey>), String>, PageError> {
    read_page(url, response, Some(key))
}

fn read_page(
    url: &Url,
    response: &HttpResponse,
    key: Option<&str>,
) -> Result<Result<(Page, Vec<RecordKey>), String>, PageError> {
    let bad = |problem: String| PageError::Malformed { url: redacted_url(url), problem };
    if !response.is_json() {
        return Err(bad(format!("expected JSON, got {}", response.body_excerpt())));
    }
    let text = std::str::from_utf8(&response.body).map_err(|e| bad(format!("not a list envelope: {e}")))?;
    let raw = match scan::scan(text, key) {
        Ok(raw) => raw,
        Err(scan::ScanError::Envelope(e)) => return Err(bad(format!("not a list envelope: {e}"))),
        Err(scan::ScanError::Record(problem)) => return Ok(Err(problem)),
    };
    let spans = raw.records.ok_or_else(|| bad("no \"value\" array".into()))?;
    // An absolute link (Blackbaud's are) is kept verbatim, its sort_token as received. A relative
    // one is resolved against the page's URL: the link becomes the bookmark, read again by later
    // runs that no longer know that URL.
    let next_link = match raw.next_link.filter(|l| !l.is_empty()) {
        Some(link) => {
            let target = same_origin_link(url, &link).map_err(bad)?;
            Some(if Url::parse(&link).is_ok() { link } else { target.to_string() })
        }
        None => None,
    };
    // The records' text stays in one copy of the body, which they share.
    let body: Arc<str> = Arc::from(text);
    let value = spans.into_iter().map(|span| RecordJson { body: Arc::clone(&body), span }).collect();
    let page = Page {
        count: raw.count,
        next_link,
        continuation_token: raw.continuation_token.filter(|t| !t.is_empty()),
        value,
    };
    Ok(Ok((page, raw.keys)))
}

/// Refuses a `next_link` that leads away from the host that served the page. The API client
/// refuses such a request too, but the page's rows are committed together with the link as the
/// bookmark before it is requested; a foreign link stored there would break every later run (and
/// an empty page's link is not requested until the next run).
fn same_origin_link(page_url: &Url, link: &str) -> Result<Url, String> {
    let target = page_url.join(link).map_err(|e| format!("next_link is not a URL: {e}"))?;
    if target.origin() != page_url.origin() {
        return Err(format!("next_link points to another host ({}); not following it", redacted_url(&target)));
    }
    Ok(target)
}

/// The fields of a record the sync needs besides the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    /// The record id (numbers are turned into text).
    pub id: String,
    /// `date_modified` as sent, if present.
    pub date_modified: Option<String>,
}

/// Reads `id` and `date_modified` out of a record.
pub fn record_key(record: &RecordJson) -> Result<RecordKey, String> {
    record_key_named(record, "id")
}

/// Reads the key field `key` (the catalog's [`Entity::key`](super::catalog::Entity::key)) and
/// `date_modified` out of a record.
pub fn record_key_named(record: &RecordJson, key: &str) -> Result<RecordKey, String> {
    scan::record_key(record.get(), key)
}

/// One record ready for a sink: its key fields and the JSON exactly as received.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record id.
    pub id: String,
    /// `date_modified` as sent, if present.
    pub date_modified: Option<String>,
    /// The record JSON exactly as the API sent it.
    pub data: RecordJson,
}

/// Reads the key (field `key`) of every record of `page`; the first record without a usable key
/// fails the page.
pub fn record_keys(page: &Page, key: &str) -> Result<Vec<RecordKey>, String> {
    page.value.iter().map(|v| record_key_named(v, key)).collect()
}

/// Moves a page's records out, each with its key (`keys` as [`record_keys`] read them).
pub fn into_records(page: &mut Page, keys: Vec<RecordKey>) -> Vec<Record> {
    std::mem::take(&mut page.value)
        .into_iter()
        .zip(keys)
        .map(|(data, key)| Record { id: key.id, date_modified: key.date_modified, data })
        .collect()
}
