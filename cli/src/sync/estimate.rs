//! Estimating a run's API calls before it starts: the `count` probes core's
//! [`EstimatePlan`] asks for (one `limit=1` call per list), then its arithmetic
//! ([`skysync_core::sync::quota`]). Used by `sync --dry-run --estimate` and by runs with a
//! `daily_quota`.

use skysync_core::api::ApiClient;
use skysync_core::host::Clock;
use skysync_core::http::Method;
use skysync_core::sync::partition::{Pace, probe_count};
use skysync_core::sync::quota::{EntityEstimate, EstimatePlan};
use skysync_core::sync::{Entity, RunMode};
use url::Url;

use super::engine::{EngineOptions, stored_state};
use crate::sink::Sink;

/// The estimate of every entity, and the probe calls it took.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// One per entity, in the order asked.
    pub entities: Vec<EntityEstimate>,
    /// API calls the probes made (retries included).
    pub probe_calls: u64,
}

impl Estimate {
    /// Calls the run would make, every entity together.
    pub fn calls(&self) -> u64 {
        self.entities.iter().map(|e| e.calls).sum()
    }

    /// The estimate of `entity`.
    pub fn of(&self, entity: &str) -> Option<&EntityEstimate> {
        self.entities.iter().find(|e| e.entity == entity)
    }
}

/// Probes every entity's lists and estimates its run from what `sink` has stored.
pub async fn estimate(
    api: &ApiClient,
    sink: &mut dyn Sink,
    entities: &[&'static Entity],
    options: &EngineOptions,
    clock: &dyn Clock,
) -> anyhow::Result<Estimate> {
    let base = api.resolve("/")?;
    let sync = options.sync();
    let before = api.counters().calls;
    let mut out = Vec::with_capacity(entities.len());
    for &entity in entities {
        let state = sink.state(entity.name).await?;
        let stored = state.as_ref().map(stored_state);
        let resume = match RunMode::of(&sync, stored.as_ref()) {
            RunMode::Full => state.as_ref().and_then(|s| s.staging_bookmark.as_deref()),
            _ => state.as_ref().and_then(|s| s.bookmark.as_deref()),
        };
        let plan = EstimatePlan::new(entity, &base, stored.as_ref(), resume, &sync, clock.now());
        let mut counts = Vec::new();
        let mut latency = std::time::Duration::ZERO;
        for url in plan.probe_urls() {
            let sent = clock.now();
            counts.push(probe(api, &url).await?);
            latency = latency.max((clock.now() - sent).try_into().unwrap_or_default());
        }
        let pace = Pace { rate: options.rate_limit, latency };
        out.push(plan.finish(&counts, pace, options.partitions));
    }
    Ok(Estimate { entities: out, probe_calls: api.counters().calls - before })
}

async fn probe(api: &ApiClient, url: &Url) -> anyhow::Result<Option<u64>> {
    let response = api.send(Method::Get, url.as_str(), None).await?;
    Ok(probe_count(url, &response)?)
}
