//! Query filters of a list request, replayed onto the links Blackbaud hands back.
//!
//! Blackbaud's documented `next_link` example carries only `limit`, `last_modified` and
//! `sort_token`; whether filters such as `include_inactive`, `include_deceased` and `fields` survive
//! is not said. If they were dropped, every page after the first would silently leave out inactive
//! and deceased records, so each filter of the first request a link lacks is added back
//! ([`restore_filters`]); cursor parameters ([`CURSOR_PARAMS`]) are never added, changed or
//! duplicated. `skysync api --paginate` replays filters the same way.

use url::Url;

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
pub(crate) fn has_continuation_token(link: &str) -> bool {
    raw_query_parts(link).1.iter().any(|(_, name)| name == "continuation_token")
}
