use std::time::Duration;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use super::token_set::fresh_set;
use crate::bundle::{BundleContent, BundleError, TokenBundle};
use crate::secret::{AuthorizationCode, PkceVerifier};

fn code_bundle() -> TokenBundle {
    TokenBundle::new(
        BundleContent::AuthorizationCode {
            client_id: "app-id".into(),
            code: AuthorizationCode::new("c0de"),
            code_verifier: PkceVerifier::new("v".repeat(43)),
            redirect_uri: url::Url::parse("https://admin.example.org/consent/").unwrap(),
            obtained_at: T0,
        },
        T0,
    )
}

#[test]
fn both_kinds_round_trip() {
    let b = TokenBundle::new(BundleContent::RefreshToken { tokens: Box::new(fresh_set()) }, T0);
    let text = b.to_json();
    assert!(text.contains("\"format\": \"skysync-token-bundle\"") && text.contains("\"kind\": \"refresh_token\""));
    let back = TokenBundle::parse(text.as_bytes()).unwrap();
    match back.content {
        BundleContent::RefreshToken { tokens } => assert_eq!(tokens.refresh_token.secret(), "rt0"),
        _ => panic!("wrong kind"),
    }
    let c = TokenBundle::parse(code_bundle().to_json().as_bytes()).unwrap();
    assert!(matches!(c.content, BundleContent::AuthorizationCode { .. }));
    assert!(!format!("{c:?}").contains("c0de"));
}

#[test]
fn rejects_bad_bundles_clearly() {
    assert!(matches!(TokenBundle::parse(b"{nope"), Err(BundleError::Malformed(_))));
    assert!(matches!(TokenBundle::parse(b"[]"), Err(BundleError::Malformed(_))));
    assert!(matches!(TokenBundle::parse(br#"{"format":"other","version":1}"#), Err(BundleError::Malformed(_))));
    let future = code_bundle().to_json().replace("\"version\": 1", "\"version\": 2");
    assert_eq!(TokenBundle::parse(future.as_bytes()).unwrap_err(), BundleError::UnsupportedVersion(2));
    let missing = code_bundle().to_json().replace("\"code\": \"c0de\",", "");
    let e = TokenBundle::parse(missing.as_bytes()).unwrap_err();
    assert!(matches!(e, BundleError::Malformed(_)), "{e:?}");
    let wrong_type = code_bundle().to_json().replace("\"code\": \"c0de\"", "\"code\": 5");
    let e = TokenBundle::parse(wrong_type.as_bytes()).unwrap_err();
    assert!(!e.to_string().contains("c0de"));
    let big = vec![b' '; 65 * 1024];
    assert_eq!(TokenBundle::parse(&big).unwrap_err(), BundleError::TooLarge);
}

#[test]
fn validates_client_and_code_age() {
    let b = code_bundle();
    assert!(b.validate("app-id", T0 + Duration::from_secs(299)).is_ok());
    assert!(matches!(b.validate("app-id", T0 + Duration::from_secs(301)), Err(BundleError::CodeExpired { .. })));
    assert!(matches!(b.validate("other", T0), Err(BundleError::WrongClient { .. })));
}
