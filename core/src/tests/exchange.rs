//! The code exchange over a scripted transport, and the rule for replacing stored tokens.

use std::time::Duration;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use url::Url;

use super::T0;
use super::fake::{Answer, FakeHttp};
use super::oauth::config;
use super::token_set::fresh_set;
use crate::config::ClientAuth;
use crate::exchange::{ExchangeError, exchange_code};
use crate::host::testing::FixedClock;
use crate::http::TransportError;
use crate::secret::{AuthorizationCode, PkceVerifier};
use crate::token::TokenError;
use crate::token_set::TokenSet;

const DAY: Duration = Duration::from_secs(86_400);

fn exchange(answer: Answer) -> (Result<TokenSet, ExchangeError>, std::sync::Arc<FakeHttp>) {
    let http = FakeHttp::new(vec![answer]);
    let clock = FixedClock::new(T0);
    let redirect = Url::parse("http://localhost:8321/callback").unwrap();
    let verifier = PkceVerifier::new("v".repeat(43));
    let result = futures::executor::block_on(exchange_code(
        http.as_ref(),
        &clock,
        &config(ClientAuth::Basic),
        &AuthorizationCode::new("the-code"),
        Some(&verifier),
        &redirect,
    ));
    (result, http)
}

#[test]
fn a_code_becomes_a_token_set_at_the_clocks_now() {
    let (tokens, http) = exchange(Answer::Json(
        200,
        r#"{"access_token":"at","expires_in":3600,"refresh_token":"rt","refresh_token_expires_in":31536000,"environment_id":"p-1"}"#,
    ));
    let tokens = tokens.unwrap();
    assert_eq!((tokens.client_id.as_str(), tokens.consented_at), ("app-id", T0));
    assert_eq!(tokens.identity.environment_id.as_deref(), Some("p-1"));
    let form = http.form(0);
    for (key, value) in [("grant_type", "authorization_code"), ("code", "the-code"), ("code_verifier", &"v".repeat(43))]
    {
        assert!(form.iter().any(|(k, v)| k == key && v == value), "{key} missing from {form:?}");
    }
}

#[test]
fn each_failure_says_which_it_was() {
    let (r, _) = exchange(Answer::Fail(TransportError::Network { host: "h".into(), message: "reset".into() }));
    assert!(matches!(r, Err(ExchangeError::Unreachable(_))));
    let (r, _) = exchange(Answer::Json(400, r#"{"error":"invalid_grant"}"#));
    assert!(matches!(r, Err(ExchangeError::Token(TokenError::ConsentRequired { .. }))));
    let (r, _) = exchange(Answer::Json(200, r#"{"access_token":"at","expires_in":3600}"#));
    assert!(matches!(r, Err(ExchangeError::NoRefreshToken(_))));
}

fn for_environment(id: Option<&str>) -> TokenSet {
    let mut t = fresh_set();
    t.identity.environment_id = id.map(str::to_owned);
    t
}

#[test]
fn working_tokens_of_another_environment_are_not_replaced_unasked() {
    let stored = for_environment(Some("p-1"));
    assert!(!stored.may_replace(&for_environment(Some("p-2")), T0));
    assert!(stored.may_replace(&for_environment(Some("p-1")), T0), "same environment");
    assert!(stored.may_replace(&for_environment(None), T0), "unknown environment");
    assert!(for_environment(None).may_replace(&stored, T0));
    let expired_at = stored.refresh_expires_at;
    assert!(stored.may_replace(&for_environment(Some("p-2")), expired_at), "dead tokens");
    assert!(!stored.may_replace(&for_environment(Some("p-2")), expired_at - DAY));
}
