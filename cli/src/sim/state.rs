//! The simulator's mutable state, behind one mutex (never held across an `.await`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use skysync_core::catalog::{self, CATALOG};
use time::OffsetDateTime;
use url::Url;

use super::data::{DateShape, ParentFilter, Table, initial_count, parent_index};
use super::render::{Ctx, render};
use super::rng::SplitMix64;
use super::{Fault, SimConfig, SimStats};

/// What the server shares with handlers and handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) base_url: Url,
    inner: Mutex<Inner>,
    /// Bumped by every release of the [`Fault::Hold`] latch; held requests wait for a change.
    releases: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new(base_url: Url, cfg: SimConfig) -> Self {
        Self { base_url, inner: Mutex::new(Inner::new(cfg)), releases: tokio::sync::watch::Sender::new(0) }
    }

    /// Lets every request waiting at a [`Fault::Hold`] latch go on.
    pub(crate) fn release_held(&self) {
        self.releases.send_modify(|n| *n += 1);
    }

    /// Waits at the latch until the next [`Self::release_held`]. [`SimStats::held`] counts the
    /// request from before it can be released until it goes on (or its client goes away).
    pub(crate) async fn hold(&self) {
        struct Waiting<'a>(&'a Shared);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.lock().stats.held -= 1;
            }
        }
        // Subscribed before it is counted: a release by whoever saw the count always wakes it.
        let mut releases = self.releases.subscribe();
        self.lock().stats.held += 1;
        let _waiting = Waiting(self);
        let _ = releases.changed().await;
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<String>,
    pub(crate) issued: OffsetDateTime,
}

/// A live refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) expires: OffsetDateTime,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cfg: SimConfig,
    pub(crate) token_cors: bool,
    clock_offset: Duration,
    last_now: OffsetDateTime,
    anchor_ticks: i64,
    pub(crate) codes: HashMap<String, AuthCode>,
    pub(crate) refresh: HashMap<String, RefreshGrant>,
    pub(crate) access: HashMap<String, OffsetDateTime>,
    pub(crate) token_faults: VecDeque<Fault>,
    pub(crate) api_faults: VecDeque<Fault>,
    pub(crate) drop_after_rotation: u32,
    pub(crate) grants: super::grants::GrantBook,
    pub(crate) rate_window: VecDeque<Instant>,
    pub(crate) quota_used: u64,
    /// When the current quota day ends (simulator time).
    quota_day_end: OffsetDateTime,
    pub(crate) stats: SimStats,
    pub(crate) fault_rng: SplitMix64,
    token_rng: SplitMix64,
    data_rng: SplitMix64,
    tables: Vec<Option<Table>>,
}

/// Why a quota or rate check refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttle {
    RateLimited,
    /// Seconds until the quota refills (the end of the simulator's quota day).
    Quota(u64),
}

impl Inner {
    fn new(cfg: SimConfig) -> Self {
        let now = wall_clock();
        let anchor = now.replace_time(time::Time::MIDNIGHT);
        let entropy = now.unix_timestamp_nanos() as u64 ^ u64::from(std::process::id());
        Self {
            token_cors: true,
            clock_offset: Duration::ZERO,
            last_now: now,
            anchor_ticks: ticks(anchor),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            access: HashMap::new(),
            token_faults: VecDeque::new(),
            api_faults: VecDeque::new(),
            drop_after_rotation: 0,
            grants: Default::default(),
            rate_window: VecDeque::new(),
            quota_used: 0,
            quota_day_end: match cfg.quota_day_ends_after {
                Some(d) => now + d,
                None => (now.date() + time::Duration::DAY).midnight().assume_utc(),
            },
            stats: SimStats::default(),
            fault_rng: SplitMix64::new(cfg.seed ^ 0xFA17),
            token_rng: SplitMix64::new(super::rng::hash(&[cfg.seed, entropy])),
            data_rng: SplitMix64::new(cfg.seed ^ 0xDA7A),
            tables: CATALOG.iter().map(|_| None).collect(),
            cfg,
        }
    }

    pub(crate) fn config(&self) -> SimConfig {
        self.cfg.clone()
    }

    /// Real time plus the offset from `advance_clock`, never going backwards.
    pub(crate) fn now(&mut self) -> OffsetDateTime {
        let t = (wall_clock() + self.clock_offset).max(self.last_now);
        self.last_now = t;
        t
    }

    pub(crate) fn now_ticks(&mut self) -> i64 {
        let now = self.now();
        ticks(now)
    }

    pub(crate) fn advance(&mut self, d: Duration) {
        self.clock_offset += d;
        self.now();
    }

    /// A random-looking opaque token.
    pub(crate) fn random_token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        self.token_rng.string(ALPHABET, len)
    }

    pub(crate) fn random_hex(&mut self, len: usize) -> String {
        self.token_rng.string(b"0123456789abcdef", len)
    }

    /// Creates an access token and returns the token response JSON (plus the refresh token
    /// `refresh`, or a new one).
    pub(crate) fn issue_tokens(&mut self, refresh: Option<(String, OffsetDateTime)>) -> serde_json::Value {
        let now = self.now();
        let access = format!("sim.{}", self.random_token(120));
        self.access.insert(access.clone(), now + self.cfg.access_token_ttl);
        if self.access.len() > 10_000 {
            self.access.retain(|_, exp| *exp > now);
        }
        let (refresh, expires) = match refresh {
            Some(r) => r,
            None => {
                let token = self.random_hex(32);
                let expires = now + self.cfg.refresh_token_ttl;
                let grant = RefreshGrant { client_id: self.cfg.client_id.clone(), expires };
                self.refresh.insert(token.clone(), grant);
                (token, expires)
            }
        };
        let c = &self.cfg;
        serde_json::json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": c.access_token_ttl.as_secs(),
            "refresh_token": refresh,
            "refresh_token_expires_in": (expires - now).whole_seconds().max(0),
            "environment_id": c.environment_id,
            "environment_name": c.environment_name,
            "legal_entity_id": c.legal_entity_id,
            "legal_entity_name": c.legal_entity_name,
            "user_id": c.user_id,
            "email": c.email,
            "family_name": c.family_name,
            "given_name": c.given_name,
            "mode": "Full",
            "scope": "rnxt.r rnxt.w",
        })
    }

    pub(crate) fn access_valid(&mut self, token: &str) -> bool {
        let now = self.now();
        self.access.get(token).is_some_and(|exp| *exp > now)
    }

    pub(crate) fn live_access_tokens(&mut self) -> usize {
        let now = self.now();
        self.access.values().filter(|exp| **exp > now).count()
    }

    pub(crate) fn live_refresh_tokens(&mut self) -> usize {
        let now = self.now();
        self.refresh.values().filter(|g| g.expires > now).count()
    }

    /// Rate limit, then daily quota; an allowed call is counted against both.
    pub(crate) fn throttle(&mut self) -> Option<Throttle> {
        if let Some(limit) = self.cfg.rate_limit_per_sec {
            let now = monotonic_now();
            while self.rate_window.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                self.rate_window.pop_front();
            }
            if self.rate_window.len() >= limit as usize {
                return Some(Throttle::RateLimited);
            }
            self.rate_window.push_back(now);
        }
        if let Some(quota) = self.cfg.daily_quota {
            let now = self.now();
            if now >= self.quota_day_end {
                while self.quota_day_end <= now {
                    self.quota_day_end += time::Duration::DAY;
                }
                self.quota_used = 0;
            }
            if self.quota_used >= quota {
                return Some(Throttle::Quota(self.secs_to_quota_refill()));
            }
            self.quota_used += 1;
        }
        None
    }

    /// Seconds until the quota refills (the end of the simulator's quota day), at least 1.
    pub(crate) fn secs_to_quota_refill(&mut self) -> u64 {
        let now = self.now();
        while self.quota_day_end <= now {
            self.quota_day_end += time::Duration::DAY;
        }
        (self.quota_day_end - now).whole_seconds().max(1) as u64
    }

    /// The table at catalog index `index`, built on first use.
    pub(crate) fn table(&mut self, index: usize) -> &mut Table {
        let (seed, records, anchor) = (self.cfg.seed, self.cfg.records, self.anchor_ticks);
        let shape = DateShape { ties: self.cfg.date_modified_ties, unordered_from: self.cfg.unordered_from };
        self.tables[index].get_or_insert_with(|| Table::new(index, seed, records, anchor, shape))
    }

    fn table_named(&mut self, entity: &str) -> Result<&mut Table, String> {
        let e = catalog::find(entity).ok_or_else(|| format!("unknown entity {entity:?}"))?;
        let index = CATALOG.iter().position(|c| c.name == e.name).expect("catalog entry");
        Ok(self.table(index))
    }

    pub(crate) fn modify(&mut self, entity: &str, count: u64) -> Result<Vec<String>, String> {
        let now = self.now_ticks();
        let mut rng = self.data_rng.clone();
        let ids = self.table_named(entity)?.modify(&mut rng, count, now);
        self.data_rng = rng;
        self.bump_parents(entity, &ids, now);
        Ok(ids)
    }

    /// With the knob `participant_changes_bump_parent`, a changed child record changes its parent.
    fn bump_parents(&mut self, entity: &str, child_ids: &[String], now: i64) {
        let Some(parent) = catalog::find(entity).and_then(|e| e.parent) else { return };
        if !self.cfg.participant_changes_bump_parent {
            return;
        }
        let index = CATALOG.iter().position(|c| c.name == parent.entity).expect("catalog entry");
        let parents = initial_count(parent.entity, self.cfg.records);
        let mut rows: Vec<u64> =
            child_ids.iter().filter_map(|id| id.parse::<u64>().ok()).map(|id| parent_index(id - 1, parents)).collect();
        rows.sort_unstable();
        rows.dedup();
        let table = self.table(index);
        rows.retain(|i| table.get(&(i + 1).to_string()).is_some());
        table.modify_rows(&rows, now);
    }

    pub(crate) fn modify_under(&mut self, entity: &str, parent_id: &str, count: u64) -> Result<Vec<String>, String> {
        let (filter, parent_index) = self.parent_filter(entity, parent_id)?;
        let now = self.now_ticks();
        let table = self.table_named(entity)?;
        let picked: Vec<u64> = table.live_of_parent(filter).into_iter().take(count as usize).collect();
        let ids = table.modify_rows(&picked, now);
        if self.cfg.participant_changes_bump_parent && !ids.is_empty() {
            self.table(parent_index).modify_rows(&[filter.index], now);
        }
        Ok(ids)
    }

    pub(crate) fn live_ids_under(&mut self, entity: &str, parent_id: &str) -> Result<Vec<String>, String> {
        let (filter, _) = self.parent_filter(entity, parent_id)?;
        let table = self.table_named(entity)?;
        Ok(table.live_of_parent(filter).into_iter().map(|i| (i + 1).to_string()).collect())
    }

    /// The rows of `parent_id` in per-parent `entity`, and the parent entity's catalog index.
    fn parent_filter(&mut self, entity: &str, parent_id: &str) -> Result<(ParentFilter, usize), String> {
        let e = catalog::find(entity).ok_or_else(|| format!("unknown entity {entity:?}"))?;
        let parent = e.parent.ok_or_else(|| format!("{} is not listed per parent", e.name))?.entity;
        let parent_index = CATALOG.iter().position(|c| c.name == parent).expect("catalog entry");
        let parents = initial_count(parent, self.cfg.records);
        let (index, _, _) =
            self.table(parent_index).get(parent_id).ok_or_else(|| format!("no live {parent} record {parent_id}"))?;
        Ok((ParentFilter { index, parents }, parent_index))
    }

    pub(crate) fn add(&mut self, entity: &str, count: u64) -> Result<Vec<String>, String> {
        let now = self.now_ticks();
        Ok(self.table_named(entity)?.add(count, now))
    }

    pub(crate) fn delete(&mut self, entity: &str, count: u64) -> Result<Vec<String>, String> {
        let mut rng = self.data_rng.clone();
        let ids = self.table_named(entity)?.delete(&mut rng, count);
        self.data_rng = rng;
        Ok(ids)
    }

    pub(crate) fn live_ids(&mut self, entity: &str) -> Result<Vec<String>, String> {
        Ok(self.table_named(entity)?.live_ids())
    }

    pub(crate) fn record(&mut self, entity: &str, id: &str) -> Result<Option<serde_json::Value>, String> {
        let (seed, records, string_values) = (self.cfg.seed, self.cfg.records, self.cfg.custom_field_values_as_strings);
        let table = self.table_named(entity)?;
        let Some((idx, row, added)) = table.get(id) else { return Ok(None) };
        let ctx = Ctx { entity: table.entity.name, entity_index: table.index, seed, records, string_values };
        let mut out = String::new();
        render(&mut out, ctx, idx, &row, added);
        Ok(serde_json::from_str(&out).ok())
    }
}

/// 100 ns ticks since the Unix epoch.
pub(crate) fn ticks(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 100) as i64
}

/// The simulator stands in for Blackbaud's servers, which run on real time: this is its one clock
/// shim (the simulated offset from `advance_clock` is added by [`Inner::now`]).
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Real elapsed time for the per-second rate limit, which `advance_clock` does not affect.
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> Instant {
    Instant::now()
}
