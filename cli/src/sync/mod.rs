//! The nightly sync: SKY API list endpoints into a database, incrementally and resumably.
//!
//! [`engine`] does the work: per entity it pages through a SKY list and commits each page's rows
//! together with the bookmark that covers them, so a run killed at any point resumes from the last
//! committed page with nothing lost and nothing duplicated. Entities run concurrently through one
//! shared API client (one rate limiter) and one sink.

pub mod engine;
pub mod progress;
pub mod report;

use serde::Deserialize;

pub use engine::{EngineOptions, EntityReport, RunMode, RunReport};

/// The `[profiles.NAME.sync]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Entities synced when the command line names none.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Database: a SQLite path or a `postgres://` URL.
    #[serde(default)]
    pub db: Option<String>,
    /// Client-side pace in calls per second.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Most API calls one run may make.
    #[serde(default)]
    pub call_budget: Option<u64>,
    /// Minutes of overlap for list latency.
    #[serde(default)]
    pub overlap_minutes: Option<u64>,
    /// Days between automatic delete reconciliations.
    #[serde(default)]
    pub reconcile_every_days: Option<u64>,
    /// `mark` (default) or `remove` deleted rows.
    #[serde(default)]
    pub deletes: Option<String>,
    /// Entities synced at the same time (default 4).
    #[serde(default)]
    pub concurrency: Option<usize>,
}

/// `skysync sync` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Entities to sync (default: the config's list, else constituents and gifts).
    pub entities: Vec<String>,
}

/// `skysync demo` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}
