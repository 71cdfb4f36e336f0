//! Estimating a run's API calls before it starts: the `count` probes core's
//! [`EstimatePlan`] asks for (one `limit=1` call per list), then its arithmetic
//! ([`skysync_core::sync::quota`]). Used by `sync --dry-run --estimate` and by runs with a
//! `daily_quota`.

use skysync_core::api::ApiClient;
use skysync_core::host::Clock;
use skysync_core::http::Method;
use skysync_core::sync::partition::{Pace, probe_count};
use skysync_core::sync::quota::{EntityEstimate, EstimatePlan};
use skysync_core::sync::{ChildPlan, Entity, RunMode};
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
        if entity.parent.is_some() {
            out.push(child_estimate(sink, entity, options, clock).await?.0);
            continue;
        }
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

/// A per-parent list costs at least one call per parent it visits (and one per live parent for
/// a delete reconciliation's id scan); no probe is made, as one per parent would cost as much as
/// the run. Also returns the planner's chain counts: (parents visited, live parents). Parents the
/// same run syncs first are counted as the sink has them now.
pub async fn child_estimate(
    sink: &mut dyn Sink,
    entity: &'static Entity,
    options: &EngineOptions,
    clock: &dyn Clock,
) -> anyhow::Result<(EntityEstimate, (usize, usize))> {
    let parent = entity.parent.map(|p| p.entity).expect("a per-parent entity");
    let stored = sink.state(entity.name).await?.as_ref().map(stored_state);
    let parents = match sink.state(parent).await? {
        Some(s) if s.last_run_at.is_some() => sink.parent_rows(parent, entity.name).await?,
        _ => Vec::new(),
    };
    let base = Url::parse("http://planning.invalid/").expect("a static URL");
    let plan = ChildPlan::new(entity, &base, stored.as_ref(), parents, &options.sync(), clock.now())?;
    let (chains, live) = plan.chains();
    let (scan_calls, reconcile_calls) = (chains as u64, if plan.reconciles() { live as u64 } else { 0 });
    let estimate = EntityEstimate {
        entity: entity.name,
        mode: plan.mode(),
        records: None,
        scan_calls,
        reconcile_calls,
        partition_calls: 0,
        calls: scan_calls + reconcile_calls,
    };
    Ok((estimate, (chains, live)))
}

async fn probe(api: &ApiClient, url: &Url) -> anyhow::Result<Option<u64>> {
    let response = api.send(Method::Get, url.as_str(), None).await?;
    Ok(probe_count(url, &response)?)
}
