//! The core's `Session` and `ApiClient` against the SKY simulator over real loopback HTTP:
//! consent, code exchange, refresh with and without `preserve_refresh_token`, rotation,
//! `invalid_grant` after rotation, and 429 handling at the HTTP layer.

use std::sync::Arc;
use std::time::Duration;

use skysync_cli::runtime::TokioRuntime;
use skysync_cli::sim::{Fault, SimConfig};
use skysync_core::api::ApiClient;
use skysync_core::host::{Clock, OsEntropy, SystemClock};
use skysync_core::http::ReqwestClient;
use skysync_core::secret::SubscriptionKey;
use skysync_core::{ApiConfig, MemoryStore, RenewalPolicy, SessionError, TokenSet};
use skysync_tests::sky::{consent, session, sim_config, start_sim};

fn expired_access(mut t: TokenSet) -> TokenSet {
    t.access_expires_at = Some(SystemClock.now() - Duration::from_secs(1));
    t
}

#[tokio::test]
async fn consent_exchange_and_preserving_refresh() {
    let sim = start_sim(SimConfig::default()).await;
    let tokens = consent(&sim).await;
    assert_eq!(tokens.identity.environment_id.as_deref(), Some(sim.config().environment_id.as_str()));
    assert_eq!(sim.stats().token_authorization_code, 1);
    let first_rt = tokens.refresh_token.secret().to_owned();
    let store = Arc::new(MemoryStore::with(expired_access(tokens)));
    let s = session(&sim, store.clone(), RenewalPolicy::default());
    let at = s.access_token().await.unwrap();
    // The new access token works against the API, and the refresh token was preserved.
    let stats = sim.stats();
    assert_eq!((stats.token_refresh_preserve, stats.token_refresh_rotate), (1, 0));
    let saved = store.snapshot().unwrap().tokens;
    assert_eq!(saved.refresh_token.secret(), first_rt);
    assert_eq!(saved.access_token.unwrap().secret(), at.secret());
    // A second call reuses the token: no new token call.
    s.access_token().await.unwrap();
    assert_eq!(sim.stats().token_calls, 2);
}

#[tokio::test]
async fn rotation_inside_the_window_and_invalid_grant_for_the_old_token() {
    let sim = start_sim(SimConfig::default()).await;
    let tokens = consent(&sim).await;
    let old = tokens.clone();
    let store = Arc::new(MemoryStore::with(expired_access(tokens)));
    // A renewal window longer than the token's life: every refresh rotates.
    let policy = RenewalPolicy { renewal_window: Duration::from_secs(400 * 86_400), ..Default::default() };
    let s = session(&sim, store.clone(), policy);
    s.access_token().await.unwrap();
    assert_eq!(sim.stats().token_refresh_rotate, 1);
    let rotated = store.snapshot().unwrap().tokens;
    assert_ne!(rotated.refresh_token.secret(), old.refresh_token.secret());
    assert!(rotated.last_rotated_at.is_some());
    // The old refresh token died at once.
    let stale = Arc::new(MemoryStore::with(expired_access(old)));
    let e = session(&sim, stale, RenewalPolicy::default()).access_token().await.unwrap_err();
    assert!(e.needs_consent(), "{e}");
}

#[tokio::test]
async fn lost_rotation_response_is_reported_and_the_store_keeps_the_last_token() {
    let sim = start_sim(SimConfig::default()).await;
    let tokens = consent(&sim).await;
    let before = tokens.refresh_token.secret().to_owned();
    let store = Arc::new(MemoryStore::with(tokens));
    let s = session(&sim, store.clone(), RenewalPolicy::default());
    sim.drop_response_after_rotation(1);
    let e = s.rotate().await.unwrap_err();
    assert!(matches!(e, SessionError::Transport(_)), "{e:?}");
    assert_eq!(sim.stats().token_calls, 2, "a rotation is never retried with the old token");
    assert_eq!(store.snapshot().unwrap().tokens.refresh_token.secret(), before);
    // The server did rotate, so the next refresh needs consent (the documented risk of rotation),
    // and the error says what happened, because the unanswered attempt was recorded.
    assert!(store.snapshot().unwrap().tokens.rotation_started_at.is_some());
    let s2 = session(
        &sim,
        Arc::new(MemoryStore::with(expired_access(store.snapshot().unwrap().tokens))),
        RenewalPolicy::default(),
    );
    let e = s2.access_token().await.unwrap_err();
    assert!(matches!(e, SessionError::RotationLost { .. }) && e.needs_consent(), "{e:?}");
}

#[tokio::test]
async fn revoked_app_gives_consent_error() {
    let sim = start_sim(SimConfig::default()).await;
    let tokens = consent(&sim).await;
    sim.revoke_refresh_tokens();
    let s = session(&sim, Arc::new(MemoryStore::with(expired_access(tokens))), RenewalPolicy::default());
    let e = s.access_token().await.unwrap_err();
    assert!(e.needs_consent());
    assert!(e.to_string().contains("consent again"), "{e}");
}

#[tokio::test]
async fn api_client_waits_on_429_and_refreshes_on_401() {
    let sim = start_sim(sim_config(20)).await;
    let tokens = consent(&sim).await;
    let store = Arc::new(MemoryStore::with(tokens));
    let s = session(&sim, store, RenewalPolicy::default());
    let api = ApiClient::new(
        s,
        Arc::new(ReqwestClient::new().unwrap()),
        Arc::new(TokioRuntime),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
        ApiConfig { base: sim.api_url(), subscription_key: SubscriptionKey::new(sim.config().subscription_key) },
        50.0,
    );
    sim.fail_next_api(2, Fault::TooManyRequests { retry_after_secs: 1 });
    let page = api.get_json("/constituent/v1/constituents?limit=5").await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    assert_eq!(sim.stats().rate_limited, 2);
    assert_eq!(api.counters().rate_limited, 2);
    // The API rejects the token (as after a revocation of the access token): one refresh, one retry.
    sim.fail_next_api(1, Fault::InvalidGrant);
    api.get_json("/gift/v1/gifts?limit=1").await.unwrap();
    assert_eq!(api.counters().unauthorized, 1);
    assert_eq!(sim.stats().token_refresh_preserve, 1);
    // Quota: a clean stop with the replenish time.
    sim.set_quota(Some(0));
    let e = api.get_json("/gift/v1/gifts?limit=1").await.unwrap_err();
    assert!(matches!(e, skysync_core::ApiError::QuotaExhausted { retry_after: Some(_), .. }), "{e:?}");
}
