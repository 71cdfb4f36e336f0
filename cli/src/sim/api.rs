//! The list endpoints: authentication, throttling, paging and the collection envelope.

use std::fmt::Write as _;

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use skysync_core::catalog::{CATALOG, Entity, Incremental};

use super::data::{Page, PageQuery, ParentFilter, Visibility, initial_count};
use super::faults::{Surface, apply, quota_response, rate_limit_response, truncated};
use super::net::Conn;
use super::render::{Ctx, push_json_str, render};
use super::respond::{api_error, json_text, pairs, param};
use super::state::{Inner, Shared, Throttle};
use super::{ActionsPaging, Fault};

const BAD_KEY: &str =
    "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";
const BAD_TOKEN: &str = "The required Authorization header was missing or invalid, or the token has expired.";
/// Added to row versions in `sort_token`s so they look like database row versions.
const TOKEN_BASE: u64 = 0x0000_0001_0002_F000;

/// A validated list request.
#[derive(Debug)]
struct ListParams {
    page: PageQuery,
    /// The request pages by change version (`last_modified`, `sort_token` or
    /// `continuation_token`): `next_link` carries a cursor.
    token_mode: bool,
    /// `fields=...` on an entity that supports it (`id` is always returned).
    fields: Option<Vec<String>>,
    limit: u64,
    offset: u64,
}

/// `GET {entity.path}`, phase by phase: count the call, admit it (key, throttle, injected
/// fault), check the bearer token, read the parameters, select the page, then write its rows and
/// its cursor.
pub(crate) async fn list(sim: &Shared, conn: &Conn, index: usize, parent: Option<&str>, req: Request) -> Response {
    let entity = &CATALOG[index];
    count_call(sim, entity, parent);
    if req.method() != Method::GET {
        return api_error(StatusCode::METHOD_NOT_ALLOWED, "The simulator serves list endpoints (GET) only.");
    }
    let q = pairs(req.uri().query().unwrap_or("").as_bytes());
    if let Some(refused) = refuse_key_or_throttle(sim, &req, &q) {
        return refused;
    }
    let fault = next_fault(sim);
    // A truncated answer needs the page, so it is served at the end.
    let truncate = fault == Some(Fault::Truncated);
    if let Some(fault) = fault.filter(|_| !truncate)
        && let Some(resp) = apply(sim, conn, fault, Surface::Api).await
    {
        return resp;
    }
    if let Some(refused) = refuse_bearer(sim, &req) {
        return refused;
    }
    let (paging, keep_filters) = {
        let s = sim.lock();
        let paging = if entity.name == "actions" { s.cfg.actions_paging } else { ActionsPaging::SortToken };
        (paging, s.cfg.next_link_keeps_filters)
    };
    let mut params = match parse_params(entity, &q, paging) {
        Ok(p) => p,
        Err(msg) => return api_error(StatusCode::BAD_REQUEST, &msg),
    };
    if let Some(parent) = parent {
        match parent_filter(sim, entity, parent) {
            Some(filter) => params.page.parent = Some(filter),
            None => return api_error(StatusCode::NOT_FOUND, "The requested resource could not be found."),
        }
        if sim.lock().cfg.child_lists_ignore_last_modified {
            params.page.since = None;
            params.page.by_version = false;
        }
    }
    let (page, ctx) = select_page(sim, index, params.page);
    let mut body = String::with_capacity(page.rows.len() * 700 + 256);
    write_rows(&mut body, ctx, &page, params.fields.as_deref());
    let links = LinkParts { sim, entity, q: &q, limit: params.limit, keep_filters };
    write_cursor(&mut body, &links, &params, paging, &page);
    body.push('}');
    sim.lock().stats.api_ok += 1;
    if truncate {
        return truncated(sim, body);
    }
    json_text(StatusCode::OK, body)
}

fn count_call(sim: &Shared, entity: &Entity, parent: Option<&str>) {
    let mut s = sim.lock();
    s.stats.api_calls += 1;
    *s.stats.per_entity_calls.entry(entity.name.to_owned()).or_default() += 1;
    if let Some(parent) = parent {
        *s.stats.per_parent_calls.entry(format!("{}/{parent}", entity.name)).or_default() += 1;
    }
}

/// The rows of parent `id` of a per-parent list, if that parent is a live record.
fn parent_filter(sim: &Shared, entity: &Entity, id: &str) -> Option<ParentFilter> {
    let parent = entity.parent?.entity;
    let index = CATALOG.iter().position(|e| e.name == parent)?;
    let mut s = sim.lock();
    let parents = initial_count(parent, s.cfg.records);
    let (idx, _, _) = s.table(index).get(id)?;
    Some(ParentFilter { index: idx, parents })
}

/// The checks before any fault or token: the subscription key, then the rate limit and quota.
fn refuse_key_or_throttle(sim: &Shared, req: &Request, q: &[(String, String)]) -> Option<Response> {
    let key = req
        .headers()
        .get("bb-api-subscription-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| param(q, "subscription-key"));
    let mut s = sim.lock();
    if key != Some(s.cfg.subscription_key.as_str()) {
        s.stats.unauthorized += 1;
        return Some(api_error(StatusCode::UNAUTHORIZED, BAD_KEY));
    }
    match s.throttle() {
        Some(Throttle::RateLimited) => {
            s.stats.rate_limited += 1;
            Some(rate_limit_response(1))
        }
        Some(Throttle::Quota(secs)) => {
            s.stats.quota_rejections += 1;
            Some(quota_response(secs))
        }
        None => None,
    }
}

/// The next queued fault, else a random one (or none).
fn next_fault(sim: &Shared) -> Option<Fault> {
    let mut s = sim.lock();
    s.api_faults.pop_front().or_else(|| random_fault(&mut s))
}

/// The 401 Blackbaud answers unless the request carries a live bearer access token.
fn refuse_bearer(sim: &Shared, req: &Request) -> Option<Response> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let mut s = sim.lock();
    if !bearer.is_some_and(|t| s.access_valid(t)) {
        s.stats.unauthorized += 1;
        return Some(api_error(StatusCode::UNAUTHORIZED, BAD_TOKEN));
    }
    None
}

/// The page `query` selects, with the list lag applied, and what rendering its rows needs.
fn select_page(sim: &Shared, index: usize, mut query: PageQuery) -> (Page, Ctx<'static>) {
    let entity = &CATALOG[index];
    let mut s = sim.lock();
    let lagged = entity.latency_30m || s.cfg.list_lag_everywhere;
    if let Some(lag) = s.cfg.list_lag.filter(|_| lagged) {
        let lag_ticks = i64::try_from(lag.as_micros()).unwrap_or(i64::MAX / 20) * 10;
        query.hidden_after = Some(s.now_ticks().saturating_sub(lag_ticks));
    }
    let ctx = Ctx {
        entity: entity.name,
        entity_index: index,
        seed: s.cfg.seed,
        records: s.cfg.records,
        string_values: s.cfg.custom_field_values_as_strings,
    };
    (s.table(index).page(&query), ctx)
}

/// `{"count":N,"value":[rows]`: whole records, or only the asked-for `fields` (`id` always).
fn write_rows(body: &mut String, ctx: Ctx<'_>, page: &Page, fields: Option<&[String]>) {
    let _ = write!(body, "{{\"count\":{},\"value\":[", page.count);
    for (i, (idx, row, added)) in page.rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        match fields {
            None => render(body, ctx, *idx, row, *added),
            Some(fields) if fields.iter().all(|f| f == "id") => {
                let _ = write!(body, "{{\"id\":\"{}\"}}", idx + 1);
            }
            Some(fields) => {
                let mut one = String::new();
                render(&mut one, ctx, *idx, row, *added);
                let mut value: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&one).unwrap_or_default();
                value.retain(|k, _| k == "id" || fields.iter().any(|f| f == k));
                body.push_str(&serde_json::Value::Object(value).to_string());
            }
        }
    }
    body.push(']');
}

/// What comes next: a `next_link` (cursor or offset) or a body `continuation_token`, if any.
fn write_cursor(body: &mut String, links: &LinkParts<'_>, params: &ListParams, paging: ActionsPaging, page: &Page) {
    let full_page = page.rows.len() as u64 >= params.limit;
    let mut next_link = None;
    let mut body_token = None;
    if params.token_mode {
        match paging {
            ActionsPaging::SortToken => {
                next_link = Some(links.build(Cursor::SortToken(encode_token(page.resume_version))));
            }
            ActionsPaging::NextLinkContinuation if full_page => {
                next_link = Some(links.build(Cursor::Continuation(encode_continuation(page.resume_version))));
            }
            ActionsPaging::BodyContinuation if full_page => body_token = Some(encode_continuation(page.resume_version)),
            _ => {}
        }
    } else if links.entity.incremental != Incremental::LastModifiedOffset
        && params.offset + (page.rows.len() as u64) < page.count
    {
        let next = params.offset + page.rows.len() as u64;
        next_link = Some(links.build(Cursor::Offset(next)));
    }
    if let Some(link) = next_link {
        body.push_str(",\"next_link\":");
        push_json_str(body, &link);
    }
    if let Some(token) = body_token {
        body.push_str(",\"continuation_token\":");
        push_json_str(body, &token);
    }
}

fn random_fault(s: &mut Inner) -> Option<Fault> {
    let rates = s.cfg.faults;
    let rng = &mut s.fault_rng;
    if rng.chance(rates.api_drop) {
        Some(Fault::Drop)
    } else if rng.chance(rates.api_500) {
        Some(Fault::Status { code: 500 })
    } else if rng.chance(rates.api_429) {
        Some(Fault::TooManyRequests { retry_after_secs: 1 })
    } else if rng.chance(rates.api_truncated) {
        Some(Fault::Truncated)
    } else if rng.chance(rates.api_slow) {
        s.stats.slowed += 1;
        Some(Fault::Slow { ms: rates.slow_ms })
    } else {
        None
    }
}

fn parse_params(entity: &Entity, q: &[(String, String)], paging: ActionsPaging) -> Result<ListParams, String> {
    let limit = match param(q, "limit") {
        None => 500.min(u64::from(entity.max_limit)),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (1..=u64::from(entity.max_limit)).contains(&n) => n,
            _ => {
                return Err(format!(
                    "The value '{v}' is not valid for limit. It must be between 1 and {}.",
                    entity.max_limit
                ));
            }
        },
    };
    let offset = match param(q, "offset") {
        None => 0,
        Some(v) => v.trim().parse::<u64>().map_err(|_| format!("The value '{v}' is not valid for offset."))?,
    };
    let since = match param(q, "last_modified") {
        None => None,
        Some(v) => Some(parse_datetime(v).ok_or_else(|| format!("The value '{v}' is not valid for last_modified."))?),
    };
    let token = match param(q, "sort_token") {
        None => None,
        Some(v) => Some(decode_token(v).ok_or_else(|| format!("The sort_token '{v}' is not valid."))?),
    };
    // Actions accept `continuation_token` (Blackbaud: "fetching the next page of results from
    // list platform"); it positions the request like a `sort_token` and makes `offset` moot.
    let continuation = match param(q, "continuation_token").filter(|_| entity.name == "actions") {
        None => None,
        Some(v) => Some(decode_continuation(v).ok_or_else(|| format!("The continuation_token '{v}' is not valid."))?),
    };
    let token = token.or(continuation);
    let offset =
        if continuation.is_some() || (paging != ActionsPaging::SortToken && since.is_some()) { 0 } else { offset };
    if token.is_some() && param(q, "sort").is_some() {
        return Err("The sort and sort_token parameters cannot be provided together.".into());
    }
    let flag = |name: &str| param(q, name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let vis = Visibility {
        include_inactive: !entity.include_inactive || flag("include_inactive"),
        include_deceased: !entity.include_deceased || flag("include_deceased"),
    };
    let (by_version, token_mode) = match entity.incremental {
        Incremental::SortToken => {
            let on = since.is_some() || token.is_some();
            (on, on)
        }
        Incremental::LastModifiedOffset => (since.is_some(), false),
        Incremental::Full => (false, false),
    };
    let fields = match param(q, "fields") {
        Some(f) if entity.fields_id => {
            Some(f.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        }
        _ => None,
    };
    let page = PageQuery {
        vis,
        by_version,
        since: since.filter(|_| by_version),
        after_version: token.filter(|_| token_mode),
        offset,
        limit,
        hidden_after: None,
        parent: None,
    };
    Ok(ListParams { page, token_mode, fields, limit, offset })
}

fn encode_token(version: u64) -> String {
    STANDARD.encode((TOKEN_BASE + version).to_be_bytes())
}

fn decode_token(s: &str) -> Option<u64> {
    let bytes: [u8; 8] = STANDARD.decode(s.trim()).ok()?.try_into().ok()?;
    u64::from_be_bytes(bytes).checked_sub(TOKEN_BASE)
}

/// Continuation tokens look unlike sort tokens (a prefix, 12 bytes) and carry `+`, `/` or `=`
/// often enough to catch a client that does not encode them.
fn encode_continuation(version: u64) -> String {
    let mut bytes = b"ct:~".to_vec();
    bytes.extend_from_slice(&(TOKEN_BASE + version).to_be_bytes());
    STANDARD.encode(bytes)
}

fn decode_continuation(s: &str) -> Option<u64> {
    let bytes = STANDARD.decode(s.trim()).ok()?;
    let rest: [u8; 8] = bytes.strip_prefix(b"ct:~")?.try_into().ok()?;
    u64::from_be_bytes(rest).checked_sub(TOKEN_BASE)
}

/// Percent-encodes everything but unreserved characters, in lowercase like Blackbaud (`%3a`).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

/// What positions the next page.
enum Cursor {
    Offset(u64),
    SortToken(String),
    Continuation(String),
}

/// What every `next_link` of one response shares.
struct LinkParts<'a> {
    sim: &'a Shared,
    entity: &'a Entity,
    q: &'a [(String, String)],
    limit: u64,
    keep_filters: bool,
}

/// Parameters a `next_link` repeats even when it drops filters: Blackbaud's documented example
/// carries `limit`, `last_modified` and `sort_token` (`date_added` is taken to work alike).
const ALWAYS_REPEATED: &[&str] = &["last_modified", "date_added"];

impl LinkParts<'_> {
    /// An absolute `next_link`: `limit` first, then the caller's other parameters in their order
    /// (only `last_modified`/`date_added` unless filters are kept), then the cursor.
    fn build(&self, cursor: Cursor) -> String {
        let base = self.sim.base_url.as_str().trim_end_matches('/');
        let mut out = format!("{base}{}?limit={}", self.entity.path, self.limit);
        let continuation = matches!(cursor, Cursor::Continuation(_));
        for (k, v) in self.q {
            let cursor_param = matches!(k.as_str(), "limit" | "offset" | "sort_token" | "continuation_token");
            // A continuation token stands for the whole result set: its link needs nothing else.
            let repeated = self.keep_filters || (!continuation && ALWAYS_REPEATED.contains(&k.as_str()));
            if !cursor_param && repeated {
                let _ = write!(out, "&{}={}", enc(k), enc(v));
            }
        }
        match cursor {
            Cursor::Offset(offset) => {
                let _ = write!(out, "&offset={offset}");
            }
            Cursor::SortToken(t) => {
                let _ = write!(out, "&sort_token={}", enc(&t));
            }
            Cursor::Continuation(t) => {
                let _ = write!(out, "&continuation_token={}", enc(&t));
            }
        }
        out
    }
}

/// Parses an ISO-8601 date or date-time, with or without an offset (`Z`, `+05:30`, `-4:00`,
/// `+0530`; none means UTC), into 100 ns ticks, rounded up ("on or after").
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let date = s.get(..10)?;
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    let mut nanos = i128::from(date.midnight().assume_utc().unix_timestamp()) * 1_000_000_000;
    let rest = &s[10..];
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let split = rest.find(['+', '-', 'Z', 'z']).unwrap_or(rest.len());
        let (clock, zone) = rest.split_at(split);
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut hms = hms.split(':');
        let h: i128 = num(hms.next()?, 2)?;
        let mi: i128 = num(hms.next()?, 2)?;
        let sec: i128 = match hms.next() {
            Some(x) => num(x, 2)?,
            None => 0,
        };
        if hms.next().is_some() || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        if !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        let frac_nanos: i128 = digits.parse().ok()?;
        nanos += ((h * 60 + mi) * 60 + sec) * 1_000_000_000 + frac_nanos;
        let offset_secs: i128 = match zone {
            "" | "Z" | "z" => 0,
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let z = &z[1..];
                let (oh, om) = match z.split_once(':') {
                    Some((a, b)) => (a, b),
                    None if z.len() == 4 => z.split_at(2),
                    None => (z, "0"),
                };
                let (oh, om): (i128, i128) = (num(oh, 0)?, num(om, 0)?);
                if oh > 14 || om > 59 {
                    return None;
                }
                sign * (oh * 3600 + om * 60)
            }
        };
        nanos -= offset_secs * 1_000_000_000;
    }
    i64::try_from((nanos + 99).div_euclid(100)).ok()
}

/// A decimal number of exactly `len` digits (any length 1..=2 when `len` is 0).
fn num(s: &str, len: usize) -> Option<i128> {
    let ok_len = if len == 0 { (1..=2).contains(&s.len()) } else { s.len() == len };
    (ok_len && s.chars().all(|c| c.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blackbaud_date_forms() {
        let utc = parse_datetime("2016-05-05T21:59:31.1600745+00:00").unwrap();
        assert_eq!(parse_datetime("2016-05-05T17:59:31.1600745-04:00"), Some(utc));
        assert_eq!(parse_datetime("2016-05-05T21:59:31.1600745Z"), Some(utc));
        assert_eq!(parse_datetime("2017-04-03T08:30:00.0000-4:00"), parse_datetime("2017-04-03T12:30:00Z"));
        assert_eq!(parse_datetime("2020-01-01"), parse_datetime("2020-01-01T00:00:00Z"));
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_datetime("2020-13-01").is_none());
        assert!(parse_datetime("2020-01-01T25:00:00Z").is_none());
    }

    #[test]
    fn tokens_round_trip_and_links_use_lowercase_escapes() {
        assert_eq!(decode_token(&encode_token(42)), Some(42));
        assert_eq!(decode_continuation(&encode_continuation(42)), Some(42));
        assert_eq!(decode_continuation(&encode_token(42)), None);
        assert_eq!(enc("AAAAAAAC+I4="), "AAAAAAAC%2bI4%3d");
        assert!(decode_token("not a token").is_none());
    }
}
