use base64::Engine;
use url::Url;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::fake::json;
use crate::authorize::{CallbackError, parse_callback, start_authorization};
use crate::config::{ClientAuth, Endpoints, OAuthConfig};
use crate::host::testing::SeededEntropy;
use crate::http::{HttpResponse, Method};
use crate::pkce::CsrfState;
use crate::secret::{AuthorizationCode, ClientSecret, PkceVerifier, RefreshToken};
use crate::token::{
    Identity, RefreshMode, TokenError, authorization_code_request, parse_token_response, refresh_request,
};

pub fn config(auth: ClientAuth) -> OAuthConfig {
    let mut c = OAuthConfig::new(
        "app-id",
        Some(ClientSecret::new("s3cr:et")),
        Url::parse("http://localhost:8321/callback").unwrap(),
    );
    c.client_auth = auth;
    c
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn has(form: &[(String, String)], k: &str, v: &str) -> bool {
    form.iter().any(|(a, b)| a == k && b == v)
}

#[test]
fn authorization_url_carries_every_parameter() {
    let mut c = config(ClientAuth::Basic);
    c.environment_id = Some("p-env".into());
    let p = start_authorization(&c, &SeededEntropy::new(3));
    assert!(p.url.as_str().starts_with("https://app.blackbaud.com/oauth/authorize?"));
    let q: Vec<(String, String)> = p.url.query_pairs().into_owned().collect();
    assert!(has(&q, "client_id", "app-id"));
    assert!(has(&q, "response_type", "code"));
    assert!(has(&q, "redirect_uri", "http://localhost:8321/callback"));
    assert!(has(&q, "state", p.state.as_str()));
    assert!(has(&q, "code_challenge", &p.verifier.challenge()));
    assert!(has(&q, "code_challenge_method", "S256"));
    assert!(has(&q, "environment_id", "p-env"));
    assert!(!p.url.as_str().contains(p.verifier.secret()), "the verifier never leaves in the URL");
}

#[test]
fn endpoints_are_configurable() {
    let c = config(ClientAuth::Basic).with_endpoints(Endpoints {
        authorize: Url::parse("http://127.0.0.1:9/oauth/authorize").unwrap(),
        token: Url::parse("http://127.0.0.1:9/token").unwrap(),
        api: Url::parse("http://127.0.0.1:9/").unwrap(),
    });
    let p = start_authorization(&c, &SeededEntropy::new(1));
    assert_eq!(p.url.host_str(), Some("127.0.0.1"));
    let req = refresh_request(&c, &RefreshToken::new("r"), RefreshMode::Preserve);
    assert_eq!(req.url.as_str(), "http://127.0.0.1:9/token");
}

#[test]
fn callback_yields_code_and_checks_state() {
    let state = CsrfState::new("st4te");
    let code = parse_callback("http://localhost:8321/callback?code=abc123&state=st4te", &state, false).unwrap();
    assert_eq!(code.secret(), "abc123");
    assert_eq!(parse_callback("?code=x&state=st4te", &state, false).unwrap().secret(), "x");
    assert_eq!(parse_callback("code=y&state=st4te", &state, false).unwrap().secret(), "y");
    assert_eq!(
        parse_callback("http://localhost/cb?code=abc&state=other", &state, false).unwrap_err(),
        CallbackError::StateMismatch
    );
    assert_eq!(
        parse_callback("http://localhost/cb?code=abc", &state, false).unwrap_err(),
        CallbackError::StateMismatch
    );
    assert_eq!(
        parse_callback("http://localhost/cb?state=st4te", &state, false).unwrap_err(),
        CallbackError::MissingCode
    );
    assert_eq!(parse_callback("bare-code", &state, true).unwrap().secret(), "bare-code");
    assert!(matches!(parse_callback("bare-code", &state, false), Err(CallbackError::Unparseable(_))));
    assert!(matches!(parse_callback("not a code!", &state, true), Err(CallbackError::Unparseable(_))));
}

#[test]
fn callback_reports_denial_with_blackbaud_message() {
    let state = CsrfState::new("s");
    let err = parse_callback(
        "https://x/cb?error=access_denied&error_message=The+user+chose+not+to+give+your+app+access&state=s",
        &state,
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        CallbackError::Denied {
            error: "access_denied".into(),
            message: Some("The user chose not to give your app access".into())
        }
    );
    assert!(err.to_string().contains("chose not to give"));
}

#[test]
fn code_exchange_request_with_basic_auth() {
    let c = config(ClientAuth::Basic);
    let v = PkceVerifier::new("v".repeat(43));
    let req = authorization_code_request(&c, &AuthorizationCode::new("the-code"), Some(&v), &c.redirect_uri);
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url.as_str(), "https://oauth2.sky.blackbaud.com/token");
    assert!(!req.follow_redirects);
    assert_eq!(req.header_value("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(basic_pair(&req), "app-id:s3cr:et", "the secret as is, as Blackbaud's samples send it");
    let f = form(&req.body);
    assert!(has(&f, "grant_type", "authorization_code"));
    assert!(has(&f, "code", "the-code"));
    assert!(has(&f, "redirect_uri", "http://localhost:8321/callback"));
    assert!(has(&f, "code_verifier", &"v".repeat(43)));
    assert!(!f.iter().any(|(k, _)| k == "client_secret"));
    assert!(!format!("{req:?}").contains("the-code"), "Debug shows no body");
}

fn basic_pair(req: &crate::http::HttpRequest) -> String {
    let basic = req.header_value("authorization").unwrap().strip_prefix("Basic ").unwrap();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).unwrap()).unwrap()
}

#[test]
fn basic_sends_a_blackbaud_shaped_secret_as_is_and_the_rfc_form_is_a_choice() {
    let mut c = config(ClientAuth::Basic);
    c.client_id = "app id+1".into();
    c.client_secret = Some(ClientSecret::new("q1W+e/3R=="));
    let req = refresh_request(&c, &RefreshToken::new("rt"), RefreshMode::Preserve);
    assert_eq!(basic_pair(&req), "app id+1:q1W+e/3R==");
    assert!(!form(&req.body).iter().any(|(k, _)| k == "client_secret" || k == "client_id"));
    c.client_auth = ClientAuth::BasicFormEncoded;
    let req = refresh_request(&c, &RefreshToken::new("rt"), RefreshMode::Preserve);
    assert_eq!(basic_pair(&req), "app+id%2B1:q1W%2Be%2F3R%3D%3D", "RFC 6749 2.3.1 form-encodes each part");
    // Without a secret, neither form sends a header.
    c.client_secret = None;
    let req = refresh_request(&c, &RefreshToken::new("rt"), RefreshMode::Preserve);
    assert!(req.header_value("authorization").is_none());
    assert!(has(&form(&req.body), "client_id", "app id+1"));
}

#[test]
fn client_auth_spellings_round_trip() {
    for auth in ClientAuth::ALL {
        assert_eq!(ClientAuth::parse(auth.as_str()), Some(auth));
        assert_eq!(serde_json::to_string(&auth).unwrap(), format!("\"{}\"", auth.as_str()));
        assert_eq!(serde_json::from_str::<ClientAuth>(&format!("\"{}\"", auth.as_str())).unwrap(), auth);
    }
    assert_eq!(ClientAuth::parse(" Basic-Form-Encoded "), Some(ClientAuth::BasicFormEncoded));
    assert_eq!(ClientAuth::parse("basic_form_encoded"), None);
    assert_eq!(ClientAuth::default(), ClientAuth::Basic);
}

#[test]
fn client_auth_variants() {
    let body = config(ClientAuth::Body);
    let req = refresh_request(&body, &RefreshToken::new("rt"), RefreshMode::Rotate);
    let f = form(&req.body);
    assert!(has(&f, "client_id", "app-id") && has(&f, "client_secret", "s3cr:et"));
    assert!(req.header_value("authorization").is_none());
    assert!(!f.iter().any(|(k, _)| k == "preserve_refresh_token"));

    let mut public = config(ClientAuth::None);
    public.client_secret = None;
    let req = refresh_request(&public, &RefreshToken::new("rt"), RefreshMode::Preserve);
    let f = form(&req.body);
    assert!(has(&f, "client_id", "app-id"));
    assert!(has(&f, "preserve_refresh_token", "true"));
    assert!(has(&f, "grant_type", "refresh_token") && has(&f, "refresh_token", "rt"));
    assert!(!f.iter().any(|(k, _)| k == "client_secret"));
    assert!(req.header_value("authorization").is_none());
}

fn token_url() -> Url {
    Url::parse("https://oauth2.sky.blackbaud.com/token").unwrap()
}

const FULL: &str = r#"{"access_token":"at","token_type":"bearer","expires_in":"3600","refresh_token":"rt",
 "refresh_token_expires_in":31536000,"environment_id":"p-env","environment_name":"Sandbox",
 "legal_entity_id":"p-le","legal_entity_name":"LE","user_id":"u1","email":"a@b.org","given_name":"Ada",
 "family_name":"Lovelace","mode":"Full","scope":"rnxt.r","tenant_id":"legacy","something_new":{"x":1}}"#;

#[test]
fn token_response_keeps_every_blackbaud_field_and_is_lenient() {
    let r = parse_token_response(&token_url(), &json(200, FULL)).unwrap();
    assert_eq!(r.access_token.secret(), "at");
    assert_eq!(r.expires_in, Some(std::time::Duration::from_secs(3600)), "string expires_in accepted");
    assert_eq!(r.refresh_token.unwrap().secret(), "rt");
    assert_eq!(r.refresh_token_expires_in, Some(std::time::Duration::from_secs(31_536_000)));
    let id = r.identity;
    assert_eq!(id.environment_id.as_deref(), Some("p-env"));
    assert_eq!(id.environment_name.as_deref(), Some("Sandbox"));
    assert_eq!(id.legal_entity_id.as_deref(), Some("p-le"));
    assert_eq!(id.legal_entity_name.as_deref(), Some("LE"));
    assert_eq!(id.user_id.as_deref(), Some("u1"));
    assert_eq!(id.mode.as_deref(), Some("Full"));
    assert_eq!(id.scope.as_deref(), Some("rnxt.r"));
    assert_eq!(id.user_display(), "Ada Lovelace <a@b.org>");
    let minimal = parse_token_response(&token_url(), &json(200, r#"{"access_token":"a"}"#)).unwrap();
    assert!(minimal.refresh_token.is_none() && minimal.expires_in.is_none());
}

#[test]
fn blank_identity_fields_count_as_absent() {
    let body = r#"{"access_token":"a","email":"","given_name":" ","family_name":"","user_id":"",
        "environment_id":"p-env","environment_name":""}"#;
    let id = parse_token_response(&token_url(), &json(200, body)).unwrap().identity;
    assert_eq!(id.email, None);
    assert_eq!(id.user_display(), "unknown user");
    assert_eq!(id.environment_display(), "p-env");
    // A later blank response does not erase what an earlier one said.
    let mut known = Identity { email: Some("a@b.org".into()), ..Identity::default() };
    known.merge(id);
    assert_eq!(known.user_display(), "a@b.org");
}

#[test]
fn token_response_strict_where_it_matters() {
    let url = token_url();
    assert!(matches!(
        parse_token_response(&url, &json(200, r#"{"token_type":"bearer"}"#)),
        Err(TokenError::Malformed { .. })
    ));
    // An error in a 200 is an error.
    let e =
        parse_token_response(&url, &json(200, r#"{"error":"invalid_grant","error_description":"used"}"#)).unwrap_err();
    assert!(matches!(e, TokenError::ConsentRequired { .. }));
    assert!(e.to_string().contains("consent again"));
    let e = parse_token_response(&url, &json(400, r#"{"error":"invalid_grant"}"#)).unwrap_err();
    match e {
        TokenError::ConsentRequired { body } => assert_eq!(body.error, "invalid_grant"),
        other => panic!("{other:?}"),
    }
    let e = parse_token_response(
        &url,
        &json(401, r#"{"error":"invalid_client","error_description":"The specified credentials were not valid."}"#),
    )
    .unwrap_err();
    assert!(matches!(e, TokenError::InvalidClient { .. }));
    let e = parse_token_response(&url, &json(400, r#"{"error":"unsupported_grant_type"}"#)).unwrap_err();
    assert!(matches!(e, TokenError::Server { status: 400, .. }));
    let e = parse_token_response(&url, &json(200, r#"{"access_token":"a","token_type":"mac"}"#)).unwrap_err();
    assert!(matches!(e, TokenError::Malformed { .. }));
    let e = parse_token_response(&url, &json(200, r#"{"access_token":"a","expires_in":"soon"}"#)).unwrap_err();
    assert!(matches!(e, TokenError::Malformed { .. }));
}

#[test]
fn token_response_rejects_html_wrong_types_and_bad_json() {
    let url = token_url();
    let html = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/html".into())],
        body: b"<html><title>Sign in</title></html>".to_vec(),
    };
    let e = parse_token_response(&url, &html).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("text/html") && msg.contains("Sign in"), "{msg}");
    // JSON that is not a token under the wrong type: an error that quotes none of the body.
    let plain = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: br#"{"access_token":"", "note":"secretish-value"}"#.to_vec(),
    };
    let e = parse_token_response(&url, &plain).unwrap_err();
    assert!(e.to_string().contains("application/json"), "{e}");
    assert!(!e.to_string().contains("secretish"), "{e}");
    // A complete token response under the wrong type is kept (a rotated refresh token must not
    // be dropped over a header), and never quoted.
    let tokens = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: br#"{"access_token":"at-value","refresh_token":"rt-value","expires_in":3600}"#.to_vec(),
    };
    let r = parse_token_response(&url, &tokens).unwrap();
    assert_eq!(r.refresh_token.unwrap().secret(), "rt-value");
    let mut non_json_type = tokens.clone();
    non_json_type.status = 400;
    let e = parse_token_response(&url, &non_json_type).unwrap_err();
    assert!(!e.to_string().contains("at-value") && !e.to_string().contains("rt-value"), "{e}");
    let e = parse_token_response(&url, &json(200, "{not json")).unwrap_err();
    assert!(e.to_string().contains("not valid JSON"));
    let e = parse_token_response(&url, &json(502, "")).unwrap_err();
    assert!(e.is_transient());
    let e = parse_token_response(&url, &json(429, "")).unwrap_err();
    assert!(e.is_transient(), "a throttled token endpoint is retried");
    let e = parse_token_response(&url, &json(404, "")).unwrap_err();
    assert!(!e.is_transient());
}

#[test]
fn secrets_never_show_in_debug_of_responses() {
    let r = parse_token_response(&token_url(), &json(200, FULL)).unwrap();
    let shown = format!("{r:?}");
    assert!(!shown.contains("\"at\"") && !shown.contains("\"rt\""));
    assert!(!format!("{:?}", crate::secret::ClientSecret::new("s3cr:et")).contains("s3cr"));
    assert!(!format!("{:?}", config(ClientAuth::Basic)).contains("s3cr"));
}
