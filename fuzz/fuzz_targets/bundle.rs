//! Token bundles from files people hand over: never panic, and round-trip what parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skysync_core::TokenBundle;

fuzz_target!(|input: &[u8]| {
    if let Ok(bundle) = TokenBundle::parse(input) {
        let again = TokenBundle::parse(bundle.to_json().as_bytes()).expect("a parsed bundle re-parses");
        assert_eq!(again.client_id(), bundle.client_id());
    }
});
