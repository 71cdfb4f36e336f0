use std::time::Duration;

use url::Url;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::fake::json;
use crate::sync::catalog::find;
use crate::sync::{
    Bookmark, Cursor, CursorOptions, Page, RecordKey, Step, parse_page, record_key, record_key_named, record_keys,
    restore_filters, with_continuation_token,
};

fn base() -> Url {
    Url::parse("https://api.sky.blackbaud.com/").unwrap()
}

fn page(body: &str) -> Page {
    parse_page(&base(), &json(200, body)).unwrap()
}

fn keys(page: &Page) -> Vec<RecordKey> {
    record_keys(page, "id").unwrap()
}

#[test]
fn first_run_starts_a_sort_token_chain_with_the_largest_page() {
    let c = Cursor::resume(find("constituents").unwrap(), &base(), None, CursorOptions::default(), T0);
    let url = c.request_url().unwrap();
    assert_eq!(url.path(), "/constituent/v1/constituents");
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(q.contains(&("limit".into(), "5000".into())));
    assert!(q.contains(&("last_modified".into(), "1600-01-01T00:00:00Z".into())));
    assert!(q.contains(&("include_inactive".into(), "true".into())));
    assert!(q.contains(&("include_deceased".into(), "true".into())));
}

#[test]
fn chain_follows_next_link_verbatim_and_stops_on_empty_page() {
    let e = find("gifts").unwrap();
    let mut c = Cursor::resume(e, &base(), None, CursorOptions { page_size: Some(2), ..Default::default() }, T0);
    let link = "https://api.sky.blackbaud.com/gift/v1/gifts?limit=2&last_modified=1600-01-01T00%3a00%3a00Z&sort_token=AAAAAAAC%2bI4%3d";
    let p = page(&format!(
        r#"{{"count":2,"next_link":"{link}","value":[{{"id":"1","date_modified":"2020-01-01T00:00:00+00:00"}},{{"id":"2","date_modified":"2021-01-01T00:00:00+00:00"}}]}}"#
    ));
    assert_eq!(c.advance(&p, &keys(&p)), Step::More);
    assert_eq!(c.request_url().unwrap().as_str(), link, "sort_token is resent exactly as received");
    let link2 = link.replace("AAAAAAAC%2bI4%3d", "AAAAAAAC%2bI5%3d");
    let empty = page(&format!(r#"{{"count":0,"next_link":"{link2}","value":[]}}"#));
    assert_eq!(c.advance(&empty, &keys(&empty)), Step::Done);
    let stored = c.bookmark().to_json();
    let back = Bookmark::from_json(&stored).unwrap();
    assert_eq!(back.high_water(), Some("2021-01-01T00:00:00+00:00"));
    // The next run resumes from the empty page's link.
    let resumed = Cursor::resume(e, &base(), Some(back), CursorOptions::default(), T0 + Duration::from_secs(86_400));
    assert_eq!(resumed.request_url().unwrap().as_str(), link2);
}

#[test]
fn a_relative_next_link_is_resolved_against_the_page_so_later_runs_can_follow_it() {
    let e = find("gifts").unwrap();
    let mut c = Cursor::resume(e, &base(), None, CursorOptions { page_size: Some(1), ..Default::default() }, T0);
    let p = page(
        r#"{"count":2,"next_link":"/gift/v1/gifts?limit=1&sort_token=AB%2bC","value":[{"id":"1","date_modified":"2020-01-01T00:00:00+00:00"}]}"#,
    );
    assert_eq!(p.next_link.as_deref(), Some("https://api.sky.blackbaud.com/gift/v1/gifts?limit=1&sort_token=AB%2bC"));
    assert_eq!(c.advance(&p, &keys(&p)), Step::More);
    let stored = Bookmark::from_json(&c.bookmark().to_json()).unwrap();
    let resumed = Cursor::resume(e, &base(), Some(stored), CursorOptions::default(), T0);
    assert_eq!(resumed.request_url().unwrap().path(), "/gift/v1/gifts");
}

#[test]
fn events_page_by_offset_and_restart_with_overlap() {
    let e = find("events").unwrap();
    let opts = CursorOptions { page_size: Some(2), overlap: Duration::from_secs(1800) };
    let mut c = Cursor::resume(e, &base(), None, opts, T0);
    let u = c.request_url().unwrap();
    assert!(u.query().unwrap().contains("offset=0") && !u.query().unwrap().contains("last_modified"));
    let two = page(r#"{"count":3,"value":[{"id":"1"},{"id":"2"}]}"#);
    assert_eq!(c.advance(&two, &keys(&two)), Step::More);
    assert!(c.request_url().unwrap().query().unwrap().contains("offset=2"));
    let one = page(r#"{"count":3,"value":[{"id":"3"}]}"#);
    assert_eq!(c.advance(&one, &keys(&one)), Step::Done);
    match c.bookmark() {
        Bookmark::Done { since, .. } => assert_eq!(since.as_deref(), Some("2026-01-15T11:30:00Z")),
        other => panic!("{other:?}"),
    }
    let next = Cursor::resume(e, &base(), Some(c.bookmark().clone()), opts, T0 + Duration::from_secs(86_400));
    let q = next.request_url().unwrap();
    assert!(q.query().unwrap().contains("last_modified=2026-01-15T11%3A30%3A00Z"), "{q}");
    assert!(q.query().unwrap().contains("offset=0"));
}

#[test]
fn id_scan_uses_fields_id_where_supported() {
    let c = Cursor::id_scan(find("constituents").unwrap(), &base(), CursorOptions::default(), T0);
    assert!(c.request_url().unwrap().query().unwrap().contains("fields=id"));
    let g = Cursor::id_scan(find("gifts").unwrap(), &base(), CursorOptions::default(), T0);
    assert!(!g.request_url().unwrap().query().unwrap().contains("fields=id"));
}

#[test]
fn id_scan_of_a_sort_token_list_follows_the_chain_to_its_empty_page() {
    let mut g = Cursor::id_scan(
        find("gifts").unwrap(),
        &base(),
        CursorOptions { page_size: Some(2), ..Default::default() },
        T0,
    );
    let q = g.request_url().unwrap();
    assert!(q.query().unwrap().contains("last_modified=1600-01-01"), "{q}");
    assert!(!q.query().unwrap().contains("offset"), "{q}");
    let link = "https://api.sky.blackbaud.com/gift/v1/gifts?limit=2&last_modified=x&sort_token=AAAAAAAC%2bI4%3d";
    let full = page(&format!(r#"{{"count":9,"value":[{{"id":"1"}},{{"id":"2"}}],"next_link":"{link}"}}"#));
    assert_eq!(g.advance(&full, &keys(&full)), Step::More);
    assert_eq!(g.request_url().unwrap().as_str(), link);
    let empty = page(&format!(r#"{{"count":9,"value":[],"next_link":"{link}"}}"#));
    assert_eq!(g.advance(&empty, &keys(&empty)), Step::Done);
    // Offset-only lists keep offset paging.
    let e = Cursor::id_scan(find("events").unwrap(), &base(), CursorOptions::default(), T0);
    assert!(e.request_url().unwrap().query().unwrap().contains("offset=0"));
}

#[test]
fn page_and_record_parsing_errors() {
    assert!(parse_page(&base(), &json(200, r#"{"count":1}"#)).is_err());
    let html = crate::http::HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: b"<html>oops</html>".to_vec(),
    };
    assert!(parse_page(&base(), &html).unwrap_err().to_string().contains("text/html"));
    let p = page(r#"{"value":[{"id":7,"date_modified":"x"},{"id":"a"},{"id":null},{"x":1}]}"#);
    assert_eq!(record_key(&p.value[0]).unwrap().id, "7");
    assert_eq!(record_key(&p.value[1]).unwrap().date_modified, None);
    assert!(record_key(&p.value[2]).is_err());
    assert!(record_key(&p.value[3]).is_err());
}

#[test]
fn a_list_keyed_by_another_field_reads_that_field() {
    let p = page(
        r#"{"value":[{"project_id":12,"id":99,"date_modified":"2024-01-02T03:04:05Z"},{"project_id":"P-1"},{"id":5}]}"#,
    );
    let k = record_key_named(&p.value[0], "project_id").unwrap();
    assert_eq!((k.id.as_str(), k.date_modified.as_deref()), ("12", Some("2024-01-02T03:04:05Z")));
    assert_eq!(record_key_named(&p.value[1], "project_id").unwrap().id, "P-1");
    let err = record_key_named(&p.value[2], "project_id").unwrap_err();
    assert!(err.contains("project_id"), "{err}");
    assert!(record_keys(&p, "project_id").is_err(), "one record without the key fails the page");
}

fn query(url: &str) -> Vec<(String, String)> {
    Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn names(url: &str) -> Vec<String> {
    query(url).into_iter().map(|(k, _)| k).collect()
}

/// Blackbaud's documented example link: only `limit`, `last_modified` and `sort_token`.
const BARE_LINK: &str = "https://api.sky.blackbaud.com/constituent/v1/constituents?limit=3&last_modified=2016-05-05T17%3a59%3a31.1600745-04%3a00&sort_token=AAAAAAAC%2bI4%3d";

#[test]
fn restore_filters_adds_what_the_link_lacks_and_keeps_the_link_verbatim() {
    let filters = vec![
        ("limit".to_owned(), "3".to_owned()),
        ("include_inactive".to_owned(), "true".to_owned()),
        ("include_deceased".to_owned(), "true".to_owned()),
        ("fields".to_owned(), "id,name".to_owned()),
        ("sort_token".to_owned(), "OTHER".to_owned()),
        ("last_modified".to_owned(), "1600-01-01T00:00:00Z".to_owned()),
        ("offset".to_owned(), "7".to_owned()),
    ];
    let out = restore_filters(BARE_LINK, &filters);
    assert!(out.starts_with(BARE_LINK), "the link's own query is kept byte for byte: {out}");
    assert_eq!(
        names(&out),
        ["limit", "last_modified", "sort_token", "include_inactive", "include_deceased", "fields"],
        "{out}"
    );
    let q = query(&out);
    assert!(q.contains(&("fields".into(), "id,name".into())));
    assert!(q.contains(&("sort_token".into(), "AAAAAAAC+I4=".into())), "sort_token untouched");
    assert!(q.contains(&("last_modified".into(), "2016-05-05T17:59:31.1600745-04:00".into())));
    // Idempotent: a link that already has every filter is returned as is.
    assert_eq!(restore_filters(&out, &filters), out);
}

#[test]
fn restore_filters_never_duplicates_a_filter_the_link_has_with_another_value() {
    let link = format!("{BARE_LINK}&include_inactive=false");
    let out = restore_filters(&link, &[("include_inactive".into(), "true".into())]);
    assert_eq!(out, link, "the server's value is not overridden and not doubled");
    // Percent-encoded names count as the same name.
    let link = "https://x.example/a?limit=1&include%5Finactive=true";
    assert_eq!(restore_filters(link, &[("include_inactive".into(), "true".into())]), link);
}

#[test]
fn restore_filters_handles_links_without_a_query_and_with_a_fragment() {
    let f = [("include_inactive".to_owned(), "true".to_owned())];
    assert_eq!(restore_filters("https://x.example/a", &f), "https://x.example/a?include_inactive=true");
    assert_eq!(restore_filters("https://x.example/a?", &f), "https://x.example/a?include_inactive=true");
    assert_eq!(restore_filters("https://x.example/a?b=1#f", &f), "https://x.example/a?b=1&include_inactive=true#f");
    assert_eq!(restore_filters("https://x.example/a?b=1", &[]), "https://x.example/a?b=1");
}

#[test]
fn a_chain_restores_the_first_requests_filters_on_every_page() {
    let e = find("constituents").unwrap();
    let mut c = Cursor::resume(e, &base(), None, CursorOptions { page_size: Some(3), ..Default::default() }, T0);
    let first = c.request_url().unwrap();
    assert_eq!(names(first.as_str()), ["limit", "last_modified", "include_inactive", "include_deceased"]);
    let p =
        page(&format!(r#"{{"count":9,"next_link":"{BARE_LINK}","value":[{{"id":"1"}},{{"id":"2"}},{{"id":"3"}}]}}"#));
    assert_eq!(c.advance(&p, &keys(&p)), Step::More);
    let next = c.request_url().unwrap();
    assert!(next.as_str().starts_with(BARE_LINK), "{next}");
    assert_eq!(names(next.as_str()), ["limit", "last_modified", "sort_token", "include_inactive", "include_deceased"]);
    // The stored bookmark already carries them, so a resumed run sends them too.
    match c.bookmark() {
        Bookmark::Chain { next_link, .. } => assert_eq!(next_link, next.as_str()),
        other => panic!("{other:?}"),
    }
    // A bookmark stored without them (by an older skysync) gets them back on the request.
    let old = Bookmark::Chain { next_link: BARE_LINK.into(), high_water: None };
    let resumed = Cursor::resume(e, &base(), Some(old), CursorOptions::default(), T0);
    assert!(names(resumed.request_url().unwrap().as_str()).contains(&"include_deceased".to_owned()));
}

#[test]
fn an_id_scan_keeps_fields_id_and_include_flags_on_every_page() {
    let e = find("constituents").unwrap();
    let mut c = Cursor::id_scan(e, &base(), CursorOptions { page_size: Some(3), ..Default::default() }, T0);
    let p =
        page(&format!(r#"{{"count":9,"next_link":"{BARE_LINK}","value":[{{"id":"1"}},{{"id":"2"}},{{"id":"3"}}]}}"#));
    assert_eq!(c.advance(&p, &keys(&p)), Step::More);
    let q = query(c.request_url().unwrap().as_str());
    for want in [("fields", "id"), ("include_inactive", "true"), ("include_deceased", "true")] {
        assert!(q.contains(&(want.0.into(), want.1.into())), "{want:?} in {q:?}");
    }
    assert_eq!(q.iter().filter(|(k, _)| k == "limit").count(), 1);
}

#[test]
fn with_continuation_token_replaces_offset_and_an_old_token() {
    let req = "https://x.example/constituent/v1/actions?limit=2&offset=4&last_modified=1600-01-01T00%3a00%3a00Z&continuation_token=old";
    let out = with_continuation_token(req, "a+b/c=");
    assert_eq!(
        out,
        "https://x.example/constituent/v1/actions?limit=2&last_modified=1600-01-01T00%3a00%3a00Z&continuation_token=a%2Bb%2Fc%3D"
    );
    assert_eq!(query(&out).last().unwrap(), &("continuation_token".into(), "a+b/c=".into()));
}

#[test]
fn a_chain_follows_a_body_continuation_token_and_does_not_keep_it_across_runs() {
    let e = find("actions").unwrap();
    let opts = CursorOptions { page_size: Some(2), overlap: Duration::from_secs(1800) };
    let mut c = Cursor::resume(e, &base(), None, opts, T0);
    let first = c.request_url().unwrap().to_string();
    let p = page(
        r#"{"count":3,"continuation_token":"tok+1","value":[{"id":"1","date_modified":"2020-01-01T00:00:00Z"},{"id":"2","date_modified":"2020-01-02T00:00:00Z"}]}"#,
    );
    assert_eq!(c.advance(&p, &keys(&p)), Step::More);
    let next = c.request_url().unwrap().to_string();
    assert_eq!(next, format!("{first}&continuation_token=tok%2B1"));
    // The last page carries no cursor: the next run restarts from the newest change minus the overlap.
    let last = page(r#"{"count":3,"value":[{"id":"3","date_modified":"2020-01-03T00:00:00Z"}]}"#);
    assert_eq!(c.advance(&last, &keys(&last)), Step::Done);
    let q = query(c.request_url().unwrap().as_str());
    assert!(q.contains(&("last_modified".into(), "2020-01-02T23:30:00Z".into())), "{q:?}");
    assert!(!q.iter().any(|(k, _)| k == "continuation_token"));
}

#[test]
fn a_next_link_with_a_continuation_token_is_followed_but_not_stored_at_the_end() {
    let e = find("actions").unwrap();
    let opts = CursorOptions { page_size: Some(2), overlap: Duration::from_secs(1800) };
    let mut c = Cursor::resume(e, &base(), None, opts, T0);
    let link = "https://api.sky.blackbaud.com/constituent/v1/actions?limit=2&continuation_token=abc";
    let p = page(&format!(
        r#"{{"count":3,"next_link":"{link}","value":[{{"id":"1","date_modified":"2020-01-01T00:00:00Z"}},{{"id":"2","date_modified":"2020-01-02T00:00:00Z"}}]}}"#
    ));
    assert_eq!(c.advance(&p, &keys(&p)), Step::More);
    assert_eq!(c.request_url().unwrap().as_str(), link);
    let empty = page(&format!(r#"{{"count":3,"next_link":"{link}2","value":[]}}"#));
    assert_eq!(c.advance(&empty, &keys(&empty)), Step::Done);
    let stored = c.request_url().unwrap().to_string();
    assert!(!stored.contains("continuation_token") && stored.contains("last_modified=2020-01-01T23"), "{stored}");
}

#[test]
fn a_next_link_to_another_host_is_refused_with_the_page() {
    for link in [
        "https://evil.example/constituent/v1/constituents?sort_token=secret",
        "//evil.example/constituent/v1/constituents",
        "http://api.sky.blackbaud.com/constituent/v1/constituents",
        "https://api.sky.blackbaud.com:8443/constituent/v1/constituents",
    ] {
        let body = serde_json::json!({"count": 0, "value": [], "next_link": link}).to_string();
        let e = parse_page(&base(), &json(200, &body)).unwrap_err().to_string();
        assert!(e.contains("another host"), "{link}: {e}");
        assert!(!e.contains("secret"), "query values are hidden: {e}");
    }
    for (link, kept) in [
        (
            "https://api.sky.blackbaud.com/constituent/v1/constituents?sort_token=a",
            "https://api.sky.blackbaud.com/constituent/v1/constituents?sort_token=a",
        ),
        ("/constituent/v1/x", "https://api.sky.blackbaud.com/constituent/v1/x"),
    ] {
        let body = serde_json::json!({"count": 0, "value": [], "next_link": link}).to_string();
        assert_eq!(page(&body).next_link.as_deref(), Some(kept));
    }
}

#[test]
fn the_one_pass_reader_finds_what_parse_page_and_record_keys_find() {
    // Records laid out in every way JSON allows around their members: whitespace, escaped member
    // names (quotes and backslashes in them), nesting, numbers as ids, odd `date_modified`s.
    let body = concat!(
        "{ \"count\" : 5 , \"value\" : [\n",
        "  {\"id\":\"1\",\"date_modified\":\"2024-01-02T03:04:05Z\",\"x\":{\"id\":\"inner\"}} ,\n",
        "  { \"a\\\"b\\\\\" : [1, {\"}\": \"{\"}] , \"id\" : 22 , \"date_modified\" : null }\n",
        "  ,{\"\\u0069d\":\"3\",\"note\":\"\\\\\\\"\",\"date_modified\":\"2024-01-02T03:04:05.1234567-05:00\"\r\n}",
        "  ,{\"id\":\"caf\\u00e9\",\"t\":\"\\\"}\"}",
        "  ,{\"date_modified\":\"x\",\"id\":\"5\"\t}\n",
        "], \"next_link\": null }"
    );
    let (page, keys) = crate::sync::parse_keyed_page(&base(), &json(200, body), "id").unwrap().unwrap();
    let plain = parse_page(&base(), &json(200, body)).unwrap();
    assert_eq!(page.value, plain.value, "the same record texts");
    assert_eq!(keys, record_keys(&plain, "id").unwrap(), "the same keys");
    let texts: Vec<&str> = page.value.iter().map(|r| r.get()).collect();
    assert!(texts[1].starts_with("{ \"a\\\"b\\\\\"") && texts[1].ends_with("null }"), "{}", texts[1]);
    assert!(texts[2].ends_with("\r\n}"), "{}", texts[2]);
    for t in &texts {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t).unwrap();
    }
    let ids: Vec<&str> = keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["1", "22", "3", "café", "5"]);
    assert_eq!(keys[0].date_modified.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert_eq!(keys[1].date_modified, None);
    assert_eq!(page.count, Some(5));

    // A record without a usable key fails the page as a record problem, a body that is not an
    // envelope as a page problem.
    for bad in [
        r#"{"value":[{"id":"1"},{"id":null}]}"#,
        r#"{"value":[{}]}"#,
        r#"{"value":["x"]}"#,
        r#"{"value":[{"id":"1","id":"2"}]}"#,
    ] {
        assert!(crate::sync::parse_keyed_page(&base(), &json(200, bad), "id").unwrap().is_err(), "{bad}");
    }
    for bad in [r#"{"value":[{"id":"1"}"#, r#"[]"#, r#"{"value":[],"value":[]}"#] {
        assert!(crate::sync::parse_keyed_page(&base(), &json(200, bad), "id").is_err(), "{bad}");
    }
}
