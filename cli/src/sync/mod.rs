//! The nightly sync: SKY API list endpoints into a database, incrementally and resumably.
//!
//! (The engine lands in the sync issue; this module fixes the command-line and config surface
//! the CLI dispatches to.)

use serde::Deserialize;

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
