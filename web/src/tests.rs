use skysync_core::api::ApiError;
use skysync_core::authorize::CallbackError;
use skysync_core::bundle::{BundleContent, TokenBundle};
use skysync_core::config::ClientAuth;
use skysync_core::secret::{AccessToken, AuthorizationCode, PkceVerifier, RefreshToken};
use skysync_core::session::SessionError;
use skysync_core::store::StoreError;
use skysync_core::token::{Identity, OAuthErrorBody, TokenError};
use skysync_core::token_set::TokenSet;
use time::macros::datetime;
use url::Url;

use crate::consent::{ReceivedCode, TokenInfo, bundle_for, is_redirect};
use crate::error::{ErrorKind, Failure};
use crate::sync_config::{SyncConfig, plan_failure};
use crate::web_config::WebConfig;

const T0: time::OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

fn tokens() -> TokenSet {
    TokenSet {
        client_id: "app".into(),
        access_token: Some(AccessToken::new("at-secret")),
        access_expires_at: Some(T0 + time::Duration::hours(1)),
        refresh_token: RefreshToken::new("rt-secret"),
        refresh_expires_at: T0 + time::Duration::days(365),
        refresh_obtained_at: T0,
        consented_at: T0,
        last_refreshed_at: None,
        last_rotated_at: None,
        identity: Identity {
            environment_id: Some("p-env".into()),
            environment_name: Some("Sandbox".into()),
            email: Some("a@example.org".into()),
            given_name: Some("Ada".into()),
            ..Identity::default()
        },
        rotation_started_at: None,
        grant_refused_at: None,
    }
}

#[test]
fn error_names_are_unique_stable_and_declared_in_typescript() {
    let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len());
    assert!(names.iter().all(|n| n.ends_with("Error")));
    // The TypeScript union is exactly the set of names, and each is explained above it and in
    // the README.
    let ts = include_str!("sky_auth.rs");
    let start = ts.find("export type SkyErrorName =").expect("the SkyErrorName type");
    let union = &ts[start..start + ts[start..].find(';').unwrap()];
    let mut declared: Vec<&str> = union.split('"').skip(1).step_by(2).collect();
    declared.sort_unstable();
    assert_eq!(declared, sorted, "SkyErrorName in the d.ts vs ErrorKind::ALL");
    let docs = &ts[ts[..start].rfind("/**").unwrap()..start];
    let readme = include_str!("../README.md");
    for n in &names {
        assert!(docs.contains(&format!(" - {n}: ")), "{n} is not explained in the d.ts");
        assert!(readme.contains(&format!("`{n}`")), "{n} missing from web/README.md");
    }
}

#[test]
fn core_errors_map_to_their_kinds() {
    let body = OAuthErrorBody { error: "invalid_grant".into(), error_description: None, error_uri: None };
    let cases: Vec<(Failure, ErrorKind)> = vec![
        (CallbackError::StateMismatch.into(), ErrorKind::StateMismatch),
        (CallbackError::Denied { error: "access_denied".into(), message: None }.into(), ErrorKind::ConsentDenied),
        (CallbackError::MissingCode.into(), ErrorKind::InvalidRedirect),
        (TokenError::ConsentRequired { body: body.clone() }.into(), ErrorKind::ConsentRequired),
        (TokenError::InvalidClient { body: body.clone() }.into(), ErrorKind::InvalidClient),
        (TokenError::Unavailable { status: 503, excerpt: String::new() }.into(), ErrorKind::TokenEndpoint),
        (SessionError::NotLoggedIn.into(), ErrorKind::NotLoggedIn),
        (SessionError::RefreshTokenExpired { expired_at: String::new() }.into(), ErrorKind::ConsentRequired),
        (
            ApiError::Session(SessionError::Token(TokenError::ConsentRequired { body })).into(),
            ErrorKind::ConsentRequired,
        ),
        (ApiError::SubscriptionKey { message: "bad key".into() }.into(), ErrorKind::SubscriptionKey),
        (ApiError::QuotaExhausted { retry_after: None, message: String::new() }.into(), ErrorKind::QuotaExhausted),
        (ApiError::RateLimited { attempts: 3 }.into(), ErrorKind::RateLimited),
        (ApiError::ForeignUrl("x".into()).into(), ErrorKind::Config),
        (SessionError::RotationLost { started_at: String::new() }.into(), ErrorKind::RotationLost),
        (
            SessionError::RotationUnsaved {
                error: StoreError::Io("full".into()),
                rescue_error: StoreError::Io("no".into()),
            }
            .into(),
            ErrorKind::RotationLost,
        ),
        (
            SessionError::StoreNotWritable(StoreError::Conflict { expected: Some(1), found: None }).into(),
            ErrorKind::Storage,
        ),
        (SessionError::GrantRefused { refused_at: String::new() }.into(), ErrorKind::ConsentRequired),
    ];
    for (failure, kind) in cases {
        assert_eq!(failure.kind, kind, "{failure}");
        assert!(!failure.message.is_empty());
    }
}

#[test]
fn config_uses_blackbaud_defaults_and_treats_empty_strings_as_absent() {
    let c = WebConfig::from_json(
        r#"{"clientId":" app ","redirectUri":"http://localhost:8321/callback","clientSecret":"","tokenUrl":""}"#,
    )
    .unwrap();
    let o = c.oauth().unwrap();
    assert_eq!(o.client_id, "app");
    assert!(o.client_secret.is_none());
    assert_eq!(o.client_auth, ClientAuth::None);
    assert_eq!(o.endpoints.token.as_str(), "https://oauth2.sky.blackbaud.com/token");
    assert!(c.api().unwrap().is_none());
    assert_eq!(c.storage_prefix(), "skysync.");

    let c = WebConfig::from_json(
        r#"{"clientId":"app","clientSecret":"s","redirectUri":"http://127.0.0.1:1/cb","apiUrl":"http://127.0.0.1:2/","subscriptionKey":"k","environmentId":"p-1"}"#,
    )
    .unwrap();
    let o = c.oauth().unwrap();
    assert_eq!(o.client_auth, ClientAuth::Basic);
    assert_eq!(o.environment_id.as_deref(), Some("p-1"));
    assert_eq!(c.api().unwrap().unwrap().base.as_str(), "http://127.0.0.1:2/");
    assert!(!format!("{c:?}").contains("\"s\""));
}

#[test]
fn config_errors_are_config_errors() {
    for bad in [
        r#"{"clientId":"","redirectUri":"http://localhost/"}"#,
        r#"{"clientId":"a","redirectUri":"not a url"}"#,
        r#"{"clientId":"a","redirectUri":"http://localhost/#frag"}"#,
        r#"{"clientId":"a","redirectUri":"http://localhost/","tokenUrl":"ftp://x/"}"#,
        r#"{"clientId":"a","redirectUri":"http://localhost/","clientAuth":"basic"}"#,
    ] {
        let e = WebConfig::from_json(bad).and_then(|c| c.oauth()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config, "{bad}");
    }
    let typo = WebConfig::from_json(r#"{"clientID":"a","redirectUri":"http://localhost/"}"#).unwrap_err();
    assert_eq!(typo.name(), "ConfigError");
}

#[test]
fn client_auth_takes_the_same_values_as_the_cli() {
    for (value, auth) in
        [("basic", ClientAuth::Basic), ("basic-form-encoded", ClientAuth::BasicFormEncoded), ("body", ClientAuth::Body)]
    {
        let json = format!(
            r#"{{"clientId":"a","clientSecret":"s+/=","redirectUri":"http://localhost/","clientAuth":"{value}"}}"#
        );
        assert_eq!(WebConfig::from_json(&json).unwrap().oauth().unwrap().client_auth, auth, "{value}");
        assert_eq!(ClientAuth::parse(value), Some(auth));
    }
    let no_secret = r#"{"clientId":"a","redirectUri":"http://localhost/","clientAuth":"basic-form-encoded"}"#;
    let e = WebConfig::from_json(no_secret).unwrap().oauth().unwrap_err();
    assert!(e.message.contains("basic-form-encoded"), "{}", e.message);
    assert!(
        WebConfig::from_json(r#"{"clientId":"a","redirectUri":"http://localhost/","clientAuth":"basic_form_encoded"}"#)
            .is_err()
    );
}

#[test]
fn token_info_hides_secrets_unless_asked() {
    let t = tokens();
    let info = serde_json::to_string(&TokenInfo::of(&t, false)).unwrap();
    assert!(!info.contains("secret"), "{info}");
    assert!(info.contains("\"environment\":\"Sandbox (p-env)\""));
    assert!(info.contains("\"refreshExpiresAt\":\"2027-01-01T12:00:00Z\""));
    let with = serde_json::to_string(&TokenInfo::of(&t, true)).unwrap();
    assert!(with.contains("rt-secret") && with.contains("at-secret"));
}

#[test]
fn bundle_prefers_tokens_then_code_and_round_trips() {
    let code = ReceivedCode {
        client_id: "app".into(),
        code: AuthorizationCode::new("the-code"),
        verifier: PkceVerifier::new("v".repeat(43)),
        redirect_uri: Url::parse("http://localhost:8321/callback").unwrap(),
        obtained_at: T0,
    };
    assert_eq!(code.expires_at(), T0 + time::Duration::minutes(5));
    let b = bundle_for(None, Some(&code), T0).unwrap();
    let parsed = TokenBundle::parse(b.to_json().as_bytes()).unwrap();
    assert!(matches!(parsed.content, BundleContent::AuthorizationCode { .. }));
    parsed.validate("app", T0 + time::Duration::minutes(4)).unwrap();

    let b = bundle_for(Some(tokens()), Some(&code), T0).unwrap();
    let parsed = TokenBundle::parse(b.to_json().as_bytes()).unwrap();
    assert!(matches!(parsed.content, BundleContent::RefreshToken { .. }));

    assert_eq!(bundle_for(None, None, T0).unwrap_err().kind, ErrorKind::NotLoggedIn);
}

#[test]
fn redirects_are_recognised() {
    assert!(is_redirect("http://localhost:8321/callback?code=c&state=s"));
    assert!(is_redirect("http://localhost:8321/callback?error=access_denied&state=s"));
    assert!(!is_redirect("http://localhost:8321/callback"));
    assert!(!is_redirect("http://localhost:8321/callback?code=c"));
    assert!(!is_redirect("garbage"));
}

#[test]
fn a_lost_rotation_in_the_apps_store_points_at_export_bundle_not_a_rescue_file() {
    let unsaved = SessionError::RotationUnsaved {
        error: StoreError::Io("the app's token store failed to save: Error: disk full".into()),
        rescue_error: StoreError::Io("no second place".into()),
    };
    let failure = Failure::from(ApiError::Session(unsaved));
    assert_eq!(failure.name(), "RotationLostError");
    assert!(failure.message.contains("disk full") && failure.message.contains("exportBundle()"), "{failure}");
    assert!(!failure.message.contains("rescue file") && !failure.message.contains("directory"), "{failure}");
}

#[test]
fn sync_options_name_a_catalog_entity_and_a_page_size_it_accepts() {
    let c = SyncConfig::from_json(r#"{"entity":"constituents"}"#).unwrap();
    assert_eq!(c.entity.name, "constituents");
    assert_eq!(c.options.page_size, None);
    assert!(!c.options.full && !c.options.reconcile && c.options.reconcile_every.is_none(), "incremental only");
    assert_eq!(SyncConfig::from_json(r#"{"entity":"gifts","pageSize":50}"#).unwrap().options.page_size, Some(50));
    for bad in [
        r#"{"entity":"nope"}"#,
        r#"{"entity":"gifts","pageSize":0}"#,
        r#"{"entity":"gifts","pageSize":5001}"#,
        r#"{"entity":"gifts","full":true}"#,
        r#"{}"#,
    ] {
        let e = SyncConfig::from_json(bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config, "{bad}: {e}");
    }
}

#[test]
fn a_bookmark_the_planner_cannot_read_is_a_bookmark_error() {
    let entity = skysync_core::sync::find("gifts").unwrap();
    let stored = skysync_core::sync::StoredState { bookmark: Some("not a bookmark".into()), ..Default::default() };
    let base = Url::parse("https://api.sky.blackbaud.com/").unwrap();
    let e = skysync_core::sync::EntityPlan::new(entity, &base, Some(&stored), &Default::default(), T0).unwrap_err();
    let failure = plan_failure(e);
    assert_eq!(failure.name(), "BookmarkError");
    assert!(failure.message.contains("pass back the bookmark"), "{failure}");
}
