use std::time::Duration;

use url::Url;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::fake::json;
use crate::catalog::find;
use crate::paging::{Bookmark, Cursor, CursorOptions, Step, parse_page, record_key};

fn base() -> Url {
    Url::parse("https://api.sky.blackbaud.com/").unwrap()
}

fn page(body: &str) -> crate::paging::Page {
    parse_page(&base(), &json(200, body)).unwrap()
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
    assert_eq!(c.advance(&p, Some("2021-01-01T00:00:00+00:00"), T0), Step::More);
    assert_eq!(c.request_url().unwrap().as_str(), link, "sort_token is resent exactly as received");
    let link2 = link.replace("AAAAAAAC%2bI4%3d", "AAAAAAAC%2bI5%3d");
    let empty = page(&format!(r#"{{"count":0,"next_link":"{link2}","value":[]}}"#));
    assert_eq!(c.advance(&empty, None, T0), Step::Done);
    let stored = c.bookmark().to_json();
    let back = Bookmark::from_json(&stored).unwrap();
    assert_eq!(back.high_water(), Some("2021-01-01T00:00:00+00:00"));
    // The next run resumes from the empty page's link.
    let resumed = Cursor::resume(e, &base(), Some(back), CursorOptions::default(), T0 + Duration::from_secs(86_400));
    assert_eq!(resumed.request_url().unwrap().as_str(), link2);
}

#[test]
fn events_page_by_offset_and_restart_with_overlap() {
    let e = find("events").unwrap();
    let opts = CursorOptions { page_size: Some(2), overlap: Duration::from_secs(1800) };
    let mut c = Cursor::resume(e, &base(), None, opts, T0);
    let u = c.request_url().unwrap();
    assert!(u.query().unwrap().contains("offset=0") && !u.query().unwrap().contains("last_modified"));
    let two = page(r#"{"count":3,"value":[{"id":"1"},{"id":"2"}]}"#);
    assert_eq!(c.advance(&two, None, T0), Step::More);
    assert!(c.request_url().unwrap().query().unwrap().contains("offset=2"));
    let one = page(r#"{"count":3,"value":[{"id":"3"}]}"#);
    assert_eq!(c.advance(&one, None, T0), Step::Done);
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
    let link = "https://api.example/gift/v1/gifts?limit=2&last_modified=x&sort_token=AAAAAAAC%2bI4%3d";
    let full = page(&format!(r#"{{"count":9,"value":[{{"id":"1"}},{{"id":"2"}}],"next_link":"{link}"}}"#));
    assert_eq!(g.advance(&full, None, T0), Step::More);
    assert_eq!(g.request_url().unwrap().as_str(), link);
    let empty = page(&format!(r#"{{"count":9,"value":[],"next_link":"{link}"}}"#));
    assert_eq!(g.advance(&empty, None, T0), Step::Done);
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
