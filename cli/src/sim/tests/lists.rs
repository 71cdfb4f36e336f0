//! The list APIs.

use super::*;

#[tokio::test]
async fn api_requires_the_subscription_key_and_a_live_bearer_token() {
    let sim = sim(10).await;
    let c = client();
    let token = s(&tokens(&sim, &c).await, "access_token").to_owned();
    let url = sim.api_url().join("constituent/v1/constituents").unwrap();
    let no_key = c.get(url.clone()).bearer_auth(&token).send().await.unwrap();
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_key.json::<Value>().await.unwrap(),
        json!({"statusCode": 401, "message": "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."})
    );
    let wrong_key = c.get(url.clone()).header("Bb-Api-Subscription-Key", "x").bearer_auth(&token).send().await.unwrap();
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);
    let no_token = c.get(url.clone()).header("Bb-Api-Subscription-Key", KEY).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.json::<Value>().await.unwrap()["message"], TOKEN_EXPIRED);
    assert_eq!(api_url(&c, "made-up", url.as_str()).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api_url(&c, &token, url.as_str()).await.status(), StatusCode::OK);
    sim.advance_clock(Duration::from_secs(3601));
    let expired = api_url(&c, &token, url.as_str()).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(expired.json::<Value>().await.unwrap()["message"], TOKEN_EXPIRED);
    let stats = sim.stats();
    assert_eq!((stats.api_calls, stats.api_ok, stats.unauthorized), (6, 1, 5));
    assert_eq!(stats.per_entity_calls["constituents"], 6);
}

#[tokio::test]
async fn queued_429s_rate_limit_and_quota() {
    let sim = sim(10).await;
    let c = client();
    let token = access(&sim).await;
    let path = "/gift/v1/gifts?limit=1";
    sim.fail_next_api(2, Fault::TooManyRequests { retry_after_secs: 2 });
    for _ in 0..2 {
        let resp = api_get(&sim, &c, &token, path).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    }
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);

    sim.set_rate_limit(Some(3));
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..4 {
        let resp = api_get(&sim, &c, &token, path).await;
        statuses.push(resp.status());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
            limited = Some(resp.json::<Value>().await.unwrap());
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count(), 1, "{statuses:?}");
    assert_eq!(
        limited.unwrap(),
        json!({"statusCode": 429, "message": "Rate limit is exceeded. Try again in 1 second."})
    );
    sim.set_rate_limit(None);

    sim.set_quota(Some(2));
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    let over = api_get(&sim, &c, &token, path).await;
    assert_eq!(over.status(), StatusCode::FORBIDDEN);
    let retry: u64 = over.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    // The quota day ends QUOTA_DAY after the simulator started (not at a real midnight).
    assert!((QUOTA_DAY.as_secs() - 300..=QUOTA_DAY.as_secs()).contains(&retry), "{retry}");
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["statusCode"], 403);
    let msg = s(&body, "message");
    let hms = msg.strip_prefix("Out of call volume quota. Quota will be replenished in ").unwrap();
    assert_eq!(hms.len(), "HH:MM:SS.".len(), "{msg}");
    // The quota refills when the simulator's quota day ends.
    sim.advance_clock(Duration::from_secs(retry + 1));
    let token = access(&sim).await;
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    let stats = sim.stats();
    assert_eq!((stats.rate_limited, stats.quota_rejections), (3, 1));
}

#[tokio::test]
async fn api_faults_drop_and_random_rates() {
    let sim = sim(10).await;
    let c = client();
    let token = access(&sim).await;
    let path = "/fundraising/v1/funds";
    sim.fail_next_api(1, Fault::Drop);
    let url = sim.api_url().join(path.trim_start_matches('/')).unwrap();
    let err = c.get(url).header("Bb-Api-Subscription-Key", KEY).bearer_auth(&token).send().await.unwrap_err();
    assert!(!err.is_status(), "{err:?}");
    sim.fail_next_api(1, Fault::WrongContentType);
    let resp = api_get(&sim, &c, &token, path).await;
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/plain");
    sim.fail_next_api(1, Fault::Oversized);
    let big = api_get(&sim, &c, &token, path).await.bytes().await.unwrap();
    assert!(big.len() > 8 * 1024 * 1024);
    sim.fail_next_api(1, Fault::Slow { ms: 200 });
    let start = tokio::time::Instant::now();
    assert_eq!(api_get(&sim, &c, &token, path).await.status(), StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(200));

    sim.set_fault_rates(FaultRates { api_500: 0.5, ..FaultRates::default() });
    let mut errors = 0u64;
    for _ in 0..40 {
        if api_get(&sim, &c, &token, path).await.status() == StatusCode::INTERNAL_SERVER_ERROR {
            errors += 1;
        }
    }
    assert!((5..=35).contains(&errors), "{errors}");
    assert_eq!(sim.stats().server_errors, errors);
}

#[tokio::test]
async fn offset_paging_covers_every_live_id_exactly_once() {
    let sim = sim(60).await;
    // This test follows next_link verbatim; by default it drops the filters, as Blackbaud's may.
    sim.set_next_link_keeps_filters(true);
    let c = client();
    let token = access(&sim).await;
    sim.delete("constituents", 3);
    sim.add("constituents", 2);
    let mut seen = Vec::new();
    let mut link = sim
        .api_url()
        .join("constituent/v1/constituents?limit=7&include_inactive=true&include_deceased=true")
        .unwrap()
        .to_string();
    let mut pages = 0;
    loop {
        let resp = api_url(&c, &token, &link).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["count"], 59);
        seen.extend(ids(&page));
        pages += 1;
        match page["next_link"].as_str() {
            Some(next) => {
                assert!(next.starts_with(sim.api_url().as_str()));
                assert!(next.contains("include_inactive=true"));
                link = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 9);
    let mut live = sim.live_ids("constituents");
    assert_eq!(seen.len(), live.len());
    let numeric = |v: &mut Vec<String>| v.sort_by_key(|id| id.parse::<u64>().unwrap());
    numeric(&mut live);
    assert_eq!(seen, live, "id order, every id once");

    // Without the include flags, hidden rows are neither listed nor counted.
    let visible = api_json(&sim, &c, &token, "/constituent/v1/constituents?limit=5000").await;
    let n = visible["value"].as_array().unwrap().len();
    assert_eq!(visible["count"], n);
    assert!(n < 59);
    assert!(visible["value"].as_array().unwrap().iter().all(|r| r["inactive"] == false && r["deceased"] == false));
}

#[tokio::test]
async fn include_inactive_and_fields_id() {
    let sim = sim(5000).await;
    let c = client();
    let token = access(&sim).await;
    let all = api_json(&sim, &c, &token, "/fundraising/v1/packages?include_inactive=true").await;
    let active = api_json(&sim, &c, &token, "/fundraising/v1/packages").await;
    let inactive = all["value"].as_array().unwrap().iter().filter(|r| r["inactive"] == true).count();
    assert!(inactive > 0, "about 5% of 200 packages are inactive");
    assert_eq!(all["count"].as_u64().unwrap(), active["count"].as_u64().unwrap() + inactive as u64);

    let slim = api_json(&sim, &c, &token, "/constituent/v1/constituents?fields=id&limit=50").await;
    for r in slim["value"].as_array().unwrap() {
        assert_eq!(r.as_object().unwrap().len(), 1, "{r}");
        assert!(r["id"].is_string());
    }
    let some = api_json(&sim, &c, &token, "/event/v1/eventlist?fields=id,name").await;
    let keys: BTreeSet<_> = some["value"][0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, BTreeSet::from(["id".to_owned(), "name".to_owned()]));
}

#[tokio::test]
async fn last_modified_chain_resumes_from_the_stored_next_link() {
    let sim = sim(40).await;
    let c = client();
    let token = access(&sim).await;
    let mut link =
        sim.api_url().join("gift/v1/gifts?limit=9&last_modified=1600-01-01T00%3A00%3A00-04%3A00").unwrap().to_string();
    let mut seen = Vec::new();
    let mut last_modified = String::new();
    let stored = loop {
        let page: Value = api_url(&c, &token, &link).await.json().await.unwrap();
        assert_eq!(page["count"], 80);
        let next = s(&page, "next_link").to_owned();
        assert!(next.contains("sort_token="), "{next}");
        assert!(!next.contains("offset="));
        assert!(next.contains("last_modified=1600-01-01T00%3a00%3a00-04%3a00"), "lowercase escapes: {next}");
        for r in page["value"].as_array().unwrap() {
            let dm = s(r, "date_modified").to_owned();
            assert!(dm >= last_modified, "ascending date_modified");
            assert_eq!(dm.len(), "2016-06-21T02:47:20.2371396+00:00".len());
            last_modified = dm;
        }
        let got = ids(&page);
        if got.is_empty() {
            break next;
        }
        seen.extend(got);
        link = next;
    };
    let mut live = sim.live_ids("gifts");
    live.sort();
    seen.sort();
    assert_eq!(seen, live);

    let before: HashMap<String, Value> =
        sim.live_ids("gifts").into_iter().map(|id| (id.clone(), sim.record("gifts", &id).unwrap())).collect();
    let mut changed = sim.modify("gifts", 5);
    changed.sort();
    changed.dedup();
    assert_eq!(changed.len(), 5);
    let page: Value = api_url(&c, &token, &stored).await.json().await.unwrap();
    let mut got = ids(&page);
    got.sort();
    assert_eq!(got, changed, "exactly the modified records come back");
    for r in page["value"].as_array().unwrap() {
        assert_eq!(Some(r), sim.record("gifts", s(r, "id")).as_ref());
    }
    for id in &changed {
        let now = sim.record("gifts", id).unwrap();
        assert_ne!(now["amount"], before[id]["amount"], "gift {id} changed visibly");
        assert!(s(&now, "date_modified") > s(&before[id], "date_modified"), "gift {id} is newer");
    }
    // The new next_link is again a resumable, empty tail.
    let tail: Value = api_url(&c, &token, s(&page, "next_link")).await.json().await.unwrap();
    assert!(ids(&tail).is_empty());
    let added = sim.add("gifts", 2);
    let fresh: Value = api_url(&c, &token, s(&tail, "next_link")).await.json().await.unwrap();
    assert_eq!(ids(&fresh), added);
    // A last_modified after everything: empty, but still a next_link to resume from.
    let future = "2999-01-01T00:00:00Z";
    let empty = api_json(&sim, &c, &token, &format!("/gift/v1/gifts?last_modified={future}")).await;
    assert_eq!((empty["count"].as_u64(), ids(&empty).len()), (Some(0), 0));
    assert!(empty["next_link"].as_str().unwrap().contains("sort_token="));
}

#[tokio::test]
async fn modified_records_change_visibly() {
    let sim = sim(20).await;
    let id = sim.modify("constituents", 1).pop().unwrap();
    let before_add = sim.record("constituents", &id).unwrap();
    let again = sim.modify("constituents", 20);
    assert!(again.contains(&id));
    let after = sim.record("constituents", &id).unwrap();
    assert_ne!(before_add["email"]["address"], after["email"]["address"]);
    assert!(s(&after, "date_modified") >= s(&before_add, "date_modified"));
    let deleted = sim.delete("constituents", 1).pop().unwrap();
    assert!(sim.record("constituents", &deleted).is_none());
    assert!(!sim.live_ids("constituents").contains(&deleted));
}

#[tokio::test]
async fn events_page_by_offset_without_next_link() {
    let sim = sim(2000).await;
    let c = client();
    let token = access(&sim).await;
    let page = api_json(
        &sim,
        &c,
        &token,
        "/event/v1/eventlist?limit=3&include_inactive=true&last_modified=2000-01-01T00:00:00Z",
    )
    .await;
    assert_eq!(page["count"], 20);
    assert_eq!(ids(&page).len(), 3);
    assert!(page.get("next_link").is_none(), "{page}");
    let plain = api_json(&sim, &c, &token, "/event/v1/eventlist?limit=3&offset=18&include_inactive=true").await;
    assert!(plain.get("next_link").is_none());
    assert_eq!(ids(&plain), vec!["19", "20"]);
}

#[tokio::test]
async fn invalid_list_parameters_get_400() {
    let sim = sim(10).await;
    let c = client();
    let token = access(&sim).await;
    for q in [
        "/gift/v1/gifts?limit=5001",
        "/gift/v1/gifts?limit=0",
        "/gift/v1/gifts?offset=-1",
        "/gift/v1/gifts?last_modified=yesterday",
        "/gift/v1/gifts?sort_token=AAAAAAAC%2bI4%3d&sort=date_modified",
        "/gift/v1/gifts?sort_token=garbage",
    ] {
        let resp = api_get(&sim, &c, &token, q).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(resp.json::<Value>().await.unwrap()["statusCode"], 400);
    }
    assert_eq!(api_get(&sim, &c, &token, "/event/v1/eventlist?limit=10000").await.status(), StatusCode::OK);
}
