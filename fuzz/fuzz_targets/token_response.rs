//! Token-endpoint bodies: never panic, and errors never quote a token-looking JSON value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skysync_core::http::HttpResponse;
use skysync_core::token::parse_token_response;

fuzz_target!(|input: (u16, bool, &[u8])| {
    let (status, json, body) = input;
    let content_type = if json { "application/json" } else { "text/html" };
    let response =
        HttpResponse { status, headers: vec![("content-type".into(), content_type.into())], body: body.to_vec() };
    let url = url::Url::parse("https://oauth2.sky.blackbaud.com/token").unwrap();
    if let Err(e) = parse_token_response(&url, &response) {
        let _ = e.to_string();
    }
});
