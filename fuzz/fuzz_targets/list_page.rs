//! SKY list envelopes and records: never panic, and the sync's one-pass reader
//! (`parse_keyed_page`) agrees with reading the envelope and then each record's key
//! (`parse_page` + `record_keys`): the same records and keys, and a refusal where either refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skysync_core::http::HttpResponse;
use skysync_core::sync::{parse_keyed_page, parse_page, record_keys};

fuzz_target!(|body: &[u8]| {
    let response =
        HttpResponse { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: body.to_vec() };
    let url = url::Url::parse("https://api.sky.blackbaud.com/gift/v1/gifts").unwrap();
    let keyed = parse_keyed_page(&url, &response, "id");
    let Ok(page) = parse_page(&url, &response) else {
        // Refused too; a record that is not an object may be named before a later syntax error.
        assert!(!matches!(keyed, Ok(Ok(_))), "the one pass read a page parse_page refused");
        return;
    };
    let keys = record_keys(&page, "id");
    match keyed.expect("the one pass refused an envelope parse_page read") {
        Ok((one_pass, one_pass_keys)) => {
            assert_eq!(keys.as_ref().ok(), Some(&one_pass_keys), "keys differ");
            assert_eq!(page.value, one_pass.value, "records differ");
            assert_eq!((page.count, &page.next_link), (one_pass.count, &one_pass.next_link));
        }
        Err(_) => assert!(keys.is_err(), "the one pass refused a record record_keys read"),
    }
});
