//! Redirects pasted by people: never panic; a code is only returned with the right state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skysync_core::parse_callback;
use skysync_core::pkce::CsrfState;

fuzz_target!(|input: &str| {
    let state = CsrfState::new("expected-state");
    if let Ok(code) = parse_callback(input, &state, false) {
        assert!(input.contains("expected-state"), "a code without the state: {input:?}");
        assert!(!code.secret().is_empty());
    }
    let _ = parse_callback(input, &state, true);
});
