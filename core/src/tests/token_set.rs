use std::time::Duration;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::T0;
use crate::secret::{AccessToken, RefreshToken};
use crate::token::{Identity, TokenResponse};
use crate::token_set::{Health, Need, RenewalPolicy, TokenSet};

const DAY: Duration = Duration::from_secs(86_400);

pub fn response(access: &str, refresh: Option<&str>, rt_left: Option<Duration>) -> TokenResponse {
    TokenResponse {
        access_token: AccessToken::new(access),
        token_type: "bearer".into(),
        expires_in: Some(Duration::from_secs(3600)),
        refresh_token: refresh.map(RefreshToken::new),
        refresh_token_expires_in: rt_left,
        identity: Identity { environment_id: Some("p-env".into()), ..Default::default() },
    }
}

pub fn fresh_set() -> TokenSet {
    TokenSet::from_exchange("app-id", response("at0", Some("rt0"), Some(365 * DAY)), T0).unwrap()
}

#[test]
fn exchange_sets_absolute_instants() {
    let t = fresh_set();
    assert_eq!(t.access_expires_at, Some(T0 + Duration::from_secs(3600)));
    assert_eq!(t.refresh_expires_at, T0 + 365 * DAY);
    assert_eq!(t.refresh_obtained_at, T0);
    assert_eq!(t.consented_at, T0);
    assert!(t.last_refreshed_at.is_none() && t.last_rotated_at.is_none());
    assert!(TokenSet::from_exchange("app-id", response("a", None, None), T0).is_err());
    // Without refresh_token_expires_in: 365 days from issue.
    let t = TokenSet::from_exchange("app-id", response("a", Some("r"), None), T0).unwrap();
    assert_eq!(t.refresh_expires_at, T0 + 365 * DAY);
}

#[test]
fn preserve_keeps_token_and_fixed_expiry() {
    let t = fresh_set();
    let later = T0 + 10 * DAY;
    // preserve_refresh_token=true: same token, remaining life reported.
    let n = t.after_refresh(response("at1", Some("rt0"), Some(355 * DAY)), later);
    assert_eq!(n.refresh_token.secret(), "rt0");
    assert_eq!(n.refresh_expires_at, T0 + 365 * DAY);
    assert_eq!(n.refresh_obtained_at, T0);
    assert_eq!(n.last_refreshed_at, Some(later));
    assert!(n.last_rotated_at.is_none());
    assert_eq!(n.access_token.as_ref().unwrap().secret(), "at1");
    // No refresh token in the response: keep the old one and its expiry.
    let n = t.after_refresh(response("at2", None, None), later);
    assert_eq!(n.refresh_token.secret(), "rt0");
    assert_eq!(n.refresh_expires_at, T0 + 365 * DAY);
}

#[test]
fn rotation_restarts_the_clock() {
    let t = fresh_set();
    let later = T0 + 300 * DAY;
    let n = t.after_refresh(response("at1", Some("rt1"), Some(365 * DAY)), later);
    assert_eq!(n.refresh_token.secret(), "rt1");
    assert_eq!(n.refresh_expires_at, later + 365 * DAY);
    assert_eq!(n.refresh_obtained_at, later);
    assert_eq!(n.last_rotated_at, Some(later));
    // Rotated without an expiry field: 365 days from when it was issued.
    let n = t.after_refresh(response("at1", Some("rt1"), None), later);
    assert_eq!(n.refresh_expires_at, later + 365 * DAY);
    assert_eq!(n.identity.environment_id.as_deref(), Some("p-env"));
}

#[test]
fn policy_decisions() {
    let p = RenewalPolicy::default();
    let t = fresh_set();
    assert_eq!(p.need(&t, T0), Need::Nothing);
    assert_eq!(p.need(&t, T0 + Duration::from_secs(3600 - 301)), Need::Nothing);
    assert_eq!(p.need(&t, T0 + Duration::from_secs(3600 - 299)), Need::Refresh, "inside the 5-minute skew");
    assert_eq!(p.need(&t, T0 + 306 * DAY), Need::Rotate, "59 days left: inside the 60-day window");
    assert_eq!(p.need(&t, T0 + 365 * DAY), Need::Consent);
    assert_eq!(p.health(&t, T0 + 300 * DAY), Health::Healthy);
    assert_eq!(p.health(&t, T0 + 336 * DAY), Health::Warning);
    assert_eq!(p.health(&t, T0 + 366 * DAY), Health::Expired);
    let custom = RenewalPolicy { access_skew: Duration::ZERO, renewal_window: 10 * DAY, warn_window: 5 * DAY };
    assert_eq!(custom.need(&t, T0 + 306 * DAY), Need::Refresh);
    assert_eq!(custom.need(&t, T0 + 356 * DAY), Need::Rotate);
    let mut no_access = t.clone();
    no_access.access_token = None;
    assert_eq!(p.need(&no_access, T0), Need::Refresh);
}

#[test]
fn serde_round_trip() {
    let t = fresh_set();
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains("\"refresh_expires_at\":\"2027-01-15T12:00:00Z\""), "{json}");
    let back: TokenSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back.refresh_expires_at, t.refresh_expires_at);
    assert_eq!(back.refresh_token.secret(), "rt0");
    assert_eq!(back.identity, t.identity);
    assert!(!format!("{t:?}").contains("rt0"));
    let policy: RenewalPolicy =
        serde_json::from_str(&serde_json::to_string(&RenewalPolicy::default()).unwrap()).unwrap();
    assert_eq!(policy, RenewalPolicy::default());
}

#[test]
fn a_preserving_refresh_never_moves_the_expiry_later() {
    let t = fresh_set();
    let later = T0 + 10 * DAY;
    // The same token, reported with a fresh 365 days: the original expiry stands.
    let n = t.after_refresh(response("at1", Some("rt0"), Some(365 * DAY)), later);
    assert_eq!(n.refresh_expires_at, T0 + 365 * DAY);
    assert_eq!(n.refresh_obtained_at, T0);
    // Reported shorter than stored: the server knows better, take the earlier one.
    let n = t.after_refresh(response("at1", Some("rt0"), Some(100 * DAY)), later);
    assert_eq!(n.refresh_expires_at, later + 100 * DAY);
    // No refresh token in the response (kept) but a lifetime: the same rule.
    let n = t.after_refresh(response("at1", None, Some(365 * DAY)), later);
    assert_eq!(n.refresh_expires_at, T0 + 365 * DAY);
}

#[test]
fn a_rotated_token_takes_the_reported_lifetime_even_when_shorter() {
    let t = fresh_set();
    let later = T0 + 10 * DAY;
    let n = t.after_refresh(response("at1", Some("rt1"), Some(30 * DAY)), later);
    assert_eq!(n.refresh_expires_at, later + 30 * DAY);
    assert_eq!(n.last_rotated_at, Some(later));
}

#[test]
fn nightly_refreshes_reporting_full_lifetimes_still_open_the_renewal_window_on_day_306() {
    let p = RenewalPolicy::default();
    let mut t = fresh_set();
    let mut rotated_on = None;
    for day in 1..=400u32 {
        let now = T0 + day * DAY;
        let need = p.need(&t, now);
        assert_ne!(need, Need::Consent, "day {day}: the refresh token died");
        let response = match need {
            // A server that keeps the token's original expiry but reports a full lifetime.
            Need::Refresh => response("at", Some(t.refresh_token.secret()), Some(365 * DAY)),
            Need::Rotate => {
                rotated_on.get_or_insert(day);
                response("at", Some(&format!("rt-{day}")), Some(365 * DAY))
            }
            other => panic!("day {day}: {other:?} with an hour-old access token"),
        };
        // The token set never claims more life than the server grants: the first refresh
        // token dies at T0 + 365 days, whatever the responses said.
        t = t.after_refresh(response, now);
        if rotated_on.is_none() {
            assert_eq!(t.refresh_expires_at, T0 + 365 * DAY, "day {day}");
        }
    }
    assert_eq!(rotated_on, Some(306), "60 days before the fixed expiry");
}

#[test]
fn the_access_skew_is_at_most_a_quarter_of_the_token_lifetime() {
    let p = RenewalPolicy::default();
    let short = |life: u64| {
        let mut r = response("at", Some("rt0"), Some(365 * DAY));
        r.expires_in = Some(Duration::from_secs(life));
        TokenSet::from_exchange("app-id", r, T0).unwrap()
    };
    // Five-minute tokens and a five-minute skew: fresh means fresh, and due after 3/4 of the life.
    let t = short(300);
    assert_eq!(p.need(&t, T0), Need::Nothing);
    assert_eq!(p.need(&t, T0 + Duration::from_secs(224)), Need::Nothing);
    assert_eq!(p.need(&t, T0 + Duration::from_secs(226)), Need::Refresh);
    // The same after a refresh: the lifetime is measured from the refresh.
    let mut r = response("at2", Some("rt0"), None);
    r.expires_in = Some(Duration::from_secs(300));
    let n = t.after_refresh(r, T0 + DAY);
    assert_eq!(p.need(&n, T0 + DAY + Duration::from_secs(1)), Need::Nothing);
    // A one-hour token keeps the configured five minutes.
    let t = short(3600);
    assert_eq!(p.need(&t, T0 + Duration::from_secs(3600 - 301)), Need::Nothing);
    assert_eq!(p.need(&t, T0 + Duration::from_secs(3600 - 299)), Need::Refresh);
    // An access token already past its expiry is never usable.
    let mut expired = short(300);
    expired.access_expires_at = Some(T0 - Duration::from_secs(1));
    assert!(expired.usable_access_token(T0, Duration::ZERO).is_none());
}
