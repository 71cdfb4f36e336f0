//! Reading one page of a SKY API list: the `{count, next_link, value}` envelope and the two fields
//! of each record the sync needs (`id`, `date_modified`). Records stay the JSON received.

use serde::Deserialize;
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

#[derive(Deserialize)]
struct RawKey {
    id: serde_json::Value,
    #[serde(default)]
    date_modified: Option<String>,
}

/// Reads `id` and `date_modified` out of a record.
pub fn record_key(record: &RawValue) -> Result<RecordKey, String> {
    record_key_named(record, "id")
}

/// Reads the key field `key` (the catalog's [`Entity::key`](super::catalog::Entity::key)) and
/// `date_modified` out of a record.
pub fn record_key_named(record: &RawValue, key: &str) -> Result<RecordKey, String> {
    let (id, date_modified) = if key == "id" {
        let raw: RawKey = serde_json::from_str(record.get()).map_err(|e| format!("record without a usable id: {e}"))?;
        (raw.id, raw.date_modified)
    } else {
        // Other keys are the general ledger's small lists: a map is fast enough there.
        let mut raw: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(record.get()).map_err(|e| format!("record is not an object: {e}"))?;
        let id = raw.remove(key).ok_or_else(|| format!("record without a usable {key}: the field is missing"))?;
        let date_modified = match raw.remove("date_modified") {
            Some(serde_json::Value::String(s)) => Some(s),
            _ => None,
        };
        (id, date_modified)
    };
    let id = match id {
        serde_json::Value::String(s) if !s.is_empty() => s,
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("record {key} is not a string or number ({})", type_name(&other))),
    };
    Ok(RecordKey { id, date_modified })
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

/// One record ready for a sink: its key fields and the JSON exactly as received.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record id.
    pub id: String,
    /// `date_modified` as sent, if present.
    pub date_modified: Option<String>,
    /// The record JSON exactly as the API sent it.
    pub data: Box<RawValue>,
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
