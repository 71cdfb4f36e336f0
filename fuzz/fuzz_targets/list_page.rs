//! SKY list envelopes and records: never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skysync_core::http::HttpResponse;
use skysync_core::sync::{parse_page, record_key};

fuzz_target!(|body: &[u8]| {
    let response =
        HttpResponse { status: 200, headers: vec![("content-type".into(), "application/json".into())], body: body.to_vec() };
    let url = url::Url::parse("https://api.sky.blackbaud.com/gift/v1/gifts").unwrap();
    if let Ok(page) = parse_page(&url, &response) {
        for record in &page.value {
            let _ = record_key(record);
        }
    }
});
