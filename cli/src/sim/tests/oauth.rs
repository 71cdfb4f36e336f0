//! `/oauth/authorize` and `/token`.

use super::*;

#[tokio::test]
async fn authorize_redirects_with_code_and_state_keeping_the_redirect_query() {
    let sim = sim(10).await;
    sim.register_redirect_uri("http://127.0.0.1:45678/cb?keep=1");
    let c = client();
    let resp = authorize(
        &sim,
        &c,
        &[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:45678/cb?keep=1"),
            ("response_type", "code"),
            ("state", "xyz"),
            ("environment_id", "p-env"),
        ],
    )
    .await;
    let loc = location(&resp);
    assert_eq!(loc.host_str(), Some("127.0.0.1"));
    assert_eq!(loc.port(), Some(45678));
    assert_eq!(loc.path(), "/cb");
    let q = query_map(&loc);
    assert_eq!(q["keep"], "1");
    assert_eq!(q["state"], "xyz");
    assert!(q["code"].len() >= 16);

    let no_type = authorize(&sim, &c, &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("state", "a")]).await;
    let q = query_map(&location(&no_type));
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request", "a"));
    let implicit =
        authorize(&sim, &c, &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "token")]).await;
    assert_eq!(query_map(&location(&implicit))["error"], "unsupported_response_type");
}

#[tokio::test]
async fn authorize_denied_consent_redirects_with_access_denied() {
    let sim = sim(10).await;
    sim.set_deny_consent(true);
    let c = client();
    let resp = authorize(
        &sim,
        &c,
        &[("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "code"), ("state", "s1")],
    )
    .await;
    let q = query_map(&location(&resp));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_message"], "The user chose not to give your app access to their Blackbaud data.");
    assert_eq!(q["state"], "s1");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn authorize_never_redirects_to_an_unregistered_uri_or_for_an_unknown_client() {
    let sim = sim(10).await;
    let c = client();
    for params in [
        vec![("client_id", CLIENT_ID), ("redirect_uri", "https://evil.example/cb"), ("response_type", "code")],
        vec![("client_id", CLIENT_ID), ("redirect_uri", "http://127.0.0.1.evil.example/cb"), ("response_type", "code")],
        vec![("client_id", "someone-else"), ("redirect_uri", REDIRECT), ("response_type", "code")],
        vec![("redirect_uri", REDIRECT), ("response_type", "code")],
    ] {
        let resp = authorize(&sim, &c, &params).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(resp.headers().get(header::LOCATION).is_none());
        assert!(resp.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    }
    // With loopback wildcards off, only the registered URIs work.
    let strict =
        Simulator::start(SimConfig { allow_any_loopback_redirect: false, ..SimConfig::default() }).await.unwrap();
    let other_port = [("client_id", CLIENT_ID), ("redirect_uri", "http://127.0.0.1:9/cb"), ("response_type", "code")];
    assert_eq!(authorize(&strict, &c, &other_port).await.status(), StatusCode::BAD_REQUEST);
    let registered = [("client_id", CLIENT_ID), ("redirect_uri", REDIRECT), ("response_type", "code")];
    assert_eq!(authorize(&strict, &c, &registered).await.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn code_exchange_with_basic_auth_returns_the_blackbaud_token_fields() {
    let sim = sim(10).await;
    let c = client();
    let body = tokens(&sim, &c).await;
    for k in [
        "access_token",
        "refresh_token",
        "environment_id",
        "environment_name",
        "legal_entity_id",
        "legal_entity_name",
        "user_id",
        "email",
        "family_name",
        "given_name",
        "scope",
    ] {
        assert!(!s(&body, k).is_empty(), "{k}");
    }
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["mode"], "Full");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token_expires_in"], 365 * 86_400);
    let again = tokens(&sim, &c).await;
    assert_ne!(s(&again, "access_token"), s(&body, "access_token"));
    let stats = sim.stats();
    assert_eq!((stats.token_calls, stats.token_authorization_code, stats.token_errors), (2, 2, 0));
}

#[tokio::test]
async fn code_exchange_with_body_credentials_and_client_errors() {
    let sim = sim(10).await;
    let c = client();
    let code1 = code(&sim, &c, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code1.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
    ];
    let resp = c.post(sim.token_url()).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let code2 = code(&sim, &c, None).await;
    let form = [("grant_type", "authorization_code"), ("code", code2.as_str()), ("redirect_uri", REDIRECT)];
    let wrong = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some("nope")).form(&form).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "The specified credentials were not valid."})
    );
    let missing = c.post(sim.token_url()).form(&form).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "invalid_client");

    let as_json = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).json(&json!({"grant_type": "x"}));
    let resp = as_json.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");

    let (status, body) = token_call(&sim, &c, &[("grant_type", "password")]).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "unsupported_grant_type"));
    // The code was not burnt by the failed client authentication.
    let (status, _) = exchange(&sim, &c, &code2, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn pkce_verifier_is_checked() {
    let sim = sim(10).await;
    let c = client();
    let verifier = "a".repeat(43) + "-._~verifier";
    let challenge = s256_challenge(&verifier);
    let code1 = code(&sim, &c, Some(&challenge)).await;
    let (status, body) = exchange(&sim, &c, &code1, Some("wrong-verifier")).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let code2 = code(&sim, &c, Some(&challenge)).await;
    let (status, body) = exchange(&sim, &c, &code2, None).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let code3 = code(&sim, &c, Some(&challenge)).await;
    let (status, _) = exchange(&sim, &c, &code3, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn public_client_may_exchange_with_only_a_verifier() {
    let sim = Simulator::start(SimConfig { public_client: true, ..SimConfig::default() }).await.unwrap();
    let c = client();
    let verifier = "v".repeat(64);
    let challenge = s256_challenge(&verifier);
    let code = code(&sim, &c, Some(&challenge)).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT_ID),
        ("code_verifier", verifier.as_str()),
    ];
    let resp = c.post(sim.token_url()).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn codes_are_single_use_bound_to_the_redirect_uri_and_expire_after_five_minutes() {
    let sim = sim(10).await;
    let c = client();
    let code1 = code(&sim, &c, None).await;
    assert_eq!(exchange(&sim, &c, &code1, None).await.0, StatusCode::OK);
    let (status, body) = exchange(&sim, &c, &code1, None).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));

    let code2 = code(&sim, &c, None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code2.as_str()),
        ("redirect_uri", "http://127.0.0.1:8321/other"),
    ];
    let (status, body) = token_call(&sim, &c, &form).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));

    let code3 = code(&sim, &c, None).await;
    sim.advance_clock(Duration::from_secs(4 * 60));
    assert_eq!(exchange(&sim, &c, &code3, None).await.0, StatusCode::OK);
    let code4 = code(&sim, &c, None).await;
    sim.advance_clock(Duration::from_secs(5 * 60 + 1));
    let (status, body) = exchange(&sim, &c, &code4, None).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
}

#[tokio::test]
async fn preserving_refresh_keeps_the_token_and_its_fixed_expiry() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let rt = s(&first, "refresh_token");
    sim.advance_clock(Duration::from_secs(10 * 86_400));
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s(&body, "refresh_token"), rt);
    assert_ne!(s(&body, "access_token"), s(&first, "access_token"));
    let left = body["refresh_token_expires_in"].as_i64().unwrap();
    let expected = 355 * 86_400;
    assert!((expected - 5..=expected).contains(&left), "{left}");
    // Still the same token, still usable.
    let (status, again) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&again, "refresh_token")), (StatusCode::OK, rt));
    // It does not slide: past the original 365 days it is dead.
    sim.advance_clock(Duration::from_secs(356 * 86_400));
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert_eq!(sim.stats().token_refresh_preserve, 2);
}

#[tokio::test]
async fn rotation_issues_a_new_token_and_kills_the_old_one() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let old = s(&first, "refresh_token");
    sim.advance_clock(Duration::from_secs(30 * 86_400));
    let (status, body) = refresh(&sim, &c, old, false).await;
    assert_eq!(status, StatusCode::OK);
    let new = s(&body, "refresh_token");
    assert_ne!(new, old);
    assert_eq!(body["refresh_token_expires_in"], 365 * 86_400);
    let (status, err) = refresh(&sim, &c, old, false).await;
    assert_eq!((status, s(&err, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    assert!(s(&err, "error_description").contains("invalid refresh token"));
    assert_eq!(refresh(&sim, &c, new, false).await.0, StatusCode::OK);
    assert_eq!(sim.stats().token_refresh_rotate, 2);
    assert_eq!(sim.live_refresh_tokens(), 1);
}

#[tokio::test]
async fn dropped_response_after_rotation_loses_the_new_token_and_the_old_one_is_dead() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let old = s(&first, "refresh_token");
    sim.drop_response_after_rotation(1);
    let form = [("grant_type", "refresh_token"), ("refresh_token", old)];
    let err = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await;
    let err = err.expect_err("the connection must drop without a response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let (status, body) = refresh(&sim, &c, old, false).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let stats = sim.stats();
    assert_eq!((stats.dropped, stats.token_refresh_rotate), (1, 1));
    assert_eq!(sim.live_refresh_tokens(), 1, "the rotated token exists, but nobody has it");
}

#[tokio::test]
async fn token_faults_and_revocation() {
    let sim = sim(10).await;
    let c = client();
    let first = tokens(&sim, &c).await;
    let rt = s(&first, "refresh_token");
    sim.fail_next_token(1, Fault::Status { code: 503 });
    sim.fail_next_token(1, Fault::Html { code: 502 });
    sim.fail_next_token(1, Fault::Drop);
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::SERVICE_UNAVAILABLE, "server_error"));
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let html = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await.unwrap();
    assert_eq!(html.status(), StatusCode::BAD_GATEWAY);
    assert!(html.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert_dropped(c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await);
    assert_eq!(refresh(&sim, &c, rt, true).await.0, StatusCode::OK, "faults are consumed");
    sim.revoke_refresh_tokens();
    let (status, body) = refresh(&sim, &c, rt, true).await;
    assert_eq!((status, s(&body, "error")), (StatusCode::BAD_REQUEST, "invalid_grant"));
    let stats = sim.stats();
    assert_eq!((stats.token_errors, stats.dropped, stats.server_errors), (4, 1, 2));
}
