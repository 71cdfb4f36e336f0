//! CORS, the control API, large tables and shutdown.

use super::*;

#[tokio::test]
async fn cors_preflight_and_token_cors_knob() {
    let sim = sim(10).await;
    let c = client();
    for path in ["token", "constituent/v1/constituents"] {
        let resp = c
            .request(reqwest::Method::OPTIONS, sim.base_url().join(path).unwrap())
            .header("Origin", "http://localhost:5173")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,bb-api-subscription-key")
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}");
        let h = resp.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("bb-api-subscription-key") && allowed.contains("authorization"));
        assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    }
    token_call(&sim, &c, &[("grant_type", "x")]).await;
    sim.set_token_cors(false);
    let form = [("grant_type", "x")];
    let resp = c.post(sim.token_url()).basic_auth(CLIENT_ID, Some(SECRET)).form(&form).send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    let api = c.get(sim.api_url().join("gift/v1/gifts").unwrap()).send().await.unwrap();
    assert_eq!(api.headers()["access-control-allow-origin"], "*", "the API keeps CORS");
}

#[tokio::test]
async fn control_api_over_http() {
    let sim = sim(30).await;
    let c = client();
    let control = sim.base_url().join("_sim/control").unwrap();
    let post = |body: Value| c.post(control.clone()).json(&body).send();

    let resp = post(json!({"op": "modify", "entity": "gifts", "count": 3})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["ids"].as_array().unwrap().len(), 3);

    let tokens: Value = post(json!({"op": "issue_tokens"})).await.unwrap().json().await.unwrap();
    let token = s(&tokens["tokens"], "access_token").to_owned();
    post(json!({"op": "fail_next_api", "n": 1, "fault": {"kind": "drop"}})).await.unwrap();
    let url = sim.api_url().join("gift/v1/gifts").unwrap();
    assert_dropped(c.get(url.clone()).header("Bb-Api-Subscription-Key", KEY).bearer_auth(&token).send().await);
    post(json!({"op": "fail_next_api", "n": 1, "fault": {"kind": "status", "code": 503}})).await.unwrap();
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    post(json!({"op": "set_quota", "remaining": 0})).await.unwrap();
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::FORBIDDEN);
    post(json!({"op": "set_quota", "remaining": null})).await.unwrap();
    post(json!({"op": "advance_clock", "secs": 7200})).await.unwrap();
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::UNAUTHORIZED);

    let stats: SimStats = c.get(sim.base_url().join("_sim/stats").unwrap()).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats, sim.stats());
    assert_eq!((stats.dropped, stats.server_errors, stats.quota_rejections, stats.unauthorized), (1, 1, 1, 1));

    let record: Value =
        post(json!({"op": "record", "entity": "gifts", "id": "1"})).await.unwrap().json().await.unwrap();
    assert_eq!(record["record"]["id"], "1");
    let bad = post(json!({"op": "modify", "entity": "nope", "count": 1})).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<Value>().await.unwrap()["ok"], false);
    let unknown = post(json!({"op": "explode"})).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn large_tables_page_deep_offsets_and_last_modified() {
    let sim = sim(200_000).await;
    let c = client();
    let token = access(&sim).await;
    let page = api_json(&sim, &c, &token, "/gift/v1/gifts?limit=5000&offset=395000").await;
    assert_eq!((page["count"].as_u64(), ids(&page).len()), (Some(400_000), 5000));
    let middle = s(&page["value"][0], "date_modified").to_owned();
    let since =
        api_json(&sim, &c, &token, &format!("/gift/v1/gifts?limit=5000&last_modified={}", middle.replace('+', "%2B")))
            .await;
    assert_eq!(since["count"].as_u64(), Some(5000));
    assert_eq!(ids(&since)[0], "395001");
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sim = sim(10).await;
    let url = sim.base_url();
    assert!(client().get(url.clone()).send().await.is_ok());
    sim.shutdown().await;
    let err = Client::new().get(url).send().await.expect_err("nothing answers after shutdown");
    assert!(err.is_connect(), "the connection is refused after shutdown: {err:?}");
}

#[tokio::test]
async fn list_knobs_are_control_operations() {
    let sim = sim(10).await;
    let c = client();
    let control = sim.base_url().join("_sim/control").unwrap();
    let post = |body: Value| c.post(control.clone()).json(&body).send();
    let ok = |status: StatusCode| assert_eq!(status, StatusCode::OK);

    ok(post(json!({"op": "set_next_link_keeps_filters", "keep": true})).await.unwrap().status());
    ok(post(json!({"op": "set_actions_paging", "paging": "body_continuation"})).await.unwrap().status());
    ok(post(json!({"op": "set_list_lag", "secs": 1800, "everywhere": true})).await.unwrap().status());
    let cfg = sim.config();
    assert!(cfg.next_link_keeps_filters);
    assert_eq!(cfg.actions_paging, ActionsPaging::BodyContinuation);
    assert_eq!((cfg.list_lag, cfg.list_lag_everywhere), (Some(Duration::from_secs(1800)), true));

    ok(post(json!({"op": "set_list_lag", "secs": null})).await.unwrap().status());
    ok(post(json!({"op": "set_actions_paging", "paging": "next_link_continuation"})).await.unwrap().status());
    let cfg = sim.config();
    assert_eq!((cfg.list_lag, cfg.list_lag_everywhere), (None, false), "no lag, and `everywhere` defaults to off");
    assert_eq!(cfg.actions_paging, ActionsPaging::NextLinkContinuation);
    let bad = post(json!({"op": "set_actions_paging", "paging": "sideways"})).await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn faults_parse_from_their_documented_control_form() {
    let parse = |v: Value| serde_json::from_value::<Fault>(v).unwrap();
    assert_eq!(parse(json!({"kind": "status", "code": 503})), Fault::Status { code: 503 });
    assert_eq!(parse(json!({"kind": "html", "code": 502})), Fault::Html { code: 502 });
    assert_eq!(parse(json!({"kind": "slow", "ms": 1500})), Fault::Slow { ms: 1500 });
    assert_eq!(parse(json!({"kind": "too_many_requests"})), Fault::TooManyRequests { retry_after_secs: 1 });
    assert_eq!(parse(json!({"kind": "hold"})), Fault::Hold);
    assert_eq!(
        parse(json!({"kind": "redirect", "status": 302, "location": "http://elsewhere.example/x"})),
        Fault::Redirect { status: 302, location: "http://elsewhere.example/x".into() }
    );
    assert_eq!(
        parse(json!({"kind": "raw", "status": 200, "content_type": "text/plain", "body": "x"})),
        Fault::Raw { status: 200, content_type: "text/plain".into(), body: "x".into() }
    );
    for kind in ["drop", "oversized", "quota", "invalid_grant", "wrong_content_type", "truncated"] {
        let fault = parse(json!({ "kind": kind }));
        assert_eq!(serde_json::to_value(&fault).unwrap(), json!({ "kind": kind }), "{kind} round-trips");
    }
    assert!(serde_json::from_value::<Fault>(json!({"kind": "status"})).is_err(), "a status needs its code");
}

#[tokio::test]
async fn a_held_request_waits_until_released() {
    let sim = sim(10).await;
    let c = client();
    let control = sim.base_url().join("_sim/control").unwrap();
    let token = access(&sim).await;
    let resp = c.post(control.clone()).json(&json!({"op": "fail_next_api", "n": 1, "fault": {"kind": "hold"}}));
    assert_eq!(resp.send().await.unwrap().status(), StatusCode::OK);
    let url = sim.api_url().join("gift/v1/gifts").unwrap();
    let call = tokio::spawn({
        let (c, token) = (c.clone(), token.clone());
        async move { api_url(&c, &token, url.as_str()).await.status() }
    });
    let stats = sim.base_url().join("_sim/stats").unwrap();
    let held = async {
        loop {
            let s: SimStats = c.get(stats.clone()).send().await.unwrap().json().await.unwrap();
            if s.held == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), held).await.expect("the call reaches the latch");
    assert!(!call.is_finished(), "a held call gets no answer");
    let released = c.post(control).json(&json!({"op": "release_held"})).send().await.unwrap();
    assert_eq!(released.status(), StatusCode::OK);
    let answer = tokio::time::timeout(Duration::from_secs(20), call).await.expect("answered once released");
    assert_eq!(answer.unwrap(), StatusCode::OK, "then it is answered normally");
    assert_eq!(sim.stats().held, 0);
}
