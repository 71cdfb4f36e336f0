//! Grants: which codes, refresh tokens and access tokens came from one consent. Two knobs use
//! them, and tests use them to tell whether a client lost a rotation:
//!
//! - Revoke on replay (off by default): a used authorization code or a rotated-away refresh token
//!   presented again revokes the whole grant, every refresh and access token it issued, as
//!   RFC 6749 §10.5 (codes) and §10.4 (refresh tokens) allow. Blackbaud does not document doing
//!   this, nor not doing it; a client must survive both.
//! - A slow token endpoint: each `/token` call waits a random time up to `before` before it is
//!   processed, and up to `after` between committing (a rotation is final by then) and answering,
//!   so a client killed mid-call may die on either side of the commit.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::state::{Inner, Shared};

/// What the simulator knows about a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshTokenState {
    /// Valid now.
    Live,
    /// Replaced by a rotation: whoever holds only this token lost the rotation's result.
    Rotated,
    /// Its grant was revoked (a replay, with revoke-on-replay on).
    Revoked,
    /// Never issued here, expired, or removed by `revoke_refresh_tokens`.
    Unknown,
}

/// The random waits of a slow token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenDelay {
    /// Up to this long before the call is processed.
    pub before_ms: u64,
    /// Up to this long after it is committed, before the answer.
    pub after_ms: u64,
}

#[derive(Debug, Default)]
pub(crate) struct GrantBook {
    next: u64,
    refresh: HashMap<String, u64>,
    rotated: HashSet<String>,
    codes: HashMap<String, u64>,
    access: HashMap<String, u64>,
    revoked: HashSet<u64>,
    pub(crate) revoke_on_replay: bool,
    pub(crate) delay: TokenDelay,
}

impl GrantBook {
    fn grant_of(&mut self, refresh: &str) -> u64 {
        if let Some(g) = self.refresh.get(refresh) {
            return *g;
        }
        self.next += 1;
        self.refresh.insert(refresh.to_owned(), self.next);
        self.next
    }

    fn issued(&mut self, grant: u64, body: &serde_json::Value) {
        if let Some(rt) = body["refresh_token"].as_str() {
            self.refresh.insert(rt.to_owned(), grant);
        }
        if let Some(at) = body["access_token"].as_str() {
            self.access.insert(at.to_owned(), grant);
        }
    }
}

/// A code exchange issued `body`: a new grant.
pub(crate) fn consented(s: &mut Inner, code: &str, body: &serde_json::Value) {
    let book = &mut s.grants;
    book.next += 1;
    let grant = book.next;
    book.codes.insert(code.to_owned(), grant);
    book.issued(grant, body);
}

/// A refresh with `old` issued `body` (a rotation when its refresh token differs).
pub(crate) fn refreshed(s: &mut Inner, old: &str, body: &serde_json::Value) {
    let book = &mut s.grants;
    let grant = book.grant_of(old);
    if body["refresh_token"].as_str().is_some_and(|new| new != old) {
        book.rotated.insert(old.to_owned());
    }
    book.issued(grant, body);
}

/// An unknown code was presented: a replay of a used one revokes its grant (knob).
pub(crate) fn code_refused(s: &mut Inner, code: &str) {
    if let Some(grant) = s.grants.codes.get(code).copied() {
        s.stats.replays += 1;
        revoke_on_replay(s, grant);
    }
}

/// A dead refresh token was presented: a rotated-away one revokes its grant (knob).
pub(crate) fn refresh_refused(s: &mut Inner, token: &str) {
    if s.grants.rotated.contains(token) {
        s.stats.replays += 1;
        let grant = s.grants.grant_of(token);
        revoke_on_replay(s, grant);
    }
}

fn revoke_on_replay(s: &mut Inner, grant: u64) {
    if !s.grants.revoke_on_replay || !s.grants.revoked.insert(grant) {
        return;
    }
    s.stats.grants_revoked += 1;
    let book = &s.grants;
    s.refresh.retain(|token, _| book.refresh.get(token) != Some(&grant));
    s.access.retain(|token, _| book.access.get(token) != Some(&grant));
}

/// What the simulator knows about `token`.
pub(crate) fn state(s: &mut Inner, token: &str) -> RefreshTokenState {
    let now = s.now();
    if s.refresh.get(token).is_some_and(|g| g.expires > now) {
        RefreshTokenState::Live
    } else if s.grants.refresh.get(token).is_some_and(|g| s.grants.revoked.contains(g)) {
        RefreshTokenState::Revoked
    } else if s.grants.rotated.contains(token) {
        RefreshTokenState::Rotated
    } else {
        RefreshTokenState::Unknown
    }
}

/// Waits up to the configured time before (`committed == false`) or after a token call's commit.
pub(crate) async fn delay(sim: &Shared, committed: bool) {
    let wait = {
        let mut s = sim.lock();
        let max = if committed { s.grants.delay.after_ms } else { s.grants.delay.before_ms };
        if max == 0 { 0 } else { s.fault_rng.next_u64() % (max + 1) }
    };
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}
